// Produces golden.json: the exact bytes real Node serializers write for each
// message kind, checked by crates/wire/tests/golden.rs.
//
// From the workspace root, with the packages tests/node installs:
//   NODE_PATH=tests/node/node_modules node crates/wire/tests/node/golden.js \
//     > crates/wire/tests/node/golden.json
// `tests/tests/fixtures.rs` reruns it and fails unless golden.json is what
// it writes.
//
// notepack.io 3.0.1 is what @socket.io/redis-adapter 8.3.0 and
// @socket.io/redis-emitter 5.1.0 use; 2.x (notepack2) is the older adapters' and
// emitters'; msgpack-js 0.3.0 is socket.io-emitter 0.2.0's. Object literals
// below copy the key order of those packages' dist/ sources.
const n3 = require("notepack.io"), n2 = require("notepack2"), mjs = require("msgpack-js");
const hex = (b) => Buffer.from(b).toString("hex");
const out = {};
// adapter 8.3 broadcast (notepack 3), socket.io 4 packet {type,data} + nsp
out.adapter_broadcast = hex(n3.encode(["Ab12Cd", {type: 2, data: ["hello", "world", Buffer.from([1,2,3])], nsp: "/"}, {rooms: ["room1"], except: [], flags: {}}]));
out.adapter_broadcast_flags = hex(n3.encode(["Xy98Zw", {type: 2, data: ["ev", {a: 1, b: [true, null, -3, 1.5, 300, 70000, -40000]}], nsp: "/chat"}, {rooms: ["r1", "r2"], except: ["sid1"], flags: {volatile: true, compress: false, timeout: 5000, expectSingleResponse: true, somethingNew: "x"}}]));
out.adapter_broadcast_undefined_flag = hex(n3.encode(["Xy98Zw", {type: 2, data: ["ev", undefined], nsp: "/"}, {rooms: [], except: [], flags: {compress: undefined, volatile: undefined}}]));
// notepack 2 (adapter 7.x, redis-emitter 4.x): undefined, ArrayBuffer
const ab = new Uint8Array([9, 8, 7]).buffer;
out.notepack2_broadcast = hex(n2.encode(["Qw12Er", {type: 2, data: ["ev", undefined, ab, new Uint8Array([5]).buffer], nsp: "/"}, {rooms: [], except: ["s"], flags: {}}]));
// redis-emitter 5.x: opts key order rooms, flags, except
out.emitter_broadcast = hex(n3.encode(["emitter", {type: 2, data: ["hello", 1], nsp: "/"}, {rooms: ["room1"], flags: {volatile: true}, except: []}]));
// socket.io-emitter 1.x-3.x: no except, type 5, numeric room
out.old_emitter_broadcast = hex(n2.encode(["emitter", {type: 5, data: ["bin", Buffer.from([0xff])], nsp: "/"}, {rooms: [42, "x"], flags: {}}]));
// request type 7 and response type 9
out.request_broadcast = hex(n3.encode({uid: "Ab12Cd", requestId: "Rq34St", type: 7, packet: {type: 2, data: ["ping", Buffer.from([1])], nsp: "/"}, opts: {rooms: [], except: ["sid"], flags: {timeout: 1000}}}));
out.response_ack = hex(n3.encode({type: 9, requestId: "Rq34St", packet: ["pong", 2]}));
out.response_ack_undefined = hex(n3.encode({type: 9, requestId: "Rq34St", packet: undefined}));
// msgpack-js 0.3.0 (socket.io-emitter 0.2.0)
out.legacy = hex(mjs.encode([{type: 5, data: ["hello", Buffer.from([1,2,3])], nsp: "/"}, {rooms: ["room1"], flags: {volatile: true}}]));
out.legacy_long = hex(mjs.encode([{type: 2, data: ["e", "x".repeat(40), undefined, -1000, 3000000000, 2.5], nsp: "/chat"}, {rooms: [], flags: {}}]));
// JSON requests exactly as the adapter / emitter build them
out.json = [
  JSON.stringify({uid: "Ab12Cd", requestId: "Rq34St", type: 0, rooms: ["r1"]}),
  JSON.stringify({uid: "Ab12Cd", requestId: "Rq34St", type: 1}),
  JSON.stringify({uid: "Ab12Cd", type: 2, opts: {rooms: ["r1"], except: ["s1"]}, rooms: ["r2", "r3"]}),
  JSON.stringify({type: 3, opts: {rooms: [], except: []}, rooms: ["r2"]}),
  JSON.stringify({uid: "Ab12Cd", type: 4, opts: {rooms: ["r1"], except: []}, close: true}),
  JSON.stringify({type: 4, opts: {rooms: [], except: []}, close: false}),
  JSON.stringify({uid: "Ab12Cd", requestId: "Rq34St", type: 5, opts: {rooms: ["r1"], except: ["s1"]}}),
  JSON.stringify({uid: "Ab12Cd", type: 6, data: ["hello", {a: 1}, [1, 2]]}),
  JSON.stringify({uid: "Ab12Cd", requestId: "Rq34St", type: 6, data: ["hello"]}),
  JSON.stringify({uid: "emitter", type: 6, data: ["hi"]}),
  JSON.stringify({uid: "Ab12Cd", requestId: "Rq34St", type: 2, sid: "s1", room: "r1"}),
  JSON.stringify({uid: "Ab12Cd", requestId: "Rq34St", type: 4, sid: "s1", close: true}),
];
out.json_responses = [
  JSON.stringify({requestId: "Rq34St", sockets: ["s1", "s2"]}),
  JSON.stringify({requestId: "Rq34St", rooms: ["r1", "s1"]}),
  JSON.stringify({requestId: "Rq34St"}),
  JSON.stringify({requestId: "Rq34St", sockets: [{id: "s1", handshake: {headers: {host: "x"}, time: "t", address: "::1", xdomain: false, secure: false, issued: 1, url: "/socket.io/", query: {EIO: "4"}, auth: {}}, rooms: ["s1", "r1"], data: {user: "u"}}]}),
  JSON.stringify({type: 6, requestId: "Rq34St", data: {ok: true}}),
  JSON.stringify({type: 6, requestId: "Rq34St", data: undefined}),
  JSON.stringify({type: 8, requestId: "Rq34St", clientCount: 3}),
];
console.log(JSON.stringify(out, null, 1));
