// Golden vectors of the ClusterAdapter message format (socket.io-adapter
// 2.5), produced by the REAL Node packages: two socket.io 4.8 servers with
// @socket.io/redis-adapter's createShardedAdapter share the Redis 7 at
// REDIS_URL, and every message they SPUBLISH is recorded as it is handed to
// their node-redis client (a subscriber of ours would count as a server and
// leave every ack and fetch waiting for its answer). The heartbeat messages
// (INITIAL_HEARTBEAT, HEARTBEAT, ADAPTER_CLOSE), which only the heartbeat
// flavour of the ClusterAdapter publishes, are written by the sharded
// adapter's own `encode`.
//
// Output: one JSON array on stdout of {name, source, channel, hex, expect}
// expect: the Node decoder's view (JSON.parse, or notepack.io 3 when the
// first byte is not `{`), bytes as {$bin: hex}, undefined as {$undefined}
// The Rust test decodes each one, compares with `expect`, and re-encodes it
// byte for byte.
"use strict";

const http = require("http");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createShardedAdapter } = require("@socket.io/redis-adapter");
const ioClient = require("socket.io-client");
const { describe, decodeAdapterPayload } = require("./common");

const REDIS_URL = process.env.REDIS_URL;
const STEP_TIMEOUT_MS = 5000;
const installedVersion = (dir) =>
  JSON.parse(require("fs").readFileSync(require("path").join(__dirname, "node_modules", dir, "package.json"))).version;
const SOURCE = `@socket.io/redis-adapter@${installedVersion("@socket.io/redis-adapter")} createShardedAdapter + socket.io@${installedVersion("socket.io")} + socket.io-adapter@${installedVersion("socket.io-adapter")}`;

const log = (...args) => process.stderr.write(`[golden-cluster] ${args.join(" ")}\n`);
const vectors = [];
let captured = [];

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Waits until `count` messages were captured since the last call, and names them. */
async function take(names, what) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (captured.length < names.length) {
    if (Date.now() > deadline) {
      throw new Error(`timed out: ${what}: ${captured.length} of ${names.length} messages`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // Let a message too many show up before checking there is none.
  await new Promise((resolve) => setTimeout(resolve, 50));
  if (captured.length !== names.length) {
    throw new Error(`${what}: ${captured.length} messages, expected ${names.length}`);
  }
  // Publish order is not arrival order across channels: sort by type.
  const got = captured.sort((a, b) => decodeAdapterPayload(a.message).type - decodeAdapterPayload(b.message).type);
  captured = [];
  log(what, "ok");
  got.forEach(({ channel, message }, index) => record(names[index], channel, message));
}

function record(name, channel, message) {
  vectors.push({
    name,
    source: SOURCE,
    channel,
    hex: message.toString("hex"),
    expect: describe(decodeAdapterPayload(message)),
  });
}

async function server(name) {
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const sPublish = pub.sPublish.bind(pub);
  pub.sPublish = (channel, message) => {
    captured.push({ channel, message: Buffer.from(message) });
    return sPublish(channel, message);
  };
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createShardedAdapter(pub, sub) });
  io.on("connection", (socket) => {
    socket.data = { name, level: 3 };
    socket.join("room1");
    socket.on("disconnect", () => {});
  });
  io.on("ping", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
    if (ack) ack(args[0] === "binary" ? Buffer.from([7, 8]) : `pong from ${name}`);
  });
  io.of("/chat").on("connection", () => {});
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return { io, httpServer, pub, sub, port: httpServer.address().port };
}

async function client(port, nsp) {
  const socket = ioClient(`http://127.0.0.1:${port}${nsp}`, { transports: ["websocket"], forceNew: true });
  await withTimeout(new Promise((resolve) => socket.on("connect", resolve)), `client on ${port}${nsp}`);
  return socket;
}

async function main() {
  const a = await server("a");
  const b = await server("b");
  const uidA = a.io.of("/").adapter.uid;
  const uidB = b.io.of("/").adapter.uid;
  // B's sockets: acks answer with text, or bytes for "binary".
  const onB = await client(b.port, "/");
  onB.on("ask", (kind, ack) => ack(kind === "binary" ? Buffer.from([1, 2, 3]) : "answer"));
  await client(b.port, "/chat");
  // Joining room1 created its dynamic channel subscription; let the
  // subscriptions settle before publishing.
  await new Promise((resolve) => setTimeout(resolve, 200));

  a.io.emit("hello", "world", 1, -2, 1.5, 1e21, { nested: [true, null], "é": "ü" });
  await take(["broadcast-json"], "broadcast");
  a.io.to("room1").emit("bin", Buffer.from([1, 2, 3]), { more: Buffer.alloc(0) });
  await take(["broadcast-room-binary"], "room broadcast with binary");
  a.io.to(["room1", "room2"]).except("room3").volatile.compress(false).emit("rooms", 1);
  await take(["broadcast-rooms-except-flags"], "broadcast to two rooms");
  a.io.to(onB.id).emit("direct", "to a socket id");
  await take(["broadcast-socket-id"], "broadcast to a socket id");
  a.io.of("/chat").emit("chat", "hi");
  await take(["broadcast-other-namespace"], "broadcast on /chat");

  const acks = a.io.timeout(2000).emitWithAck("ask", "text");
  await take(["broadcast-with-ack", "broadcast-client-count", "broadcast-ack"], "broadcast with ack");
  await withTimeout(acks, "acks");
  const binaryAcks = a.io.timeout(2000).emitWithAck("ask", "binary");
  await take(["broadcast-with-ack-2", "broadcast-client-count-2", "broadcast-ack-binary"], "binary ack");
  await withTimeout(binaryAcks, "binary acks");

  a.io.in("room1").socketsJoin(["room2", "room3"]);
  await take(["sockets-join"], "socketsJoin");
  a.io.in("room2").except(onB.id).socketsLeave("room3");
  await take(["sockets-leave"], "socketsLeave");

  const fetched = withTimeout(a.io.fetchSockets(), "fetchSockets");
  await take(["fetch-sockets", "fetch-sockets-response"], "fetchSockets");
  await fetched;
  b.io.fetchSockets().catch(() => {});
  await take(["fetch-sockets-empty-from-b", "fetch-sockets-response-empty"], "fetchSockets from b");

  a.io.serverSideEmit("ping", "no ack", { n: 1 });
  await take(["server-side-emit"], "serverSideEmit");
  const answered = withTimeout(a.io.serverSideEmitWithAck("ping", "with ack"), "serverSideEmitWithAck");
  await take(["server-side-emit-with-ack", "server-side-emit-response"], "serverSideEmitWithAck");
  await answered;
  const binaryAnswer = withTimeout(a.io.serverSideEmitWithAck("ping", "binary"), "binary serverSideEmitWithAck");
  await take(["server-side-emit-with-ack-2", "server-side-emit-response-binary"], "binary serverSideEmitWithAck");
  await binaryAnswer;

  a.io.in("room2").disconnectSockets(true);
  await take(["disconnect-sockets"], "disconnectSockets");

  // What only the heartbeat flavour publishes, through the same encoder.
  const adapter = a.io.of("/").adapter;
  for (const [name, type] of [["initial-heartbeat", 1], ["heartbeat", 2], ["adapter-close", 13]]) {
    record(name, "socket.io#/#", Buffer.from(adapter.encode({ type, uid: uidA, nsp: "/" })));
  }

  process.stdout.write(JSON.stringify(vectors));
  for (const { io, pub, sub } of [a, b]) {
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit()]);
  }
  process.exit(0);
}

main().catch((err) => {
  log(err.stack || err);
  process.exit(1);
});
