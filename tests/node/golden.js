// Golden vectors for the Rust codecs, produced by the REAL Node packages.
//
// Every byte here comes from a Node encoder: notepack.io 3 and 2 directly,
// socket.io-parser 4.2.4's Encoder, and the messages that
// @socket.io/redis-emitter 5.x, socket.io-emitter 0.2.0 and two live
// socket.io servers running @socket.io/redis-adapter 8.3 PUBLISH on the Redis
// at REDIS_URL (captured with PSUBSCRIBE *). The Rust test decodes each one,
// compares with `expect` (the Node decoder's view) and, where `exact`,
// re-encodes byte for byte.
//
// Output: one JSON array on stdout of
//   {name, source, kind, channel?, hex, text?, attachments?, expect, exact, socketio?}
// kind: broadcast | request | response | legacy-emitter | sio-packet
// expect: the Node decoder's view (notepack.io 3, JSON.parse, msgpack-js,
//   socket.io-parser Decoder), bytes as {$bin: hex}, undefined as {$undefined: true}
// exact: Rust must re-encode the decoded message to exactly these bytes
// socketio (broadcasts): {text, attachments} that a Node socket.io 4.8 server
//   sends its clients for this broadcast (socket.io-parser Encoder output)
"use strict";

const http = require("http");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");
const ioClient = require("socket.io-client");
const { Encoder, PacketType } = require("socket.io-parser");
const notepack2 = require("notepack2");
const { describe, decodeSioPacket, decodeAdapterPayload, decodeLegacy, notepack } = require("./common");

const REDIS_URL = process.env.REDIS_URL;
const STEP_TIMEOUT_MS = 5000;
// Read from node_modules directly: some packages do not export ./package.json.
const installedVersion = (dir) =>
  JSON.parse(require("fs").readFileSync(require("path").join(__dirname, "node_modules", dir, "package.json"))).version;
const version = (pkg) => `${pkg}@${installedVersion(pkg)}`;
const SRC = {
  notepack3: version("notepack.io"),
  notepack2: `notepack.io@${installedVersion("notepack2")}`,
  parser: version("socket.io-parser"),
  emitter5: version("@socket.io/redis-emitter"),
  emitter02: version("socket.io-emitter"),
  adapter: `${version("@socket.io/redis-adapter")} + ${version("socket.io")}`,
};

const vectors = [];
const log = (...args) => process.stderr.write(`[golden] ${args.join(" ")}\n`);

/** What a Node socket.io 4.8 server sends its clients for a decoded broadcast. */
function socketioView(decoded) {
  const packet = decoded[1];
  const [text, ...attachments] = new Encoder().encode({
    type: packet.type,
    nsp: packet.nsp === undefined ? "/" : packet.nsp,
    data: packet.data,
  });
  return { text, attachments: attachments.map((a) => Buffer.from(a).toString("hex")) };
}

/** Rust keeps room names as strings, so integer rooms re-encode as strings: not byte-exact. */
const hasIntRoom = (opts) =>
  !!opts && [opts.rooms, opts.except].some((list) => Array.isArray(list) && list.some((r) => typeof r === "number"));

// ---------------------------------------------------------------------------
// 1. msgpack broadcast messages encoded directly with notepack 3 and 2

// Object keys are in alphabetical order on purpose: a Rust map that sorts its
// keys and one that keeps insertion order both re-encode them identically.
const richArgs = () => [
  "hello",
  "world",
  0,
  1,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 32,
  2 ** 40,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 40),
  1.5,
  -0.25,
  3.141592653589793,
  null,
  true,
  false,
  "",
  "héllo ✓ 😀",
  "x".repeat(40),
  "y".repeat(300),
  { a: 1, b: [2, "x", { c: null }], nested: { deep: { deeper: [true] } } },
  [],
  {},
  Buffer.from([1, 2, 3]),
  Buffer.alloc(0),
  Buffer.alloc(300, 7),
];

function broadcastVector(name, source, encode, message, exact) {
  const bytes = encode(message);
  // What a Node adapter 8.3 (notepack 3) sees when it decodes these bytes.
  const decoded = notepack.decode(bytes);
  vectors.push({
    name,
    source,
    kind: "broadcast",
    hex: bytes.toString("hex"),
    expect: describe(decoded),
    exact: exact && !hasIntRoom(decoded[2]),
    socketio: socketioView(decoded),
  });
}

function directMsgpackVectors() {
  const enc3 = (m) => notepack.encode(m);
  const enc2 = (m) => notepack2.encode(m);
  const msg = (data, opts, nsp = "/") => ["Ab12Cd", { type: 2, data, nsp }, opts];
  const plainOpts = () => ({ rooms: [], except: [], flags: {} });

  broadcastVector("np3/simple", SRC.notepack3, enc3, msg(["hello", "world"], plainOpts()), true);
  broadcastVector(
    "np3/room-binary",
    SRC.notepack3,
    enc3,
    msg(["hello", "world", Buffer.from([1, 2, 3])], { rooms: ["room1"], except: [], flags: {} }),
    true,
  );
  broadcastVector("np3/rich-args", SRC.notepack3, enc3, msg(["rich", ...richArgs()], plainOpts()), true);
  broadcastVector(
    "np3/int-rooms",
    SRC.notepack3,
    enc3,
    msg(["ints"], { rooms: [42, "r", 7], except: [7, "sid123"], flags: { volatile: true } }),
    true,
  );
  broadcastVector(
    "np3/flags",
    SRC.notepack3,
    enc3,
    msg(["f", 1], { rooms: ["a", "b"], except: ["c"], flags: { volatile: true, compress: false, broadcast: true } }),
    true,
  );
  broadcastVector("np3/namespace", SRC.notepack3, enc3, msg(["n"], plainOpts(), "/admin"), true);
  // notepack 3 drops undefined map values and writes a bare undefined as nil.
  broadcastVector(
    "np3/undefined",
    SRC.notepack3,
    enc3,
    msg(["u", undefined, { a: 1, b: undefined }], { rooms: [], except: [], flags: { volatile: undefined } }),
    false,
  );
  broadcastVector(
    "np3/arraybuffer",
    SRC.notepack3,
    enc3,
    msg(["ab", new Uint8Array([9, 8, 7]).buffer, new Uint8Array([1, 2])], plainOpts()),
    true,
  );
  // Older senders omit `except` and `nsp`: Rust decodes them as [] and "/"
  // and writes them back explicitly, so these are checked by structure only.
  broadcastVector("np3/no-except", SRC.notepack3, enc3, msg(["old"], { rooms: ["r"], flags: {} }), false);
  broadcastVector(
    "np3/no-nsp",
    SRC.notepack3,
    enc3,
    ["Ab12Cd", { type: 2, data: ["nonsp"] }, { rooms: [], except: [], flags: {} }],
    false,
  );
  broadcastVector(
    "np3/long-array",
    SRC.notepack3,
    enc3,
    msg(["many", ...Array.from({ length: 20 }, (_, i) => i)], plainOpts()),
    true,
  );

  // notepack 2 (adapter 7.x, redis-emitter 4.x): undefined is d4 00 00 and
  // ArrayBuffers are ext type 0. Rust must decode these; it never writes them.
  broadcastVector("np2/simple", SRC.notepack2, enc2, msg(["hello", "world"], plainOpts()), false);
  broadcastVector("np2/rich-args", SRC.notepack2, enc2, msg(["rich", ...richArgs()], plainOpts()), false);
  broadcastVector(
    "np2/undefined",
    SRC.notepack2,
    enc2,
    msg(["u", undefined, { a: 1, b: undefined }], { rooms: ["r"], except: undefined, flags: { volatile: undefined } }),
    false,
  );
  broadcastVector(
    "np2/arraybuffer",
    SRC.notepack2,
    enc2,
    msg(["ab", new Uint8Array([9, 8, 7]).buffer, new Uint8Array(300).fill(5).buffer], plainOpts()),
    false,
  );
  broadcastVector(
    "np2/int-rooms",
    SRC.notepack2,
    enc2,
    msg(["ints"], { rooms: [42], except: [7], flags: { volatile: true } }),
    false,
  );
}

// ---------------------------------------------------------------------------
// 2. socket.io-parser 4.2.4 Encoder output for every packet type

function sioVectors() {
  const encoder = new Encoder();
  const packets = [
    ["connect/default", { type: PacketType.CONNECT, nsp: "/" }],
    ["connect/auth", { type: PacketType.CONNECT, nsp: "/", data: { token: "abc" } }],
    ["connect/admin-auth", { type: PacketType.CONNECT, nsp: "/admin", data: { token: "abc", user: 7 } }],
    ["connect/sid", { type: PacketType.CONNECT, nsp: "/", data: { sid: "Jn7dzOTb0QcHcQA1AAAB" } }],
    ["disconnect/default", { type: PacketType.DISCONNECT, nsp: "/" }],
    ["disconnect/admin", { type: PacketType.DISCONNECT, nsp: "/admin" }],
    ["event/simple", { type: PacketType.EVENT, nsp: "/", data: ["hello", "world"] }],
    ["event/no-args", { type: PacketType.EVENT, nsp: "/", data: ["ping"] }],
    [
      "event/rich",
      {
        type: PacketType.EVENT,
        nsp: "/",
        data: ["rich", 1, -2, 1.5, null, true, false, "héllo ✓ 😀", { a: 1, b: [2, "x"] }, [], {}],
      },
    ],
    ["event/ack-id", { type: PacketType.EVENT, nsp: "/", data: ["question", 42], id: 12 }],
    ["event/ack-id-zero", { type: PacketType.EVENT, nsp: "/", data: ["q"], id: 0 }],
    ["event/namespace", { type: PacketType.EVENT, nsp: "/admin", data: ["hello", "admin"] }],
    ["event/namespace-ack", { type: PacketType.EVENT, nsp: "/admin", data: ["hello"], id: 3 }],
    ["event/quotes", { type: PacketType.EVENT, nsp: "/", data: ['say "hi"\n', "back\\slash", "tab\t"] }],
    ["ack/simple", { type: PacketType.ACK, nsp: "/", data: ["ok"], id: 12 }],
    ["ack/namespace", { type: PacketType.ACK, nsp: "/admin", data: [1, { ok: true }], id: 7 }],
    ["ack/empty", { type: PacketType.ACK, nsp: "/", data: [], id: 1 }],
    ["connect-error/message", { type: PacketType.CONNECT_ERROR, nsp: "/", data: { message: "not authorized" } }],
    [
      "connect-error/data",
      { type: PacketType.CONNECT_ERROR, nsp: "/admin", data: { message: "bad", data: { code: 401 } } },
    ],
    ["binary-event/one", { type: PacketType.EVENT, nsp: "/", data: ["file", Buffer.from([1, 2, 3])] }],
    [
      "binary-event/nested-ack",
      {
        type: PacketType.EVENT,
        nsp: "/admin",
        id: 5,
        data: ["upload", { name: "a.bin", parts: [Buffer.from([0xde, 0xad]), Buffer.alloc(0)] }, Buffer.from("xyz")],
      },
    ],
    ["binary-ack/one", { type: PacketType.ACK, nsp: "/", id: 9, data: [Buffer.from([255, 0, 128])] }],
    ["binary-ack/namespace", { type: PacketType.ACK, nsp: "/admin", id: 7, data: ["done", Buffer.from([4])] }],
  ];
  for (const [name, packet] of packets) {
    const [text, ...attachments] = encoder.encode(packet);
    const decoded = decodeSioPacket(text, attachments);
    vectors.push({
      name: `sio/${name}`,
      source: SRC.parser,
      kind: "sio-packet",
      text,
      hex: Buffer.from(text, "utf8").toString("hex"),
      attachments: attachments.map((a) => Buffer.from(a).toString("hex")),
      expect: describe(decoded),
      exact: true,
    });
  }
}

// ---------------------------------------------------------------------------
// 3. Live capture on Redis

class Capture {
  constructor(client) {
    this.client = client;
    this.messages = [];
    this.waiters = [];
  }

  async start() {
    await this.client.pSubscribe(
      "*",
      (message, channel) => {
        this.messages.push({ channel: channel.toString(), payload: Buffer.from(message) });
        for (const wake of this.waiters.splice(0)) wake();
      },
      true,
    );
  }

  /** Runs `action`, then waits until `count` new messages matching `filter` arrived. */
  async step(label, count, action, filter = () => true) {
    const start = this.messages.length;
    await action();
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      const got = this.messages.slice(start).filter(filter);
      if (got.length >= count) break;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(`step ${label}: got ${got.length} of ${count} messages: ${got.map((m) => m.channel)}`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.messages.slice(start).filter(filter);
  }
}

function kindOfChannel(channel) {
  if (channel === "socket.io#emitter") return "legacy-emitter";
  if (channel.startsWith("socket.io-request#")) return "request";
  if (channel.startsWith("socket.io-response#")) return "response";
  if (channel.startsWith("socket.io#")) return "broadcast";
  throw new Error(`unexpected channel ${channel}`);
}

function capturedVectors(label, source, messages, exact) {
  messages.forEach(({ channel, payload }, index) => {
    const kind = kindOfChannel(channel);
    const decoded =
      kind === "legacy-emitter"
        ? decodeLegacy(payload)
        : kind === "broadcast"
          ? notepack.decode(payload)
          : decodeAdapterPayload(payload);
    const name = messages.length > 1 ? `${label}#${index}` : label;
    const opts = kind === "broadcast" ? decoded[2] : decoded && decoded.opts;
    vectors.push({
      name,
      source,
      kind,
      channel,
      hex: payload.toString("hex"),
      expect: describe(decoded),
      exact: (typeof exact === "function" ? exact(decoded, kind) : exact) && !hasIntRoom(opts),
      ...(kind === "broadcast" ? { socketio: socketioView(decoded) } : {}),
    });
  });
}

const withTimeout = (promise, label) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${label}`)), STEP_TIMEOUT_MS)),
  ]);

function once(emitter, event, label) {
  return withTimeout(new Promise((resolve) => emitter.once(event, resolve)), label);
}

async function startServer(redisUrl, adapterOpts, cleanups) {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on("error", (e) => log("pub error", e.message));
  sub.on("error", (e) => log("sub error", e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub, adapterOpts) });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit()]);
  });
  return { io, port: httpServer.address().port };
}

async function connectClient(port, cleanups, auth) {
  const socket = ioClient(`http://127.0.0.1:${port}`, { transports: ["websocket"], auth, reconnection: false });
  cleanups.push(async () => socket.close());
  await once(socket, "connect", `client connect to ${port}`);
  return socket;
}

async function liveVectors(cleanups) {
  const capture = new Capture(createClient({ url: REDIS_URL }));
  cleanups.push(async () => capture.client.quit().catch(() => {}));
  await capture.client.connect();
  await capture.start();

  // --- @socket.io/redis-emitter 5.x
  const emitterClient = createClient({ url: REDIS_URL });
  cleanups.push(async () => emitterClient.quit().catch(() => {}));
  await emitterClient.connect();
  const emitter = new Emitter(emitterClient);
  // The emitter writes opts as {rooms, flags, except} where the adapter writes
  // {rooms, except, flags}: Rust encodes the adapter's order, so emitter
  // broadcasts are checked by structure only; its JSON requests byte for byte.
  const e5 = async (label, action) =>
    capturedVectors(label, SRC.emitter5, await capture.step(label, 1, action), (_, kind) => kind !== "broadcast");
  await e5("emitter5/emit-all", () => emitter.emit("hello", "world", 1, { a: [1.5, null] }));
  await e5("emitter5/emit-room", () => emitter.to("room1").emit("hello", "room"));
  await e5("emitter5/emit-two-rooms", () => emitter.to("room1").to("room2").emit("hello", "rooms"));
  await e5("emitter5/emit-except", () => emitter.except("room3").emit("hello", "except"));
  await e5("emitter5/emit-room-except", () => emitter.to("room1").except(["sidA", "room3"]).emit("x"));
  await e5("emitter5/volatile", () => emitter.volatile.emit("v", 1));
  await e5("emitter5/compress-false", () => emitter.compress(false).emit("c", 2));
  await e5("emitter5/volatile-compress", () => emitter.to("r").volatile.compress(true).emit("vc"));
  await e5("emitter5/binary", () => emitter.emit("bin", Buffer.from([1, 2, 3]), { inner: Buffer.from("ab") }));
  await e5("emitter5/namespace", () => emitter.of("/admin").emit("admin-event", "x"));
  await e5("emitter5/int-room", () => emitter.to(42).emit("n"));
  await e5("emitter5/sockets-join", () => emitter.in("room1").socketsJoin("room2"));
  await e5("emitter5/sockets-join-many", () => emitter.except("room3").socketsJoin(["a", "b"]));
  await e5("emitter5/sockets-leave", () => emitter.in("room1").socketsLeave("room2"));
  await e5("emitter5/disconnect-close", () => emitter.in("room9").disconnectSockets(true));
  await e5("emitter5/disconnect", () => emitter.disconnectSockets());
  await e5("emitter5/server-side-emit", () => emitter.serverSideEmit("ping", "a", 2, { b: true }));

  // --- socket.io-emitter 0.2.0 (brings its own redis 0.10 client)
  const url = new URL(REDIS_URL);
  const legacy = require("socket.io-emitter")({ host: url.hostname, port: Number(url.port) });
  legacy.redis.on("error", (e) => log("legacy emitter error", e.message));
  cleanups.push(async () => legacy.redis.quit());
  const e02 = async (label, action) =>
    capturedVectors(label, SRC.emitter02, await capture.step(label, 1, action), false);
  await e02("emitter02/emit", () => legacy.emit("hello", "world", 1));
  await e02("emitter02/room", () => legacy.to("room1").emit("hello", "room"));
  await e02("emitter02/binary", () => legacy.to("room1").emit("hello", Buffer.from([1, 2, 3])));
  await e02("emitter02/namespace-volatile", () => legacy.of("/admin").volatile.emit("v", { a: "b" }));

  // --- two live socket.io servers with the redis adapter 8.3
  const a = await startServer(REDIS_URL, {}, cleanups);
  const b = await startServer(REDIS_URL, { publishOnSpecificResponseChannel: true }, cleanups);
  const serverSocketsB = [];
  let serverSocketA;
  a.io.on("connection", (socket) => {
    serverSocketA = socket;
    socket.data = { user: "alice" };
    socket.join("room1");
  });
  b.io.on("connection", (socket) => {
    serverSocketsB.push(socket);
    socket.data = { user: "bob", level: 3 };
    socket.join(["room1", "roomB"]);
  });
  b.io.on("ping-ack", (arg, ack) => ack({ pong: arg }));
  b.io.on("ping", () => {});

  const clientA = await connectClient(a.port, cleanups, { token: "a" });
  const clientB = await connectClient(b.port, cleanups, { token: "b" });
  clientA.on("with-ack", (arg, ack) => ack(`A got ${arg}`));
  clientB.on("with-ack", (arg, ack) => ack({ arg, from: "B" }));
  if (!serverSocketA || serverSocketsB.length !== 1) throw new Error("server sockets not registered");

  // Channels of the captured adapter traffic (skip any other test's traffic).
  const adapterTraffic = (m) => m.channel.startsWith("socket.io");
  // The type 5 response carries a handshake (headers, times): free-form JSON whose key order Rust need not keep.
  const exactUnlessFetch = (decoded) => !(decoded && Array.isArray(decoded.sockets) && typeof decoded.sockets[0] === "object");
  const ad = async (label, count, action, exact = true) =>
    capturedVectors(label, SRC.adapter, await capture.step(label, count, action, adapterTraffic), exact);

  await ad("adapter/emit-all", 1, () => a.io.emit("hello", "world", 42, 1.5, { a: 1, b: [null, true] }));
  await ad("adapter/emit-room", 1, () => a.io.to("room1").emit("hello", "room1"));
  await ad("adapter/emit-int-room", 1, () => a.io.to(42).emit("hello", "int room"));
  await ad("adapter/emit-rooms-except-flags", 1, () =>
    a.io.to(["room1", "room2"]).except("room3").volatile.compress(false).emit("flags", "x"),
  );
  await ad("adapter/emit-binary", 1, () =>
    a.io.emit("bin", Buffer.from([1, 2, 3]), { nested: Buffer.from("hi"), list: [Buffer.alloc(0)] }),
  );
  await ad("adapter/socket-broadcast", 1, () => serverSocketA.broadcast.emit("from-socket", "x"));
  await ad("adapter/socket-to-room", 1, () => serverSocketA.to("room1").emit("from-socket-room", 1));
  await ad("adapter/namespace", 1, () => a.io.of("/admin").emit("admin-event", { a: 1 }));
  await ad("adapter/fetch-sockets", 2, async () => {
    const sockets = await withTimeout(a.io.fetchSockets(), "fetchSockets");
    if (sockets.length !== 2) throw new Error(`fetchSockets returned ${sockets.length} sockets`);
  }, exactUnlessFetch);
  await ad("adapter/fetch-sockets-room-except", 2, async () => {
    await withTimeout(b.io.in("room1").except("roomX").fetchSockets(), "fetchSockets rooms");
  }, exactUnlessFetch);
  await ad("adapter/all-rooms", 2, async () => {
    const rooms = await withTimeout(a.io.of("/").adapter.allRooms(), "allRooms");
    if (!rooms.has("roomB")) throw new Error("allRooms misses roomB");
  });
  await ad("adapter/all-rooms-specific-channel", 2, () => withTimeout(b.io.of("/").adapter.allRooms(), "allRooms B"));
  await ad("adapter/sockets-join", 1, () => a.io.in("room1").socketsJoin("joined"));
  await ad("adapter/sockets-join-except", 1, () => a.io.except("room1").socketsJoin(["j1", "j2"]));
  await ad("adapter/sockets-leave", 1, () => a.io.in("room1").socketsLeave("joined"));
  await ad("adapter/disconnect-sockets", 1, () => a.io.in("nobody-here").disconnectSockets(true));
  await ad("adapter/disconnect-sockets-no-close", 1, () => a.io.in("nobody-here").disconnectSockets());
  await ad("adapter/server-side-emit", 1, () => a.io.serverSideEmit("ping", "a", 1, { b: [true] }));
  await ad("adapter/server-side-emit-ack", 2, async () => {
    const responses = await withTimeout(a.io.serverSideEmitWithAck("ping-ack", "hi"), "serverSideEmitWithAck");
    if (responses.length !== 1) throw new Error(`serverSideEmitWithAck: ${JSON.stringify(responses)}`);
  });
  await ad("adapter/emit-with-ack", 3, async () => {
    const responses = await withTimeout(a.io.timeout(2000).emitWithAck("with-ack", "q"), "emitWithAck");
    if (responses.length !== 2) throw new Error(`emitWithAck: ${JSON.stringify(responses)}`);
  });
  await ad("adapter/emit-with-ack-binary", 3, async () => {
    await withTimeout(a.io.timeout(2000).emitWithAck("with-ack", Buffer.from([7, 7])), "emitWithAck binary");
  });

  // Requests that adapter 8.3 answers but no longer sends: published here by
  // hand, the captured responses are the servers' real output.
  const pub = createClient({ url: REDIS_URL });
  cleanups.push(async () => pub.quit().catch(() => {}));
  await pub.connect();
  await ad("adapter/sockets-request", 3, () =>
    pub.publish("socket.io-request#/#", JSON.stringify({ uid: "golden", requestId: "sockq1", type: 0, rooms: ["room1"] })),
  );
  await ad("adapter/legacy-remote-join", 2, () =>
    pub.publish(
      "socket.io-request#/#",
      JSON.stringify({ uid: "golden", requestId: "join01", type: 2, sid: serverSocketsB[0].id, room: "legacy" }),
    ),
  );
  await ad("adapter/legacy-remote-disconnect", 2, () =>
    pub.publish(
      "socket.io-request#/#",
      JSON.stringify({ uid: "golden", requestId: "disc01", type: 4, sid: serverSocketsB[0].id, close: false }),
    ),
  );
  // The hand-made requests are not adapter output: mark them as such.
  for (const v of vectors) {
    if (/^adapter\/(sockets-request|legacy-remote-.*)#0$/.test(v.name)) v.source = "hand-made request (golden.js)";
  }
}

async function main() {
  directMsgpackVectors();
  sioVectors();
  const cleanups = [];
  try {
    if (!REDIS_URL) throw new Error("REDIS_URL is not set");
    await liveVectors(cleanups);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await Promise.resolve()
        .then(cleanup)
        .catch((e) => log("cleanup:", e.message));
    }
  }
  process.stdout.write(JSON.stringify(vectors) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    log("failed:", err.stack || err);
    process.exit(1);
  },
);
