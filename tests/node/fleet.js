// A fleet of real socket.io-client 4.x clients for the Compose test
// (scripts/test-compose.sh), driven by one JSON command per stdin line;
// one JSON answer per command on stdout.
//
//   {"cmd":"connect","group":"lb-ws","url":U,"count":N,"transports":["websocket"]}
//       -> {"connected":N} once all N are connected (or {"error"})
//   {"cmd":"emit","group":G,"event":"message","args":[marker]}
//       -> client 0 of G emits; it does not count in the next `await`
//   {"cmd":"await","prefix":P,"timeout":MS}
//       -> {"received":K,"of":N,"ms":T}: waits until every client of the
//          fleet (the sender of an `emit` aside) is connected and has
//          received a "message" whose first argument starts with P
//   {"cmd":"close","group":G} -> {"closed":N}
//   {"cmd":"status"} -> {"connected","total","reconnects","groups":{G:N}}
// Clients reconnect by themselves (socket.io-client's default), and each
// keeps every marker it received.
"use strict";

const readline = require("readline");
const { io } = require("socket.io-client");

const clients = []; // {group, socket, markers: string[], reconnects}
let sender = null;
const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function connect({ group, url, count, transports }) {
  const fresh = [];
  for (let i = 0; i < count; i++) {
    const socket = io(url, { transports, forceNew: true, reconnectionDelayMax: 1000, timeout: 5000 });
    const client = { group, socket, markers: [], reconnects: 0 };
    socket.on("message", (marker) => {
      if (typeof marker === "string") client.markers.push(marker);
    });
    socket.io.on("reconnect", () => client.reconnects++);
    clients.push(client);
    fresh.push(client);
  }
  return waitFor(() => fresh.every((c) => c.socket.connected), 20000).then((ok) =>
    ok ? { connected: count } : { error: `${fresh.filter((c) => c.socket.connected).length} of ${count} connected in 20 s` }
  );
}

function waitFor(predicate, timeout) {
  const deadline = Date.now() + timeout;
  return new Promise((resolve) => {
    const tick = () => {
      if (predicate()) return resolve(true);
      if (Date.now() > deadline) return resolve(false);
      setTimeout(tick, 20);
    };
    tick();
  });
}

async function awaitMarker({ prefix, timeout }) {
  const started = Date.now();
  const targets = () => clients.filter((c) => c !== sender);
  const got = (c) => c.socket.connected && c.markers.some((m) => m.startsWith(prefix));
  const ok = await waitFor(() => targets().every(got), timeout);
  const received = targets().filter(got).length;
  return { received, of: targets().length, ms: Date.now() - started, ...(ok ? {} : { timeout: true }) };
}

function status() {
  const groups = {};
  for (const c of clients) groups[c.group] = (groups[c.group] || 0) + (c.socket.connected ? 1 : 0);
  return {
    connected: clients.filter((c) => c.socket.connected).length,
    total: clients.length,
    reconnects: clients.reduce((sum, c) => sum + c.reconnects, 0),
    groups,
  };
}

async function handle(command) {
  switch (command.cmd) {
    case "connect":
      return connect(command);
    case "emit": {
      const client = clients.find((c) => c.group === command.group && c.socket.connected);
      if (!client) return { error: `no connected client in ${command.group}` };
      sender = client;
      client.socket.emit(command.event || "message", ...(command.args || []));
      return { emitted: true };
    }
    case "await":
      return awaitMarker(command);
    case "close": {
      const closing = clients.filter((c) => c.group === command.group);
      closing.forEach((c) => c.socket.close());
      closing.forEach((c) => clients.splice(clients.indexOf(c), 1));
      if (closing.includes(sender)) sender = null;
      return { closed: closing.length };
    }
    case "status":
      return status();
    default:
      return { error: `unknown command ${command.cmd}` };
  }
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    let command;
    try {
      command = JSON.parse(line);
    } catch (err) {
      return print({ error: `bad command: ${err.message}` });
    }
    print(await handle(command));
  });
});
lines.on("close", () => queue.then(() => process.exit(0)));
