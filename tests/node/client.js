// A real Socket.IO client driven through pipes by the Rust tests.
//
//   node client.js --url http://127.0.0.1:3000 [--nsp /admin] [--v2]
//                  [--transports websocket|polling|polling,websocket]
//                  [--auth '{"token":"x"}'] [--query '{"token":"x"}']
//                  [--headers '{"authorization":"Bearer x"}'] [--name c1] [--reconnect]
//                  [--failover-url http://127.0.0.1:3001]
//
// --failover-url: when the server closes the transport (a draining
// gateway), connect a new socket to this URL instead, as a load balancer
// would send the client elsewhere; prints {"event":"$connect"} once there.
//
// --v2 uses socket.io-client 2.x (Engine.IO 3 / Socket.IO v4 protocol);
// the default is socket.io-client 4.8.
//
// stdout: first `connected <socket id>`, then one JSON line per happening:
//   {"event":<name>,"args":[..],"acked":bool}  every event the server sends;
//       when the server asks for an ack the client answers {client, event}
//   {"event":"$disconnect","args":[reason]} / "$connect" / "$connect_error"
//   {"ack":<id>,"args":[..]} | {"ack":<id>,"error":"timeout"}
// stdin: JSON-line commands
//   {"cmd":"emit","event":"e","args":[..]}
//   {"cmd":"emitWithAck","id":1,"event":"e","args":[..],"timeout":2000}
//   {"cmd":"join","id":2,"room":"r"}   {"cmd":"leave","id":3,"room":"r"}
//   {"cmd":"flood","event":"e","args":[..],"count":100,"intervalMs":20,"batch":1,"numbered":false}
//       emits count times, batch at a time every intervalMs (numbered: the
//       first argument gets "-<n>" appended); prints {"flooded":count} after
//   {"cmd":"disconnect"}   {"cmd":"connect"}   {"cmd":"exit"}
// Binary values use common.js conventions ({$bin: hex}) in both directions.
"use strict";

const readline = require("readline");
const { describe, revive } = require("./common");

function parseArgs(argv) {
  const opts = { nsp: "/", transports: ["websocket"], name: `client-${process.pid}`, v2: false, reconnect: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--url": opts.url = next(); break;
      case "--nsp": opts.nsp = next(); break;
      case "--v2": opts.v2 = true; break;
      case "--transports": opts.transports = next().split(","); break;
      case "--auth": opts.auth = JSON.parse(next()); break;
      case "--query": opts.query = JSON.parse(next()); break;
      case "--headers": opts.headers = JSON.parse(next()); break;
      case "--name": opts.name = next(); break;
      case "--reconnect": opts.reconnect = true; break;
      case "--failover-url": opts.failoverUrl = next(); break;
      default: throw new Error(`unknown argument ${arg}`);
    }
  }
  if (!opts.url) throw new Error("--url is required");
  return opts;
}

const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const targetOf = (url) => url.replace(/\/$/, "") + (opts.nsp === "/" ? "" : opts.nsp);
  const clientOpts = { transports: opts.transports, reconnection: opts.reconnect, forceNew: true };
  if (opts.auth && !opts.v2) clientOpts.auth = opts.auth;
  if (opts.query) clientOpts.query = opts.query;
  if (opts.headers) clientOpts.extraHeaders = opts.headers;
  const io = opts.v2 ? require("socket.io-client-v2") : require("socket.io-client");

  const onServerEvent = (event, args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
    print({ event, args: describe(args), acked: !!ack });
    if (ack) ack({ client: opts.name, event });
  };

  let ready = false;
  let failedOver = false;
  let socket;
  const connect = (url) => {
    const s = io(targetOf(url), clientOpts);
    if (opts.v2) {
      // socket.io-client 2 has no onAny: take over its event dispatch.
      s.onevent = function (packet) {
        const args = (packet.data || []).slice();
        if (packet.id != null) args.push(this.ack(packet.id));
        const event = args.shift();
        onServerEvent(event, args);
      };
    } else {
      s.onAny((event, ...args) => onServerEvent(event, args));
    }
    s.on("connect", () => {
      if (!ready) {
        ready = true;
        process.stdout.write(`connected ${s.id}\n`);
      } else {
        print({ event: "$connect", args: [s.id, url] });
      }
    });
    s.on("disconnect", (reason) => {
      print({ event: "$disconnect", args: [String(reason)] });
      const serverGone = reason === "transport close" || reason === "transport error" || reason === "ping timeout";
      if (serverGone && opts.failoverUrl && !failedOver) {
        failedOver = true;
        s.close();
        socket = connect(opts.failoverUrl);
      }
    });
    s.on("connect_error", (err) => {
      print({ event: "$connect_error", args: [String((err && err.message) || err)] });
      if (!ready && !opts.reconnect) process.exit(1);
    });
    // socket.io-client 2 reports a refused namespace CONNECT as "error",
    // with the server's {message}.
    if (opts.v2) {
      s.on("error", (err) => {
        print({ event: "$connect_error", args: [String((err && err.message) || err)] });
        if (!ready && !opts.reconnect) process.exit(1);
      });
    }
    return s;
  };
  socket = connect(opts.url);

  const emitWithAck = (id, event, args, timeoutMs) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      print({ ack: id, error: "timeout" });
    }, timeoutMs || 2000);
    socket.emit(event, ...args, (...response) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      print({ ack: id, args: describe(response) });
    });
  };

  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    if (line.trim() === "") return;
    let command;
    try {
      command = JSON.parse(line);
    } catch (err) {
      return print({ event: "$error", args: [`bad command: ${err.message}`] });
    }
    switch (command.cmd) {
      case "emit":
        socket.emit(command.event, ...revive(command.args || []));
        break;
      case "emitWithAck":
        emitWithAck(command.id, command.event, revive(command.args || []), command.timeout);
        break;
      case "join":
      case "leave":
        emitWithAck(command.id, command.cmd, [command.room], command.timeout);
        break;
      case "flood": {
        let sent = 0;
        const timer = setInterval(() => {
          if (sent >= command.count) {
            clearInterval(timer);
            return print({ flooded: sent });
          }
          for (let i = 0; i < (command.batch || 1) && sent < command.count; i++) {
            const args = revive(command.args || []);
            if (command.numbered && typeof args[0] === "string") args[0] = `${args[0]}-${sent}`;
            socket.emit(command.event, ...args);
            sent += 1;
          }
        }, command.intervalMs || 0);
        break;
      }
      case "disconnect":
        socket.disconnect();
        break;
      case "connect":
        socket.connect();
        break;
      case "exit":
        socket.close();
        process.exit(0);
        break;
      default:
        print({ event: "$error", args: [`unknown cmd ${JSON.stringify(command.cmd)}`] });
    }
  });
  // The harness closes stdin (or kills us) to stop the client.
  rl.on("close", () => {
    socket.close();
    process.exit(0);
  });
}

try {
  main();
} catch (err) {
  process.stderr.write(`[client] ${err.stack || err}\n`);
  process.exit(1);
}
