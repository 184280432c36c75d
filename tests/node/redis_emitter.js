// The reference: Node's real @socket.io/redis-emitter 5.x, driven through
// pipes so the Rust tests can compare what it publishes with what the Rust
// emitter publishes for the same calls.
//
//   node redis_emitter.js --redis redis://127.0.0.1:6379 [--key socket.io]
//
// stdout: `ready`, then {"done":<id>} once a command's PUBLISH went through
// (a PING on the same connection answers after it), or {"done":<id>,"error":".."}.
// stdin: JSON lines
//   {"id":1,"op":"emit","nsp":"/","rooms":[..],"except":[..],"volatile":true,
//    "compress":false,"event":"e","args":[..]}         (bytes as {"$bin": hex})
//   {"id":2,"op":"socketsJoin"|"socketsLeave","rooms":[..],"except":[..],"target":[..]}
//   {"id":3,"op":"disconnectSockets","close":true}
//   {"id":4,"op":"serverSideEmit","event":"e","args":[..]}
"use strict";

const readline = require("readline");
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");
const { revive } = require("./common");

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case "--redis": opts.redis = value; i++; break;
      case "--key": opts.key = value; i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!opts.redis) throw new Error("--redis is required");
  return opts;
}

function run(emitter, command) {
  let target = emitter.of(command.nsp || "/");
  const selected = () => {
    let op = target;
    for (const room of command.rooms || []) op = op.to(room);
    for (const room of command.except || []) op = op.except(room);
    if (command.volatile) op = op.volatile;
    if (command.compress !== undefined) op = op.compress(command.compress);
    return op;
  };
  const args = revive(command.args || []);
  switch (command.op) {
    case "emit": return selected().emit(command.event, ...args);
    case "socketsJoin": return selected().socketsJoin(command.target);
    case "socketsLeave": return selected().socketsLeave(command.target);
    case "disconnectSockets": return selected().disconnectSockets(!!command.close);
    case "serverSideEmit": return target.serverSideEmit(command.event, ...args);
    default: throw new Error(`unknown op ${JSON.stringify(command.op)}`);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const client = createClient({ url: opts.redis });
  client.on("error", (err) => process.stderr.write(`[node_emitter] redis: ${err.message}\n`));
  await client.connect();
  const emitter = new Emitter(client, opts.key ? { key: opts.key } : {});
  const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  lines.on("line", async (line) => {
    if (line.trim() === "") return;
    let command;
    try {
      command = JSON.parse(line);
      run(emitter, command);
      await client.ping();
      print({ done: command.id });
    } catch (err) {
      print({ done: command ? command.id : null, error: String(err.message || err) });
    }
  });
  lines.on("close", async () => {
    await client.quit().catch(() => {});
    process.exit(0);
  });
  process.stdout.write("ready\n");
}

main().catch((err) => {
  process.stderr.write(`[node_emitter] ${err.stack || err}\n`);
  process.exit(1);
});
