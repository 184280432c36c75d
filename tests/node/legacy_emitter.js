// The seed's own emitter: socket.io-emitter 0.2.0 (2014, msgpack-js,
// channel `socket.io#emitter`), driven through pipes by the Rust tests.
//
//   node legacy_emitter.js --port 6379 [--host 127.0.0.1]
//
// stdout: `ready`, then {"done":<id>} once a command's PUBLISH went through
// (a PING on the same connection answers after it), or {"done":<id>,"error":".."}.
// stdin: JSON lines
//   {"id":1,"nsp":"/","rooms":[..],"volatile":true,"event":"e","args":[..]}
//   (bytes as {"$bin": hex})
"use strict";

const readline = require("readline");
const { revive } = require("./common");

function parseArgs(argv) {
  const opts = { host: "127.0.0.1" };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case "--port": opts.port = Number(value); i++; break;
      case "--host": opts.host = value; i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!opts.port) throw new Error("--port is required");
  return opts;
}

const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const emitter = require("socket.io-emitter")({ host: opts.host, port: opts.port });
  emitter.redis.on("error", (err) => process.stderr.write(`[legacy_emitter] redis: ${err.message}\n`));
  emitter.redis.on("ready", () => process.stdout.write("ready\n"));

  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    if (line.trim() === "") return;
    let command;
    try {
      command = JSON.parse(line);
    } catch (err) {
      return print({ done: null, error: `bad command: ${err.message}` });
    }
    try {
      // socket.io-emitter 0.2.0 keeps its selectors on the instance: start
      // from a fresh namespace object each time.
      let target = emitter.of(command.nsp || "/");
      for (const room of command.rooms || []) target = target.to(room);
      if (command.volatile) target = target.volatile;
      target.emit(command.event, ...revive(command.args || []));
      emitter.redis.ping((err) => print(err ? { done: command.id, error: String(err) } : { done: command.id }));
    } catch (err) {
      print({ done: command.id, error: String((err && err.stack) || err) });
    }
  });
  rl.on("close", () => {
    emitter.redis.quit();
    process.exit(0);
  });
}

try {
  main();
} catch (err) {
  process.stderr.write(`[legacy_emitter] ${err.stack || err}\n`);
  process.exit(1);
}
