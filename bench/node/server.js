// The Node stack of `make bench`: socket.io 4.8 with @socket.io/redis-adapter
// 8.3, publishing on the Redis master and subscribing on a replica like the
// seed, with the same default handlers as the Rust gateway
// (crates/gateway/src/handlers.rs): `message` relayed to every other socket,
// `join`/`leave` with an ack, `publish` {room, event, data} to a room.
//
//   node server.js --port 3000 --pub redis://127.0.0.1:6379 --sub redis://127.0.0.1:6380
//
// Prints `listening <port>` once the adapter is subscribed.
"use strict";

const http = require("http");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");

function parseArgs(argv) {
  const opts = { port: 3000 };
  for (let i = 0; i < argv.length; i++) {
    const next = () => argv[++i];
    switch (argv[i]) {
      case "--port": opts.port = Number(next()); break;
      case "--pub": opts.pub = next(); break;
      case "--sub": opts.sub = next(); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!opts.pub) throw new Error("--pub <redis url> is required");
  opts.sub = opts.sub || opts.pub;
  return opts;
}

const RESERVED = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);

function roomName(room) {
  if (typeof room === "number") room = String(room);
  if (typeof room !== "string" || room === "") return null;
  return room;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pubClient = createClient({ url: opts.pub });
  const subClient = createClient({ url: opts.sub });
  for (const c of [pubClient, subClient]) c.on("error", (err) => console.error("redis error", err.message));
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pubClient, subClient) });
  io.on("connection", (socket) => {
    socket.on("message", (...args) => socket.broadcast.emit("message", ...args));
    const rooms = (join) => (room, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const name = roomName(room);
      if (name === null) return reply("room name must be a non-empty string");
      if (join) socket.join(name);
      else socket.leave(name);
      reply(true);
    };
    socket.on("join", rooms(true));
    socket.on("leave", rooms(false));
    socket.on("publish", (request, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      if (!request || typeof request !== "object") return reply("publish expects an object {room, event, data}");
      const room = roomName(request.room);
      const { event, data } = request;
      if (room === null) return reply("room name must be a non-empty string");
      if (typeof event !== "string" || event === "" || RESERVED.has(event)) return reply("invalid event");
      socket.to(room).emit(event, data === undefined ? null : data);
      reply(true);
    });
  });

  httpServer.listen(opts.port, "127.0.0.1", () => {
    console.log(`listening ${httpServer.address().port}`);
  });
  const stop = () => {
    io.close();
    Promise.allSettled([pubClient.quit(), subClient.quit()]).finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
