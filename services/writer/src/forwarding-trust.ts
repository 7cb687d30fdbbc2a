// Who may say a call was forwarded by a peer shard. A shard serves a trusted forwarded call
// whatever its own shard list says (so shards that disagree never forward in a loop), which
// is exactly what a client must not be able to ask for: the `klstore-forwarded-by` marker
// is believed only with proof, a shared secret or a peer's client certificate (docs/sharding.md).

import { createHash, timingSafeEqual } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import type { Metadata } from "@grpc/grpc-js";

/** The shards a call passed through, comma-separated (shard names hold no commas). */
export const FORWARDED_HEADER = "klstore-forwarded-by";
/** The shared secret (`[writer] forwarding_secret`) of forwarded calls. */
export const FORWARDING_SECRET_HEADER = "klstore-forwarding-secret";

export interface ForwardingTrustConfig {
  /** Shared by every shard; a call presenting it is a peer's. */
  readonly secret?: string | undefined;
  /**
   * Names of peer shards' client certificates (subject CN, DNS or URI subjectAltName); a
   * call over mutual TLS presenting such a certificate is a peer's.
   */
  readonly peerNames?: readonly string[] | undefined;
}

/** What a call says about forwarding, and whether it is believed. */
export type Forwarding =
  | { readonly kind: "direct" }
  | { readonly kind: "trusted"; readonly via: readonly string[] }
  /** Marked, without proof: routed as a direct call, the marker kept only to stop loops. */
  | { readonly kind: "untrusted"; readonly via: readonly string[] };

/** The part of a server call the decision needs. */
export interface CallIdentity {
  readonly metadata: Metadata;
  getAuthContext(): { readonly sslPeerCertificate?: PeerCertificate | undefined };
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export class ForwardingTrust {
  private readonly secretDigest: Buffer | undefined;
  private readonly secret: string | undefined;
  private readonly peerNames: ReadonlySet<string>;

  constructor(config: ForwardingTrustConfig) {
    this.secret = config.secret;
    // Compared as digests: equal lengths, so timingSafeEqual reveals nothing, not even the length.
    this.secretDigest = config.secret !== undefined ? digest(config.secret) : undefined;
    this.peerNames = new Set(config.peerNames ?? []);
  }

  /** False when no proof is configured: then no forwarded call is trusted. */
  get configured(): boolean {
    return this.secretDigest !== undefined || this.peerNames.size > 0;
  }

  classify(call: CallIdentity): Forwarding {
    const via = call.metadata
      .get(FORWARDED_HEADER)
      .flatMap((v) => String(v).split(","))
      .map((name) => name.trim())
      .filter((name) => name.length > 0);
    if (via.length === 0) return { kind: "direct" };
    return this.hasSecret(call.metadata) || this.hasPeerCertificate(call)
      ? { kind: "trusted", via }
      : { kind: "untrusted", via };
  }

  /** The metadata a forwarded call carries: the shards it went through, and the secret. */
  forwardedMetadata(metadata: Metadata, via: readonly string[]): Metadata {
    metadata.set(FORWARDED_HEADER, via.join(","));
    if (this.secret !== undefined) metadata.set(FORWARDING_SECRET_HEADER, this.secret);
    return metadata;
  }

  private hasSecret(metadata: Metadata): boolean {
    if (this.secretDigest === undefined) return false;
    const presented = metadata.get(FORWARDING_SECRET_HEADER);
    return presented.length === 1 && timingSafeEqual(digest(String(presented[0])), this.secretDigest);
  }

  private hasPeerCertificate(call: CallIdentity): boolean {
    if (this.peerNames.size === 0) return false;
    // Only a certificate the server verified against its client CA (mutual TLS) is reported.
    const certificate = call.getAuthContext().sslPeerCertificate;
    if (!certificate) return false;
    const names = [certificate.subject?.CN ?? []].flat();
    for (const entry of (certificate.subjectaltname ?? "").split(",")) {
      const match = /^\s*(DNS|URI):(.*)$/.exec(entry);
      if (match) names.push((match[2] as string).trim());
    }
    return names.some((name) => this.peerNames.has(name));
  }
}
