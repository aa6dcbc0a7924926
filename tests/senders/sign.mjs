// Independent signers for tests/senders: reads a JSON array of requests on stdin and prints a
// JSON array of signature header values, produced by the senders' own libraries:
//   {"scheme": "stripe", "payload": "...", "secret": "whsec_...", "timestamp": 1700000000}
//     -> Stripe-Signature from stripe.webhooks.generateTestHeaderString (official stripe package)
//   {"scheme": "github", "payload": "...", "secret": "..."}
//     -> X-Hub-Signature-256 from @octokit/webhooks-methods sign()
import Stripe from "stripe";
import { sign } from "@octokit/webhooks-methods";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const requests = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const out = [];
for (const r of requests) {
  if (r.scheme === "stripe") {
    out.push(
      Stripe.webhooks.generateTestHeaderString({
        payload: r.payload,
        secret: r.secret,
        timestamp: r.timestamp,
      }),
    );
  } else if (r.scheme === "github") {
    out.push(await sign(r.secret, r.payload));
  } else {
    throw new Error(`unknown scheme ${r.scheme}`);
  }
}
process.stdout.write(JSON.stringify(out));
