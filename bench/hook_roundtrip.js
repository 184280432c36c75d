// Backend hook round trips: one socket.io-client emits `echo` with an ack
// RATE times a second for SECONDS through a gateway whose event hook is
// tests/node/hook_backend.js; prints acks, error acks, p50, p99 and max.
// usage: node bench/hook_roundtrip.js URL RATE SECONDS
const { io } = require(require("path").join(__dirname, "../tests/node/node_modules/socket.io-client"));
const [url, rate, seconds] = [process.argv[2], +process.argv[3], +process.argv[4]];
const s = io(url, { transports: ["websocket"] });
const lat = [];
s.on("connect", () => {
  const total = rate * seconds; let sent = 0, done = 0; var errors = 0; globalThis.errs = () => errors;
  const start = process.hrtime.bigint();
  const tick = setInterval(() => {
    const due = Math.min(total, Math.floor(Number(process.hrtime.bigint() - start) / 1e9 * rate));
    for (; sent < due; sent++) {
      const t0 = process.hrtime.bigint();
      s.emit("echo", sent, (r) => { if (r && r.error) errors++; lat.push(Number(process.hrtime.bigint() - t0) / 1e6); if (++done === total) finish(); });
    }
    if (sent >= total) clearInterval(tick);
  }, 5);
  const finish = () => {
    lat.sort((a, b) => a - b);
    const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2);
    console.log(JSON.stringify({ acks: lat.length, error_acks: globalThis.errs(), p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat[lat.length - 1].toFixed(2) }));
    process.exit(0);
  };
});
