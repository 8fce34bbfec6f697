// Validate SNS message bodies with AWS's own validator (npm sns-validator).
//
// stdin: a JSON array of message bodies (each the parsed JSON object, or
// the body text). stdout: one JSON line per body, in order:
// {"index": i, "ok": true} or {"index": i, "ok": false, "error": "..."}.
// The certificate is fetched by the validator over HTTPS from the body's
// SigningCertURL; start Node with NODE_EXTRA_CA_CERTS=<the simulator's
// ca.pem> so it trusts the simulator's listener. The host pattern admits
// the simulator's loopback listener (the default admits only AWS hosts).
"use strict";
const MessageValidator = require("sns-validator");

const validator = new MessageValidator(/^127\.0\.0\.1:\d+$/);

function validate(message) {
  return new Promise((resolve) => {
    validator.validate(message, (err) => resolve(err ? String(err.message || err) : null));
  });
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const bodies = JSON.parse(input);
  // One at a time: the validator caches certificates by URL.
  for (let i = 0; i < bodies.length; i++) {
    const body = typeof bodies[i] === "string" ? JSON.parse(bodies[i]) : bodies[i];
    const error = await validate(body);
    console.log(JSON.stringify(error === null ? { index: i, ok: true } : { index: i, ok: false, error }));
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(2);
});
