// Mints JWTs for the Rust tests with Node's jsonwebtoken, so the gateway's
// verification is checked against another implementation than its own.
//
//   node jwt.js keys <dir>
//       writes rsa.pem / rsa.pub.pem, ec.pem / ec.pub.pem (P-256) and
//       ed.pem / ed.pub.pem (Ed25519), PEM, public keys as SPKI
//   node jwt.js sign '<specs>'
//       prints a JSON array with one token per spec, in order. A spec is
//       {"claims": {...}, "alg": "HS256", "secret": "..."}
//       {"claims": {...}, "alg": "RS256" | "ES256" | "EdDSA" ..., "keyFile": "<private pem>"}
//           (EdDSA, which jsonwebtoken lacks, is signed with Node's crypto)
//       {"claims": {...}, "alg": "none"}                      an unsigned token
//       {"claims": {...}, "alg": "HS256", "hmacKeyFile": "<public pem>"}
//           HS256 keyed with the bytes of a public key file: the classic
//           key-confusion forgery, which jsonwebtoken refuses to make itself
//   Claims "exp"/"nbf"/"iat" given as {"in": seconds} are relative to now.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const jwt = require("jsonwebtoken");

const b64url = (buf) => Buffer.from(buf).toString("base64url");

function resolveTimes(claims) {
  const now = Math.floor(Date.now() / 1000);
  const out = { ...claims };
  for (const key of ["exp", "nbf", "iat"]) {
    if (out[key] && typeof out[key] === "object" && "in" in out[key]) out[key] = now + out[key].in;
  }
  return out;
}

function unsigned(header, claims, key) {
  const head = b64url(JSON.stringify(header));
  const body = b64url(JSON.stringify(claims));
  if (!key) return `${head}.${body}.`;
  const mac = crypto.createHmac("sha256", key).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(mac)}`;
}

function sign(spec) {
  const claims = resolveTimes(spec.claims || {});
  if (spec.alg === "none") return unsigned({ alg: "none", typ: "JWT" }, claims);
  if (spec.hmacKeyFile) {
    return unsigned({ alg: "HS256", typ: "JWT" }, claims, fs.readFileSync(spec.hmacKeyFile));
  }
  const key = spec.keyFile ? fs.readFileSync(spec.keyFile) : spec.secret;
  if (spec.alg === "EdDSA") {
    // jsonwebtoken has no EdDSA: Node's crypto signs it (RFC 8037).
    const head = b64url(JSON.stringify({ alg: "EdDSA", typ: "JWT" }));
    const body = b64url(JSON.stringify(claims));
    const signature = crypto.sign(null, Buffer.from(`${head}.${body}`), crypto.createPrivateKey(key));
    return `${head}.${body}.${b64url(signature)}`;
  }
  // The claims carry their own exp/nbf: no defaults from jsonwebtoken.
  return jwt.sign(claims, key, { algorithm: spec.alg, noTimestamp: !("iat" in claims) });
}

function keys(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const pem = { publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } };
  const pairs = {
    rsa: crypto.generateKeyPairSync("rsa", { modulusLength: 2048, ...pem }),
    ec: crypto.generateKeyPairSync("ec", { namedCurve: "P-256", ...pem }),
    ed: crypto.generateKeyPairSync("ed25519", pem),
  };
  for (const [name, pair] of Object.entries(pairs)) {
    fs.writeFileSync(path.join(dir, `${name}.pem`), pair.privateKey);
    fs.writeFileSync(path.join(dir, `${name}.pub.pem`), pair.publicKey);
  }
  process.stdout.write(JSON.stringify(Object.keys(pairs)) + "\n");
}

const [command, arg] = process.argv.slice(2);
if (command === "keys") keys(arg);
else if (command === "sign") process.stdout.write(JSON.stringify(JSON.parse(arg).map(sign)) + "\n");
else {
  process.stderr.write("usage: node jwt.js keys <dir> | sign '<specs>'\n");
  process.exit(2);
}
