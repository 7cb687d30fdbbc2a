// Sends a request for a key this shard does not own to the shard that does. Forwarded
// calls carry a marker so a shard never forwards twice: if two shards disagree about the
// shard list (mid-rollout), the second one serves the call itself and fencing keeps the
// key consistent (docs/sharding.md).

import { type ChannelCredentials, Client, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import type { AppendRequest, AppendResponse, FlushKeyRequest, TrimRequest, TrimResponse } from "@klstore/proto";
import { CHANNEL_OPTIONS, callUnary, WriterService } from "@klstore/proto";
import type { Shard } from "@klstore/sharding";

export const FORWARDED_HEADER = "klstore-forwarded-by";

export class Forwarder {
  private readonly clients = new Map<string, Client>();
  private readonly self: string;
  private readonly credentials: ChannelCredentials;

  constructor(self: string, credentials: ChannelCredentials) {
    this.self = self;
    this.credentials = credentials;
  }

  static wasForwarded(metadata: Metadata): boolean {
    return metadata.get(FORWARDED_HEADER).length > 0;
  }

  private client(shard: Shard): Client {
    let client = this.clients.get(shard.address);
    if (!client) {
      client = new Client(shard.address, this.credentials, CHANNEL_OPTIONS);
      this.clients.set(shard.address, client);
    }
    return client;
  }

  private metadata(): Metadata {
    const metadata = new Metadata();
    metadata.set(FORWARDED_HEADER, this.self);
    return metadata;
  }

  async append(owner: Shard, request: AppendRequest, deadline: Date | number | undefined): Promise<AppendResponse> {
    try {
      return await callUnary(this.client(owner), WriterService, "append", request, { deadline }, this.metadata());
    } catch (err) {
      throw unreachable(owner, err);
    }
  }

  async flushKey(owner: Shard, request: FlushKeyRequest, deadline: Date | number | undefined): Promise<void> {
    try {
      await callUnary(this.client(owner), WriterService, "flushKey", request, { deadline }, this.metadata());
    } catch (err) {
      throw unreachable(owner, err);
    }
  }

  async trim(owner: Shard, request: TrimRequest, deadline: Date | number | undefined): Promise<TrimResponse> {
    try {
      return await callUnary(this.client(owner), WriterService, "trim", request, { deadline }, this.metadata());
    } catch (err) {
      throw unreachable(owner, err);
    }
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
