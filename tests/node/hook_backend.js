// A backend for the gateway's hooks (tests/tests/hooks.rs): a plain Node
// HTTP server that checks each call's X-Signature with its own HMAC code
// and prints one JSON line per call: {"hook", "body", "signed"}.
//
// usage: node hook_backend.js --secret S [--tls-key KEY --tls-cert CERT]
// With a key and a certificate (PEM files) it serves https. Prints
// `listening <port>` once ready. What it answers:
// - /connect: auth.deny -> 403 {"message": auth.deny}; auth.slow -> no answer
//   for 3 s; else 200 {user: auth.user, rooms: ["team:" + auth.user],
//   data: {plan: "pro", claims}, permissions: {publish: ["team:*"]}}
// - /event: "echo" acks its arguments; "fail" -> 500; "refuse" ->
//   {"error": "refused by backend"}; "hold" answers after 1.5 s; others ack
//   nothing.
// - /disconnect: 500 to the first call for a socket id, 200 after.
"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const crypto = require("crypto");

const option = (name) => {
  const index = process.argv.indexOf(name);
  return index > 0 ? process.argv[index + 1] : undefined;
};
const secret = option("--secret") || "";
const tlsKey = option("--tls-key");
const tlsCert = option("--tls-cert");
const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const failedOnce = new Set();

function signed(req, raw) {
  const expected = "sha256=" + crypto.createHmac("sha256", secret).update(raw).digest("hex");
  const got = req.headers["x-signature"] || "";
  return got.length === expected.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(expected));
}

function answer(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(body === undefined ? "" : JSON.stringify(body));
}

function handle(req, res) {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const raw = Buffer.concat(chunks);
    const hook = req.url.replace(/^\//, "");
    let body;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (err) {
      print({ hook, error: `bad body: ${err.message}` });
      return answer(res, 400, { error: "bad body" });
    }
    const isSigned = signed(req, raw);
    print({ hook, body, signed: isSigned });
    if (!isSigned) return answer(res, 401, { message: "bad signature" });
    if (hook === "connect") {
      const auth = body.auth || {};
      if (auth.deny) return answer(res, 403, { message: auth.deny });
      if (auth.slow) return setTimeout(() => answer(res, 200, {}), 3000);
      return answer(res, 200, {
        user: auth.user,
        rooms: auth.user ? [`team:${auth.user}`] : [],
        data: { plan: "pro", claims: body.claims },
        permissions: { publish: ["team:*"] },
      });
    }
    if (hook === "event") {
      switch (body.event) {
        case "echo": return answer(res, 200, { ack: body.args });
        case "fail": return answer(res, 500, "");
        case "refuse": return answer(res, 200, { error: "refused by backend" });
        case "hold": return setTimeout(() => answer(res, 200, { ack: ["held"] }), 1500);
        default: return answer(res, 200, {});
      }
    }
    if (hook === "disconnect") {
      if (!failedOnce.has(body.socket_id)) {
        failedOnce.add(body.socket_id);
        return answer(res, 500, { error: "try again" });
      }
      return answer(res, 200, {});
    }
    answer(res, 404, { error: "no such hook" });
  });
}

const server = tlsKey
  ? https.createServer({ key: fs.readFileSync(tlsKey), cert: fs.readFileSync(tlsCert) }, handle)
  : http.createServer(handle);

server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
