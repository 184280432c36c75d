// Session churn against a gateway, for the memory soak: sessions open,
// do a little, and close, `concurrency` at a time, until `sessions` are done.
//
//   node churn.js --url http://127.0.0.1:3000 --sessions 5000 [--concurrency 50]
//                 [--transports polling|websocket|upgrade|mixed] [--mode close|early|ack]
//
// --transports: polling or websocket only; upgrade = polling then websocket
// (the client default); mixed = polling-only and websocket-only sessions
// in turn.
// --mode (what each session does):
//   close  joins a room, sends `message` and closes at once: on long-polling
//          the join and the close reach the server in one request, so the
//          join's handler runs after the disconnect (the leak of issue 21);
//   early  closes as soon as the Engine.IO session is open, before the
//          namespace CONNECT is answered;
//   ack    joins, waits for the join's ack, sends `message`, closes.
//
// stdout: one JSON line at the end, {"sessions":n,"failed":n,"seconds":s};
// the process exits once every close has been sent.
// A session fails when it gets connect_error or times out (10 s).
"use strict";

const { io } = require("socket.io-client");

function parseArgs(argv) {
  const opts = { sessions: 1000, concurrency: 50, transports: "polling", mode: "close" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in opts) && key !== "url") throw new Error(`unknown option ${argv[i]}`);
    if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
    opts[key] = argv[i + 1];
  }
  if (!opts.url) throw new Error("--url is required");
  opts.sessions = Number(opts.sessions);
  opts.concurrency = Number(opts.concurrency);
  if (!["close", "early", "ack"].includes(opts.mode)) throw new Error(`unknown --mode ${opts.mode}`);
  if (!["polling", "websocket", "upgrade", "mixed"].includes(opts.transports)) {
    throw new Error(`unknown --transports ${opts.transports}`);
  }
  return opts;
}

function transportsOf(kind, n) {
  switch (kind) {
    case "upgrade":
      return ["polling", "websocket"];
    case "mixed":
      return n % 2 === 0 ? ["polling"] : ["websocket"];
    default:
      return [kind];
  }
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const startedAt = Date.now();
  let started = 0;
  let done = 0;
  let failed = 0;

  const next = () => {
    if (started >= opts.sessions) return;
    const n = started++;
    const socket = io(opts.url, {
      transports: transportsOf(opts.transports, n),
      reconnection: false,
      forceNew: true,
      timeout: 10000,
    });
    let finished = false;
    const finish = (ok) => {
      if (finished) return;
      finished = true;
      if (!ok) failed++;
      socket.close();
      done++;
      if (done === opts.sessions) {
        // No process.exit: the last sessions' close requests are still on
        // their way, and a session whose close is cut off lingers on the
        // server until its heartbeat times out. Node exits once they are sent.
        const seconds = (Date.now() - startedAt) / 1000;
        process.stdout.write(JSON.stringify({ sessions: done, failed, seconds }) + "\n");
        return;
      }
      setImmediate(next);
    };
    const room = `room-${n % 10}`;
    if (opts.mode === "early") socket.io.on("open", () => setImmediate(() => finish(true)));
    socket.on("connect", () => {
      if (opts.mode === "early") return;
      if (opts.mode === "close") {
        socket.emit("join", room);
        socket.emit("message", "hello");
        finish(true);
        return;
      }
      socket.emit("join", room, () => {
        socket.emit("message", "hello");
        finish(true);
      });
    });
    socket.on("connect_error", () => finish(false));
  };
  for (let i = 0; i < Math.min(opts.concurrency, opts.sessions); i++) next();
}

main();
