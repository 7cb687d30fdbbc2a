// Which calls marked as forwarded are believed: pure logic over metadata and the peer
// certificate a server call reports (the calls themselves are exercised end to end in
// packages/client/test/forwarding.test.ts and e2e/tls.test.ts).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerCertificate } from "node:tls";
import { Metadata } from "@grpc/grpc-js";
import { ForwardingTrust } from "../src/forwarding-trust.ts";

const SECRET = "0123456789abcdef-secret";

function call(headers: Record<string, string | string[]>, certificate?: Partial<PeerCertificate>) {
  const metadata = new Metadata();
  for (const [key, values] of Object.entries(headers)) for (const v of [values].flat()) metadata.add(key, v);
  return { metadata, getAuthContext: () => ({ sslPeerCertificate: certificate as PeerCertificate | undefined }) };
}

describe("forwarding trust", () => {
  it("believes the marker only with the secret", () => {
    const trust = new ForwardingTrust({ secret: SECRET });
    assert.deepEqual(trust.classify(call({})), { kind: "direct" });
    assert.deepEqual(trust.classify(call({ "klstore-forwarded-by": "writer-1" })), {
      kind: "untrusted",
      via: ["writer-1"],
    });
    const wrong = call({ "klstore-forwarded-by": "writer-1", "klstore-forwarding-secret": `${SECRET}x` });
    assert.equal(trust.classify(wrong).kind, "untrusted");
    const twice = call({ "klstore-forwarded-by": "a", "klstore-forwarding-secret": [SECRET, "other"] });
    assert.equal(trust.classify(twice).kind, "untrusted", "two secrets are not one");
    const right = call({ "klstore-forwarded-by": "writer-0,writer-1", "klstore-forwarding-secret": SECRET });
    assert.deepEqual(trust.classify(right), { kind: "trusted", via: ["writer-0", "writer-1"] });
  });

  it("believes the marker from a certificate naming a peer in its CN, DNS or URI names", () => {
    const trust = new ForwardingTrust({ peerNames: ["klstore-writer", "spiffe://c/ns/k/sa/writer"] });
    const marked = { "klstore-forwarded-by": "writer-1" };
    assert.equal(trust.classify(call(marked)).kind, "untrusted", "no certificate");
    assert.equal(trust.classify(call(marked, { subject: { CN: "klstore-writer" } as never })).kind, "trusted");
    assert.equal(
      trust.classify(call(marked, { subject: { CN: "x" } as never, subjectaltname: "DNS:a, DNS:klstore-writer" })).kind,
      "trusted",
    );
    assert.equal(
      trust.classify(call(marked, { subject: { CN: "x" } as never, subjectaltname: "URI:spiffe://c/ns/k/sa/writer" }))
        .kind,
      "trusted",
    );
    assert.equal(
      trust.classify(call(marked, { subject: { CN: "client" } as never, subjectaltname: "IP Address:klstore-writer" }))
        .kind,
      "untrusted",
      "only CN, DNS and URI names count",
    );
  });

  it("believes nothing when no proof is configured, and sends the secret it has", () => {
    const none = new ForwardingTrust({});
    assert.equal(none.configured, false);
    const forged = call(
      { "klstore-forwarded-by": "w", "klstore-forwarding-secret": "" },
      { subject: { CN: "" } as never },
    );
    assert.equal(none.classify(forged).kind, "untrusted");
    const metadata = new ForwardingTrust({ secret: SECRET }).forwardedMetadata(new Metadata(), ["a", "b"]);
    assert.deepEqual(metadata.get("klstore-forwarded-by"), ["a,b"]);
    assert.deepEqual(metadata.get("klstore-forwarding-secret"), [SECRET]);
    assert.deepEqual(none.forwardedMetadata(new Metadata(), ["a"]).get("klstore-forwarding-secret"), []);
  });
});
