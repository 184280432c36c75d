// The reverse of golden.js: Rust-encoded bytes in, the Node decoders' view out.
//
// Reads JSON lines {kind, hex, attachments?} on stdin and prints one JSON line
// per input, in order: {ok: <described value>} or {error: <message>}.
// kind:
//   notepack    notepack.io 3 decode (broadcast messages, msgpack requests)
//   json        JSON.parse of the UTF-8 text
//   adapter     what @socket.io/redis-adapter does: `{` means JSON, else notepack
//   legacy      msgpack-js 0.3.0 (socket.io-emitter 0.2.0 dialect)
//   sio-packet  socket.io-parser 4.2.4 Decoder; hex is the text part,
//               attachments the hex of each binary attachment
// Values use the conventions of common.js: bytes {$bin: hex}, undefined {$undefined: true}.
"use strict";

const readline = require("readline");
const { describe, decodeSioPacket, decodeAdapterPayload, decodeLegacy, notepack } = require("./common");

function decodeOne(request) {
  const bytes = Buffer.from(request.hex, "hex");
  switch (request.kind) {
    case "notepack":
      return notepack.decode(bytes);
    case "json":
      return JSON.parse(bytes.toString("utf8"));
    case "adapter":
      return decodeAdapterPayload(bytes);
    case "legacy":
      return decodeLegacy(bytes);
    case "sio-packet":
      return decodeSioPacket(
        bytes.toString("utf8"),
        (request.attachments || []).map((hex) => Buffer.from(hex, "hex")),
      );
    default:
      throw new Error(`unknown kind ${JSON.stringify(request.kind)}`);
  }
}

const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  if (line.trim() === "") return;
  let reply;
  try {
    reply = { ok: describe(decodeOne(JSON.parse(line))) };
  } catch (err) {
    reply = { error: String((err && err.message) || err) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
});
