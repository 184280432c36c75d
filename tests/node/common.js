// Shared helpers of the Node peers: a JSON description of decoded values
// that survives the trip to Rust (bytes and `undefined` have no JSON form),
// and the decoders the real Node packages use, so golden.js and decode.js
// agree on what "the Node view" of a message is.
"use strict";

const notepack = require("notepack.io");
const msgpackJs = require("msgpack-js");
const { Decoder } = require("socket.io-parser");

/** JSON description of a decoded value: bytes as {$bin: hex}, undefined as {$undefined: true}. */
function describe(value) {
  if (value === undefined) return { $undefined: true };
  if (value === null) return null;
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(describe);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot describe non-finite number ${value}`);
    return value;
  }
  if (typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value)) out[key] = describe(value[key]);
    return out;
  }
  return value;
}

/** The inverse of `describe`: {$bin: hex} becomes a Buffer, {$undefined: true} undefined. */
function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin" && typeof value.$bin === "string") return Buffer.from(value.$bin, "hex");
    if (keys.length === 1 && keys[0] === "$undefined") return undefined;
    const out = {};
    for (const key of keys) out[key] = revive(value[key]);
    return out;
  }
  return value;
}

/** Decodes one Socket.IO packet (text part plus binary attachments) with socket.io-parser's Decoder. */
function decodeSioPacket(text, attachments) {
  const decoder = new Decoder();
  let decoded;
  decoder.on("decoded", (packet) => {
    decoded = packet;
  });
  decoder.add(text);
  for (const attachment of attachments || []) decoder.add(attachment);
  decoder.destroy();
  if (decoded === undefined) throw new Error("packet incomplete: missing attachments");
  return decoded;
}

/** Decodes a request or response payload the way @socket.io/redis-adapter does: `{` means JSON. */
function decodeAdapterPayload(buffer) {
  return buffer[0] === 0x7b ? JSON.parse(buffer.toString()) : notepack.decode(buffer);
}

/** The decoder of the legacy socket.io-emitter 0.2.0 / socket.io-redis 0.1 pair. */
function decodeLegacy(buffer) {
  return msgpackJs.decode(buffer);
}

module.exports = { describe, revive, decodeSioPacket, decodeAdapterPayload, decodeLegacy, notepack };
