// Keyspace settings <-> proto messages, shared by the writer (CreateKeyspace, SetRetention)
// and the reader (GetKeyspaceMetadata), so both describe a keyspace the same way.

import { create } from "@bufbuild/protobuf";
import type { KeyspaceSettings, Retention } from "@klstore/core";
import {
  Compression,
  type KeyspaceMetadata,
  KeyspaceMetadataSchema,
  type Retention as RetentionMessage,
  RetentionSchema,
} from "@klstore/proto";

export function toRetention(message: RetentionMessage | undefined): Retention | undefined {
  if (!message) return undefined;
  return { maxAgeMillis: message.maxAgeMillis, maxItems: message.maxItems };
}

export function toRetentionMessage(retention: Retention | undefined): RetentionMessage | undefined {
  if (!retention) return undefined;
  return create(RetentionSchema, { maxAgeMillis: retention.maxAgeMillis, maxItems: retention.maxItems });
}

export function toKeyspaceMessage(keyspace: string, settings: KeyspaceSettings): KeyspaceMetadata {
  return create(KeyspaceMetadataSchema, {
    keyspace,
    createdMillis: settings.createdMillis,
    compression: settings.compression === "zstd" ? Compression.ZSTD : Compression.NONE,
    retention: toRetentionMessage(settings.retention),
  });
}
