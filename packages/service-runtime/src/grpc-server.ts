// A gRPC server as every klstore process runs it: message-size limits, keepalive, health
// checking (grpc.health.v1) and server reflection (so grpcurl works without .proto files,
// and prints the google.rpc details of an error), bound to one address with or without TLS.

import { readFileSync } from "node:fs";
import type { DescFile, DescService } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { type ChannelCredentials, credentials, Server, ServerCredentials, type ServerInterceptor } from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { FLOW_CONTROL_WINDOW_BYTES, file_google_rpc_error_details, file_health_v1_health } from "@klstore/proto";
import { HealthImplementation } from "grpc-health-check";

export interface ServerConfig {
  /** host:port to listen on; port 0 picks a free one. */
  readonly listen: string;
  /** Largest request or response message, in bytes. */
  readonly maxMessageBytes: number;
  /** Ping idle connections this often, so dead peers are noticed. */
  readonly keepaliveTimeMillis: number;
  /** Close a connection whose ping is not answered within this. */
  readonly keepaliveTimeoutMillis: number;
  /** PEM files; without them the port is plaintext (local development). */
  readonly tlsCertFile?: string | undefined;
  readonly tlsKeyFile?: string | undefined;
  /** With a CA file, clients must present a certificate it signed (mutual TLS). */
  readonly tlsClientCaFile?: string | undefined;
  /**
   * CA that signed the other processes' certificates, for calls this process makes to them
   * (a shard forwarding to its peer); defaults to tlsClientCaFile. With TLS on, this
   * process presents its own certificate on those calls, so peers with mutual TLS accept it.
   */
  readonly tlsPeerCaFile?: string | undefined;
}

export const SERVER_DEFAULTS: Omit<ServerConfig, "listen"> = {
  maxMessageBytes: 64 * 1024 * 1024,
  keepaliveTimeMillis: 30_000,
  keepaliveTimeoutMillis: 10_000,
};

export interface RunningServer {
  readonly server: Server;
  readonly health: HealthImplementation;
  /** The address actually bound (the real port when 0 was asked for). */
  readonly address: string;
}

/** `roots` and every file they import, each once, imports first (as a descriptor set lists them). */
function withImports(roots: readonly DescFile[]): DescFile[] {
  const files: DescFile[] = [];
  const visit = (file: DescFile) => {
    if (files.includes(file)) return;
    for (const imported of file.dependencies) visit(imported);
    files.push(file);
  };
  for (const root of roots) visit(root);
  return files;
}

function reflectionDescriptors(files: readonly DescFile[]) {
  const set = create(FileDescriptorSetSchema, { file: files.map((f) => f.proto) });
  const definition = loadFileDescriptorSetFromBuffer(Buffer.from(toBinary(FileDescriptorSetSchema, set)));
  // proto-loader re-encodes the files through protobufjs, which marks a message holding a
  // map field as a map entry itself (RequestError.metadata), and grpcurl and Go then refuse
  // the whole file (fullstorydev/grpcurl#519). Reflection serves the files as generated.
  const generated = files.map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  for (const type of Object.values(definition)) {
    if ("fileDescriptorProtos" in type) type.fileDescriptorProtos = generated;
  }
  return definition;
}

export function serverCredentials(config: ServerConfig): ServerCredentials {
  if (!config.tlsCertFile || !config.tlsKeyFile) return ServerCredentials.createInsecure();
  const rootCerts = config.tlsClientCaFile ? readFileSync(config.tlsClientCaFile) : null;
  return ServerCredentials.createSsl(
    rootCerts,
    [{ cert_chain: readFileSync(config.tlsCertFile), private_key: readFileSync(config.tlsKeyFile) }],
    rootCerts !== null,
  );
}

/** Credentials for calls to peer processes, matching this process's own TLS settings. */
export function peerCredentials(config: ServerConfig): ChannelCredentials {
  if (!config.tlsCertFile || !config.tlsKeyFile) return credentials.createInsecure();
  const ca = config.tlsPeerCaFile ?? config.tlsClientCaFile;
  return credentials.createSsl(
    ca ? readFileSync(ca) : null,
    readFileSync(config.tlsKeyFile),
    readFileSync(config.tlsCertFile),
  );
}

/**
 * Creates the server with health and reflection; the caller adds `services` (the ones it
 * names here), then `listen`s. Reflection lists only those and health, so a client never
 * sees a service that would answer UNIMPLEMENTED (a writer port lists no ReaderService).
 */
export function createGrpcServer(
  config: ServerConfig,
  services: readonly DescService[],
  interceptors: ServerInterceptor[] = [],
): { server: Server; health: HealthImplementation } {
  const server = new Server({
    interceptors,
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": config.maxMessageBytes,
    "grpc.keepalive_time_ms": config.keepaliveTimeMillis,
    "grpc.keepalive_timeout_ms": config.keepaliveTimeoutMillis,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW_BYTES,
  });
  // Serving only once the process is ready; set back to NOT_SERVING while draining.
  const health = new HealthImplementation({ "": "NOT_SERVING" });
  health.addToServer(server);
  // The health service too, so grpcurl can call it by name; and the google.rpc error details,
  // which no service names but every error carries (docs/errors.md): without them grpcurl
  // prints a failed call's details as "google.rpc.ErrorInfo is not recognized" and base64.
  const files = withImports([...services.map((s) => s.file), file_health_v1_health, file_google_rpc_error_details]);
  const listed = [...services, ...file_health_v1_health.services].map((s) => s.typeName);
  new ReflectionService(reflectionDescriptors(files), { services: listed }).addToServer(server);
  return { server, health };
}

export async function listen(
  server: Server,
  health: HealthImplementation,
  config: ServerConfig,
): Promise<RunningServer> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(config.listen, serverCredentials(config), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = config.listen.slice(0, config.listen.lastIndexOf(":"));
  return { server, health, address: `${host}:${port}` };
}

/** Stops taking calls, lets running ones finish (up to `graceMillis`), then forces. */
export async function shutdown(server: Server, graceMillis: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMillis);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
