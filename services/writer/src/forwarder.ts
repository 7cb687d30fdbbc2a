// Sends a request for a key this shard does not own to the shard that does. Forwarded
// calls carry the shards they passed through and this deployment's proof that they come
// from a peer (forwarding-trust.ts): a peer serves a trusted forwarded call itself, so if
// two shards disagree about the shard list (mid-rollout) a call is forwarded once, and
// fencing keeps the key consistent (docs/sharding.md).

import { type ChannelCredentials, Client, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import type { AppendRequest, AppendResponse, FlushKeyRequest, TrimRequest, TrimResponse } from "@klstore/proto";
import { CHANNEL_OPTIONS, callBidiStream, callUnary, WriterService } from "@klstore/proto";
import type { Shard } from "@klstore/sharding";
import type { ForwardingTrust } from "./forwarding-trust.ts";
import type { OwnerSessionStream } from "./owner-stream.ts";

type Deadline = Date | number | undefined;

export interface PeerKeepalive {
  /** Ping a peer this often while calls to it are open. */
  readonly keepaliveTimeMillis: number;
  /** Drop the connection, failing its calls with UNAVAILABLE, when a ping is not answered within this. */
  readonly keepaliveTimeoutMillis: number;
}

export class Forwarder {
  private readonly clients = new Map<string, Client>();
  private readonly credentials: ChannelCredentials;
  private readonly trust: ForwardingTrust;
  private readonly channelOptions: Record<string, number>;

  constructor(credentials: ChannelCredentials, trust: ForwardingTrust, keepalive: PeerKeepalive) {
    this.credentials = credentials;
    this.trust = trust;
    // A peer that hangs (stopped, partitioned) would otherwise hold a forwarded session's
    // requests unanswered until the client's deadline, if it set one.
    this.channelOptions = {
      ...CHANNEL_OPTIONS,
      "grpc.keepalive_time_ms": keepalive.keepaliveTimeMillis,
      "grpc.keepalive_timeout_ms": keepalive.keepaliveTimeoutMillis,
    };
  }

  private client(shard: Shard): Client {
    let client = this.clients.get(shard.address);
    if (!client) {
      client = new Client(shard.address, this.credentials, this.channelOptions);
      this.clients.set(shard.address, client);
    }
    return client;
  }

  /** `via`: the shards the call has passed through, this one last. */
  private metadata(via: readonly string[]): Metadata {
    return this.trust.forwardedMetadata(new Metadata(), via);
  }

  async append(
    owner: Shard,
    request: AppendRequest,
    deadline: Deadline,
    via: readonly string[],
  ): Promise<AppendResponse> {
    try {
      return await callUnary(this.client(owner), WriterService, "append", request, { deadline }, this.metadata(via));
    } catch (err) {
      throw unreachable(owner, err);
    }
  }

  async flushKey(owner: Shard, request: FlushKeyRequest, deadline: Deadline, via: readonly string[]): Promise<void> {
    try {
      await callUnary(this.client(owner), WriterService, "flushKey", request, { deadline }, this.metadata(via));
    } catch (err) {
      throw unreachable(owner, err);
    }
  }

  async trim(owner: Shard, request: TrimRequest, deadline: Deadline, via: readonly string[]): Promise<TrimResponse> {
    try {
      return await callUnary(this.client(owner), WriterService, "trim", request, { deadline }, this.metadata(via));
    } catch (err) {
      throw unreachable(owner, err);
    }
  }

  /** An AppendSession to the owner, for one client session's requests it owns (owner-stream.ts). */
  openSession(owner: Shard, deadline: Deadline, via: readonly string[]): OwnerSessionStream {
    return callBidiStream(this.client(owner), WriterService, "appendSession", { deadline }, this.metadata(via));
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** Says which shard could not be reached; other statuses pass through unchanged. */
function unreachable(owner: Shard, err: unknown): unknown {
  const e = err as ServiceError;
  if (e.code === status.UNAVAILABLE || e.code === status.DEADLINE_EXCEEDED) {
    e.details = `owner shard ${owner.name} (${owner.address}) unreachable: ${e.details}`;
  }
  return e;
}
