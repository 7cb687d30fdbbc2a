// One client AppendSession's requests for the keys one other shard owns, pipelined on one
// AppendSession stream to that owner (docs/sharding.md, "Forwarding"). A request holds its
// place in its key's order once it is written to the stream, since the owner serves a
// stream in order; its answer is the owner's. When the stream fails, every request it has
// not answered fails with UNAVAILABLE: the owner may or may not have committed it.

import { once } from "node:events";
import { create } from "@bufbuild/protobuf";
import type { ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { OwnerUnavailable } from "@klstore/core";
import { type AppendSessionRequest, AppendSessionRequestSchema, type AppendSessionResponse } from "@klstore/proto";
import type { Shard } from "@klstore/sharding";

/** The fields of an AppendSessionResponse besides its sequence. */
export type AnswerFields = Partial<Pick<AppendSessionResponse, "outcomes" | "packedOutcomes" | "error">>;

/** A request on its way: `admitted` once it holds its place in its key's order, `answer` once settled. */
export interface StartedRequest {
  readonly admitted: Promise<unknown>;
  readonly answer: Promise<AnswerFields>;
}

interface Unanswered {
  readonly sequence: bigint;
  resolve(fields: AnswerFields): void;
  reject(err: unknown): void;
}

export type OwnerSessionStream = ClientDuplexStream<AppendSessionRequest, AppendSessionResponse>;

export class OwnerStream {
  readonly owner: Shard;
  private readonly stream: OwnerSessionStream;
  /** Sent and not yet answered, in the order sent (the order the owner answers in). */
  private readonly unanswered: Unanswered[] = [];
  private nextSequence = 0n;
  private failure: OwnerUnavailable | undefined;
  /** Set while a write waits for `drain`; failing the stream ends that wait too. */
  private drained: Promise<void> | undefined;
  private wakeWriter: (() => void) | undefined;

  constructor(owner: Shard, stream: OwnerSessionStream) {
    this.owner = owner;
    this.stream = stream;
    stream.on("data", (response: AppendSessionResponse) => this.answered(response));
    stream.on("error", (err: ServiceError) => this.fail(`failed (${err.code} ${err.details})`));
    // After an OK status this fails nothing, unless the owner ended with requests unanswered.
    stream.on("end", () => this.fail("ended the stream"));
  }

  /** A failed stream takes no more requests; the session opens a new one for the next. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  send(request: AppendSessionRequest): StartedRequest {
    if (this.failure) return { admitted: Promise.resolve(), answer: Promise.reject(this.failure) };
    const sequence = this.nextSequence++;
    const answer = new Promise<AnswerFields>((resolve, reject) => {
      this.unanswered.push({ sequence, resolve, reject });
    });
    const forwarded = create(AppendSessionRequestSchema, {
      sequence,
      keyspace: request.keyspace,
      key: request.key,
      insertions: request.insertions,
      packedInsertions: request.packedInsertions,
    });
    // false: the owner (or the connection) is behind. The session starts nothing more until
    // it drains, so its client's stream pauses once its window of unanswered requests fills.
    const admitted = this.stream.write(forwarded) ? Promise.resolve() : this.untilDrained();
    return { admitted, answer };
  }

  /** No more requests: the owner answers the rest and ends the stream. */
  finish(): void {
    if (!this.failure) this.stream.end();
  }

  /** The client went away: requests not yet read by the owner are never served. */
  cancel(): void {
    this.stream.cancel();
  }

  private answered(response: AppendSessionResponse): void {
    const next = this.unanswered[0];
    if (next?.sequence !== response.sequence) {
      this.fail(`answered sequence ${response.sequence} when ${next?.sequence ?? "none"} was due`);
      this.stream.cancel();
      return;
    }
    this.unanswered.shift();
    next.resolve({ outcomes: response.outcomes, packedOutcomes: response.packedOutcomes, error: response.error });
  }

  private fail(reason: string): void {
    this.failure ??= new OwnerUnavailable(
      `forwarded to owner shard ${this.owner.name} (${this.owner.address}), whose session ${reason} before ` +
        "answering: the outcome is unknown; resend (with the same nonces) to know",
    );
    for (const request of this.unanswered.splice(0)) request.reject(this.failure);
    this.wakeWriter?.();
  }

  private untilDrained(): Promise<void> {
    this.drained ??= new Promise<void>((resolve) => {
      const wake = () => {
        this.drained = undefined;
        this.wakeWriter = undefined;
        resolve();
      };
      this.wakeWriter = wake;
      once(this.stream, "drain").then(wake, wake);
    });
    return this.drained;
  }
}
