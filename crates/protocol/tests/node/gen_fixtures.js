// Generates tests/fixtures/*.json from the real Node packages, so the Rust
// codecs are checked against socket.io-parser 4.2.4 / 3.4.3, engine.io-parser
// 5.2.3 / 2.2.1 and notepack.io 3.0.1 rather than against our reading of them.
//
// tests/node installs these packages (sioparser3 and eiop2 are aliases of
// the older versions); `tests/tests/fixtures.rs` reruns this script with
// them and fails unless the checked-in fixtures are what it writes.
// Regenerate (when changing the cases), from the workspace root:
//   NODE_PATH=tests/node/node_modules node crates/protocol/tests/node/gen_fixtures.js \
//     crates/protocol/tests/fixtures
//
// The case generator is a seeded PRNG, so the output is deterministic.
"use strict";
const fs = require("fs");
const path = require("path");
const notepack = require("notepack.io");
const parser = require("socket.io-parser");
const parser3 = require("sioparser3");
// binary.js is not in the package exports map: load it by path.
const { deconstructPacket } = require(path.join(path.dirname(require.resolve("socket.io-parser")), "binary.js"));
const eio4 = require("engine.io-parser");
const eio3 = require("eiop2");

const outDir = process.argv[2];
if (!outDir) throw new Error("usage: gen_fixtures.js <out dir>");

let seed = 0x5eed1234;
function rand() {
  // mulberry32
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (arr) => arr[int(arr.length)];

// ---------------------------------------------------------------- msgpack
const STRINGS = ["", "a", "hello", "é", "😀", "\u2028", "quote\"back\\slash", "ctl\u0001\u001f\n\t\b\f\r", "/", "0", "1", "01", "42", "4294967294", "4294967295", "-1", "1.5", "__proto__", "_placeholder", "num", "toString", "constructor"];
const FLOATS = [0.1, -0.0, 1.5, -2.25, 1e21, 1e-7, 1.5e-7, 123456.789, 1e300, 5e-324, NaN, Infinity, -Infinity, 2.0, 1e20, 0.30000000000000004, 9007199254740993, -1e-10];

function pushUint(bytes, value, size) {
  for (let i = size - 1; i >= 0; i--) bytes.push(Number((BigInt(value) >> BigInt(8 * i)) & 0xffn));
}
function strBytes(bytes, s, raw) {
  const data = raw || Buffer.from(s, "utf8");
  if (data.length < 32) bytes.push(0xa0 | data.length);
  else { bytes.push(0xd9, data.length); }
  for (const b of data) bytes.push(b);
}
function randomString() {
  if (rand() < 0.7) return pick(STRINGS);
  let s = "";
  const n = int(12);
  for (let i = 0; i < n; i++) s += String.fromCodePoint(pick([int(128), 32 + int(95), 0xe9, 0x4e2d, 0x1f600, int(32)]));
  return s;
}
function genKey(bytes, depth) {
  const r = rand();
  if (r < 0.6) return strBytes(bytes, randomString());
  if (r < 0.7) return pushInt(bytes, pick([0, 1, 7, 42, 300, 4294967294, 4294967295, 2 ** 53 + 2, -5]));
  if (r < 0.75) return bytes.push(pick([0xc0, 0xc2, 0xc3]));
  if (r < 0.8) { bytes.push(0xcb); const b = Buffer.alloc(8); b.writeDoubleBE(pick(FLOATS)); for (const x of b) bytes.push(x); return; }
  if (r < 0.85) { const n = int(4); bytes.push(0xc4, n); for (let i = 0; i < n; i++) bytes.push(97 + int(3)); return; }
  if (r < 0.9 && depth < 3) { const n = int(3); bytes.push(0x90 | n); for (let i = 0; i < n; i++) genKey(bytes, depth + 1); return; }
  if (r < 0.95) { bytes.push(0x80); return; }
  strBytes(bytes, "", Buffer.from([0x61, 0xff, 0xc3, 0x28]));
}
function pushInt(bytes, v) {
  if (v >= 0 && v < 128) bytes.push(v);
  else if (v < 0 && v >= -32) bytes.push(0x100 + v);
  else if (v >= 0 && v < 0x100) { bytes.push(0xcc, v); }
  else if (v >= 0 && v < 0x10000) { bytes.push(0xcd); pushUint(bytes, v, 2); }
  else if (v >= 0 && v < 0x100000000) { bytes.push(0xce); pushUint(bytes, v, 4); }
  else if (v >= 0) { bytes.push(0xcf); pushUint(bytes, v, 8); }
  else if (v >= -128) { bytes.push(0xd0, v & 0xff); }
  else if (v >= -32768) { bytes.push(0xd1); pushUint(bytes, BigInt.asUintN(16, BigInt(v)), 2); }
  else if (v >= -(2 ** 31)) { bytes.push(0xd2); pushUint(bytes, BigInt.asUintN(32, BigInt(v)), 4); }
  else { bytes.push(0xd3); pushUint(bytes, BigInt.asUintN(64, BigInt(v)), 8); }
}
function genValue(bytes, depth) {
  const r = rand();
  if (r < 0.05) return bytes.push(0xc0);
  if (r < 0.1) return bytes.push(pick([0xc2, 0xc3]));
  if (r < 0.25) return pushInt(bytes, pick([0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32769, -(2 ** 31) - 1, -(2 ** 53) + 1, int(1000000) - 500000]));
  if (r < 0.32) { bytes.push(0xcb); const b = Buffer.alloc(8); b.writeDoubleBE(pick(FLOATS)); for (const x of b) bytes.push(x); return; }
  if (r < 0.36) { bytes.push(0xca); const b = Buffer.alloc(4); b.writeFloatBE(pick(FLOATS)); for (const x of b) bytes.push(x); return; }
  if (r < 0.5) return strBytes(bytes, randomString());
  if (r < 0.53) return strBytes(bytes, "", Buffer.from([0x68, 0xc3, 0xff, 0xe2, 0x82, 0x41]));
  if (r < 0.6) { const n = int(5); bytes.push(0xc4, n); for (let i = 0; i < n; i++) bytes.push(int(256)); return; }
  if (r < 0.66) {
    // ext
    const kind = int(6);
    if (kind === 0) return bytes.push(0xd4, 0x00, 0x00); // notepack 2 undefined
    if (kind === 1) { const n = pick([0, 2, 3, 8, 20]); bytes.push(0xc7, n, 0x00); for (let i = 0; i < n; i++) bytes.push(int(256)); return; } // ArrayBuffer
    if (kind === 2) { bytes.push(0xd6, 0xff); pushUint(bytes, pick([0, 1700000000, 4294967295]), 4); return; }
    if (kind === 3) { bytes.push(0xd7, 0xff); pushUint(bytes, pick([0, 123456789]) * 4 + pick([0, 1, 3]), 4); pushUint(bytes, pick([0, 1700000000]), 4); return; }
    if (kind === 4) { bytes.push(0xc7, 12, 0xff); pushUint(bytes, pick([0, 999999999]), 4); pushUint(bytes, BigInt.asUintN(64, BigInt(pick([0, -1, 1700000000, -62198755200, 2 ** 40]))), 8); return; }
    bytes.push(0xd5, pick([1, 5, 127, 0x80]), int(256), int(256)); return;
  }
  if (depth >= 4) return bytes.push(0xc0);
  if (r < 0.83) {
    const n = int(5);
    bytes.push(0x90 | n);
    for (let i = 0; i < n; i++) genValue(bytes, depth + 1);
    return;
  }
  const n = int(6);
  bytes.push(0x80 | n);
  for (let i = 0; i < n; i++) { genKey(bytes, 0); genValue(bytes, depth + 1); }
}

function hasSwappedPrototype(value) {
  if (value === null || typeof value !== "object") return false;
  // real buffers, dates and array buffers (not objects that merely inherit)
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer && Object.getPrototypeOf(value) === ArrayBuffer.prototype && !Object.keys(value).length) return false;
  if (Object.prototype.toString.call(value) === "[object Date]") return false;
  if (Array.isArray(value)) return value.some(hasSwappedPrototype);
  if (Object.getPrototypeOf(value) !== Object.prototype) return true;
  return Object.keys(value).some((k) => hasSwappedPrototype(value[k]));
}

const convertCases = [];
for (let i = 0; i < 3000; i++) {
  const bytes = [];
  const n = 1 + int(4);
  bytes.push(0x90 | n);
  for (let j = 0; j < n; j++) genValue(bytes, 1);
  const buf = Buffer.from(bytes);
  let json, buffers;
  try {
    const data = notepack.decode(buf);
    // A `__proto__` key holding an object swaps the prototype (an ArrayBuffer
    // prototype even turns the object into an "attachment"): prototype
    // pollution we deliberately do not reproduce (the key is dropped).
    if (hasSwappedPrototype(data)) continue;
    const deconstructed = deconstructPacket({ type: 2, nsp: "/", data });
    json = JSON.stringify(deconstructed.packet.data);
    buffers = deconstructed.buffers;
  } catch (e) {
    // e.g. `__proto__` set to a Date makes JSON.stringify throw in Node too
    continue;
  }
  convertCases.push({
    msgpack: buf.toString("hex"),
    json,
    attachments: buffers.map((b) => Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString("hex")),
  });
}

// ---------------------------------------------------------- socket.io packets
const NSPS = ["/", "/admin", "/a,b", "/é", ""];
const DATA = [
  undefined,
  ["message", "hi"],
  ["chat", 1, { a: [true, null, 1.5] }, "é😀\n"],
  [42, "numeric event"],
  ["connect"],
  ["disconnecting", 1],
  [],
  [{ "_placeholder": true, "num": 0 }],
  { token: "abc" },
  { sid: "AbCdEfGh12345678" },
  { message: "Not authorized", data: { code: 4 } },
  "Not authorized",
  null,
  5,
];
const RAW_TAILS = ["", "[", "{\"a\":", "garbage", "[\"a\"] ", " [\"a\"]", "1", "[1,2]x", "\"str\"", "null", "true", "{}", "[[]]", "[{}]", "[null]", "[\"newListener\"]"];

const sioEncode = [];
const sioDecode = [];
const enc = new parser.Encoder();
for (let type = 0; type <= 6; type++) {
  for (const nsp of NSPS) {
    for (const id of [undefined, 0, 7, 12345678]) {
      for (const data of DATA) {
        const packet = { type, nsp, id, data };
        if (type === 5 || type === 6) packet.attachments = int(3);
        const encoded = enc.encodeAsString(packet);
        sioEncode.push({ type, nsp, id: id === undefined ? null : id, attachments: packet.attachments === undefined ? null : packet.attachments, data: data === undefined ? null : JSON.stringify(data), encoded });
      }
    }
  }
}
function decodeBoth(text) {
  const one = (p) => {
    try {
      let d;
      if (p === parser) {
        d = new p.Decoder().decodeString(text);
      } else {
        // 3.x does not expose decodeString; a binary packet waiting for
        // attachments is not emitted, so read it off the reconstructor.
        const decoder = new p.Decoder();
        decoder.on("decoded", (packet) => { d = packet; });
        decoder.add(text);
        if (!d && decoder.reconstructor) d = decoder.reconstructor.reconPack;
        // 3.x reports some failures as an ERROR packet instead of throwing
        if (d.type === 4 && typeof d.data === "string" && d.data.startsWith("parser error")) return { ok: false };
      }
      return { ok: true, type: d.type, nsp: d.nsp, id: d.id === undefined ? null : d.id, attachments: d.attachments === undefined ? null : d.attachments, data: d.data === undefined ? null : JSON.stringify(d.data) };
    } catch (e) {
      return { ok: false };
    }
  };
  return { text, v5: one(parser), v4: one(parser3) };
}
for (const c of sioEncode) sioDecode.push(decodeBoth(c.encoded));
for (let i = 0; i < 3000; i++) {
  let text = String(int(7));
  if (text === "5" || text === "6" || rand() < 0.05) text += pick(["", "0", "1", "2", "12", "x"]) + pick(["-", "-", ""]);
  if (rand() < 0.5) text += pick(["/", "/chat", "/x,y", "/a"]) + pick([",", ",", ""]);
  if (rand() < 0.4) text += pick(["0", "1", "99", "007"]);
  text += pick(RAW_TAILS.concat(DATA.filter((d) => d !== undefined).map((d) => JSON.stringify(d))));
  sioDecode.push(decodeBoth(text));
}

// ---------------------------------------------------------- engine.io payloads
const EIO_PACKETS = [
  { type: "open", data: JSON.stringify({ sid: "abc", upgrades: ["websocket"], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1000000 }) },
  { type: "close" },
  { type: "ping" },
  { type: "ping", data: "probe" },
  { type: "pong", data: "probe" },
  { type: "pong" },
  { type: "message", data: "hello" },
  { type: "message", data: "é😀 mixed 中文" },
  { type: "message", data: "" },
  { type: "message", data: "2[\"ev\",\"😀😀\"]" },
  { type: "message", data: Buffer.from([1, 2, 3, 255]) },
  { type: "message", data: Buffer.from([]) },
  { type: "upgrade" },
  { type: "noop" },
];
const eioCases = [];
function viewPacket(p) {
  return Buffer.isBuffer(p.data) ? { type: p.type, binary: p.data.toString("hex") } : { type: p.type, data: p.data === undefined ? null : p.data };
}
for (let i = 0; i < 400; i++) {
  const n = 1 + int(4);
  const packets = [];
  for (let j = 0; j < n; j++) packets.push(pick(EIO_PACKETS));
  const c = { packets: packets.map(viewPacket) };
  eio4.encodePayload(packets, (s) => { c.v4 = s; });
  eio3.encodePayload(packets, false, (s) => { c.v3 = s; });
  eio3.encodePayload(packets, true, (b) => { c.v3_binary = Buffer.isBuffer(b) ? b.toString("hex") : null; c.v3_binary_text = typeof b === "string" ? b : null; });
  eioCases.push(c);
}
const eioSingles = EIO_PACKETS.map((p) => {
  const c = { packet: viewPacket(p) };
  eio4.encodePacket(p, true, (e) => { c.v4 = Buffer.isBuffer(e) ? { binary: e.toString("hex") } : { text: e }; });
  eio3.encodePacket(p, true, (e) => { c.v3 = Buffer.isBuffer(e) ? { binary: e.toString("hex") } : { text: e }; });
  return c;
});

fs.mkdirSync(outDir, { recursive: true });
// one case per line keeps diffs readable
const write = (name, value) => fs.writeFileSync(path.join(outDir, name), "[\n" + value.map((v) => JSON.stringify(v)).join(",\n") + "\n]\n");
write("convert.json", convertCases);
write("socketio_encode.json", sioEncode);
write("socketio_decode.json", sioDecode);
write("engineio_payloads.json", eioCases);
write("engineio_packets.json", eioSingles);
console.log("convert", convertCases.length, "sio encode", sioEncode.length, "sio decode", sioDecode.length, "eio", eioCases.length);
