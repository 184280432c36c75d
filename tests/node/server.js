// A real Node cluster member: socket.io 4.8 + @socket.io/redis-adapter 8.3.
//
// It runs the same default handlers as the Rust gateway so tests can mix
// Node and Rust nodes on one Redis, and it can be driven by tests to make the
// adapter send every kind of request.
//
//   node server.js --port 0 --pub redis://127.0.0.1:6379 [--sub redis://replica]
//                  [--nsp /admin ...] [--key socket.io] [--specific-response-channel]
//                  [--requests-timeout 5000] [--name node-a]
//
// stdout: first `listening <port>`, then one JSON line per notable event:
//   {"event":"connection","nsp","sid"} {"event":"disconnect","nsp","sid","reason"}
//   {"event":"serverSideEmit","nsp","args":[..]}   (acked with {name, event} when asked)
//   {"reply":<id>,"ok":<result>} | {"reply":<id>,"error":"..."}
// stdin: JSON-line commands {id, op, nsp?, ...} (see `runOp`); the same ops are
// available to clients through the `ctl` event ({op,...}, ack -> {ok}|{error}).
// Binary values use common.js conventions ({$bin: hex}) in both directions.
"use strict";

const http = require("http");
const readline = require("readline");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { describe, revive } = require("./common");

function parseArgs(argv) {
  const opts = { port: Number(process.env.PORT || 0), nsps: [], name: `node-${process.pid}` };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--port": opts.port = Number(next()); break;
      case "--pub": opts.pub = next(); break;
      case "--sub": opts.sub = next(); break;
      case "--nsp": opts.nsps.push(next()); break;
      case "--key": opts.key = next(); break;
      case "--name": opts.name = next(); break;
      case "--specific-response-channel": opts.specific = true; break;
      case "--requests-timeout": opts.requestsTimeout = Number(next()); break;
      default: throw new Error(`unknown argument ${arg}`);
    }
  }
  opts.pub = opts.pub || process.env.REDIS_URL;
  if (!opts.pub) throw new Error("--pub <redis url> (or REDIS_URL) is required");
  opts.sub = opts.sub || opts.pub;
  if (!opts.nsps.includes("/")) opts.nsps.unshift("/");
  return opts;
}

const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const log = (...args) => process.stderr.write(`[server ${process.pid}] ${args.join(" ")}\n`);

const RESERVED = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);

/** The Rust gateway's default handlers (crates/gateway/src/handlers.rs). */
function registerDefaultHandlers(nsp) {
  nsp.on("connection", (socket) => {
    print({ event: "connection", nsp: nsp.name, sid: socket.id });
    socket.on("disconnect", (reason) => print({ event: "disconnect", nsp: nsp.name, sid: socket.id, reason }));
    socket.on("message", (...args) => socket.broadcast.emit("message", ...args));
    const roomHandler = (join) => (room, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      if (typeof room === "number") room = String(room);
      if (typeof room !== "string" || room === "") return reply("room name must be a non-empty string");
      if (join) socket.join(room);
      else socket.leave(room);
      reply(true);
    };
    socket.on("join", roomHandler(true));
    socket.on("leave", roomHandler(false));
    socket.on("publish", (request, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      if (!request || typeof request !== "object") return reply("publish expects an object {room, event, data}");
      const { room, event, data } = request;
      if (typeof event !== "string" || event === "" || RESERVED.has(event)) return reply("invalid event");
      socket.to(String(room)).emit(event, data === undefined ? null : data);
      reply(true);
    });
    socket.on("ctl", (command, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      runOp(nsp.server, command || {}).then(
        (ok) => reply({ ok: describe(ok) }),
        (err) => reply({ error: String(err.message || err) }),
      );
    });
  });
}

/** Ops a test can ask for; each resolves with a JSON-describable result. */
async function runOp(io, command) {
  const nsp = io.of(command.nsp || "/");
  let target = nsp;
  if (command.rooms) target = target.in(command.rooms);
  if (command.except) target = target.except(command.except);
  const args = revive(command.args || []);
  switch (command.op) {
    case "emit":
      if (command.volatile) target = target.volatile;
      target.emit(command.event, ...args);
      return true;
    case "emitWithAck": {
      const responses = await target.timeout(command.timeout || 2000).emitWithAck(command.event, ...args);
      return responses;
    }
    case "fetchSockets": {
      const sockets = await target.fetchSockets();
      return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data === undefined ? null : s.data }));
    }
    case "allRooms":
      return [...(await nsp.adapter.allRooms())];
    case "serverCount":
      return await nsp.adapter.serverCount();
    case "socketsJoin":
      target.socketsJoin(command.join);
      return true;
    case "socketsLeave":
      target.socketsLeave(command.leave);
      return true;
    case "disconnectSockets":
      target.disconnectSockets(!!command.close);
      return true;
    case "serverSideEmit":
      nsp.serverSideEmit(command.event, ...args);
      return true;
    case "serverSideEmitWithAck":
      return await nsp.serverSideEmitWithAck(command.event, ...args);
    case "localSockets":
      return [...nsp.sockets.values()].map((s) => ({ id: s.id, rooms: [...s.rooms] }));
    default:
      throw new Error(`unknown op ${JSON.stringify(command.op)}`);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pub = createClient({ url: opts.pub });
  const sub = createClient({ url: opts.sub });
  // Keep going through Redis restarts in failover tests; log, never crash.
  pub.on("error", (e) => log("pub client:", e.message));
  sub.on("error", (e) => log("sub client:", e.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const adapterOpts = { publishOnSpecificResponseChannel: !!opts.specific };
  if (opts.key) adapterOpts.key = opts.key;
  if (opts.requestsTimeout) adapterOpts.requestsTimeout = opts.requestsTimeout;
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub, adapterOpts), allowEIO3: true });

  for (const name of opts.nsps) {
    const nsp = io.of(name);
    registerDefaultHandlers(nsp);
    // socket.io has no catch-all for server-side events: wrap its dispatcher
    // (a private method of socket.io 4.8, pinned by the lockfile).
    const dispatch = nsp._onServerSideEmit.bind(nsp);
    nsp._onServerSideEmit = (args) => {
      const ack = typeof args[args.length - 1] === "function" ? args[args.length - 1] : undefined;
      const plain = ack ? args.slice(0, -1) : args;
      print({ event: "serverSideEmit", nsp: name, args: describe(plain) });
      if (ack) ack({ name: opts.name, event: plain[0] });
      else dispatch(args);
    };
  }

  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    if (line.trim() === "") return;
    let command;
    try {
      command = JSON.parse(line);
    } catch (err) {
      return print({ reply: null, error: `bad command: ${err.message}` });
    }
    runOp(io, command).then(
      (ok) => print({ reply: command.id === undefined ? null : command.id, ok: describe(ok) }),
      (err) => print({ reply: command.id === undefined ? null : command.id, error: String(err.message || err) }),
    );
  });
  // The test harness closes stdin (or kills us) to stop the server.
  rl.on("close", () => shutdown(0));

  let closing = false;
  async function shutdown(code) {
    if (closing) return;
    closing = true;
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit()]);
    process.exit(code);
  }
  process.on("SIGTERM", () => shutdown(0));
  process.on("SIGINT", () => shutdown(0));

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(opts.port, "127.0.0.1", resolve);
  });
  process.stdout.write(`listening ${httpServer.address().port}\n`);
}

main().catch((err) => {
  log("failed:", err.stack || err);
  process.exit(1);
});
