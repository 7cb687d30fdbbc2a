// grpc-js service definitions derived from protobuf-es service descriptors (protobuf-es
// generates none for grpc-js): each method's path and streaming kind come from the
// descriptor, and protobuf-es encodes and decodes (large-bytes.ts copies a page's bytes
// once). Typed handler and client helpers keep the services and the client free of casts.
// A request that does not decode reaches no handler as if it were valid: unary and
// server-streaming calls are refused before their handler runs, and streamed requests
// arrive as MalformedRequest for the handler to answer in-band (request-decoding.ts).

import { type DescMethod, type DescService, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  type CallOptions,
  type Client,
  type handleBidiStreamingCall,
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Metadata,
  type MethodDefinition,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type ServiceError,
  type sendUnaryData,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { encodeMessage } from "./large-bytes.ts";
import { decodeRequest, MalformedRequest } from "./request-decoding.ts";

/**
 * HTTP/2 receive window, per stream and per connection, of klstore's servers and clients.
 * HTTP/2's default of 64 KiB let a sender have only 64 KiB unacknowledged, so an
 * AppendSession upload or a ReadStream download stalled on every window update from a busy
 * event loop. grpc-js reads the option on clients; on servers only with our patch of it
 * (patches/, grpc/grpc-node#3058).
 */
export const FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Channel options for klstore's own clients (the TypeScript client, shard-to-shard
 * forwarding): a restarted shard is back within a second or two, so reconnect attempts are
 * capped at 2 s apart instead of grpc's default 120 s. Messages up to the servers' own
 * limit (64 MiB) are accepted: grpc's 4 MiB default refused a ReadStream page of 5000
 * items of 1 KiB.
 */
export const CHANNEL_OPTIONS = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 2000,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc.max_send_message_length": 64 * 1024 * 1024,
  "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW_BYTES,
} as const;

type Req<M extends Pick<DescMethod, "input">> = MessageShape<M["input"]>;
type Res<M extends Pick<DescMethod, "output">> = MessageShape<M["output"]>;

/**
 * The handler grpc-js expects for one method, typed by its descriptor. Requests on a
 * client stream may be malformed: one bad message must not end the stream unanswered.
 */
export type HandlerOf<M extends GenServiceMethods[string]> = M["methodKind"] extends "unary"
  ? handleUnaryCall<Req<M>, Res<M>>
  : M["methodKind"] extends "server_streaming"
    ? handleServerStreamingCall<Req<M>, Res<M>>
    : M["methodKind"] extends "client_streaming"
      ? handleClientStreamingCall<Req<M> | MalformedRequest<Req<M>>, Res<M>>
      : handleBidiStreamingCall<Req<M> | MalformedRequest<Req<M>>, Res<M>>;

/** An implementation of every method of a service, by the method's local (camelCase) name. */
export type ServiceHandlers<S extends GenServiceMethods> = { [K in keyof S]: HandlerOf<S[K]> };

/** The handlers of a generated service, e.g. `HandlersOf<typeof WriterService>`. */
export type HandlersOf<S> = S extends GenService<infer M> ? ServiceHandlers<M> : never;

function methodDefinition(service: DescService, method: DescMethod): MethodDefinition<unknown, unknown> {
  return {
    path: `/${service.typeName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (m) => encodeMessage(method.input, m as MessageShape<typeof method.input>),
    requestDeserialize: (bytes: Buffer) => decodeRequest(method.input, bytes),
    responseSerialize: (m) => encodeMessage(method.output, m as MessageShape<typeof method.output>),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    originalName: method.localName,
  };
}

/** The grpc-js definition of a service, keyed by local method name. */
export function serviceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) definition[method.localName] = methodDefinition(service, method);
  return definition;
}

/** The status that refuses a malformed request (INVALID_ARGUMENT naming its field). */
export type MalformedRequestStatus = (request: MalformedRequest) => Partial<ServiceError>;

/**
 * Pairs a service with typed handlers, for `server.addService(...implementation(...))`.
 * A unary or server-streaming call whose request is malformed is answered with
 * `refuse(request)` without reaching its handler.
 */
export function implementation<S extends GenServiceMethods>(
  service: GenService<S>,
  handlers: ServiceHandlers<S>,
  refuse: MalformedRequestStatus,
): [ServiceDefinition, UntypedServiceImplementation] {
  const desc = service as unknown as DescService;
  const guarded: UntypedServiceImplementation = {};
  for (const method of desc.methods) {
    const handler = (handlers as unknown as Record<string, UntypedHandleCall>)[method.localName] as UntypedHandleCall;
    guarded[method.localName] = refusingMalformed(method, handler, refuse);
  }
  return [serviceDefinition(desc), guarded];
}

function refusingMalformed(
  method: DescMethod,
  handler: UntypedHandleCall,
  refuse: MalformedRequestStatus,
): UntypedHandleCall {
  if (method.methodKind === "unary") {
    const unary = handler as handleUnaryCall<unknown, unknown>;
    return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      call.request instanceof MalformedRequest ? callback(refuse(call.request)) : unary(call, callback);
  }
  if (method.methodKind === "server_streaming") {
    const streaming = handler as handleServerStreamingCall<unknown, unknown>;
    return (call: ServerWritableStream<unknown, unknown>) => {
      // grpc-js turns an 'error' event into the call's status (and details trailer).
      if (call.request instanceof MalformedRequest) call.emit("error", refuse(call.request));
      else streaming(call);
    };
  }
  return handler;
}

function definitionOf<S extends GenServiceMethods>(service: GenService<S>, name: keyof S) {
  const method = service.method[name] as DescMethod;
  return methodDefinition(service as unknown as DescService, method);
}

/** Calls a unary method; rejects with the grpc-js ServiceError on a non-OK status. */
export function callUnary<S extends GenServiceMethods, K extends keyof S>(
  client: Client,
  service: GenService<S>,
  name: K,
  request: Req<S[K]>,
  options: CallOptions = {},
  metadata: Metadata = new Metadata(),
): Promise<Res<S[K]>> {
  const def = definitionOf(service, name);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      request,
      metadata,
      options,
      (err, response) => (err ? reject(err) : resolve(response as Res<S[K]>)),
    );
  });
}

/** Calls a server-streaming method; iterate the returned stream with `for await`. */
export function callServerStream<S extends GenServiceMethods, K extends keyof S>(
  client: Client,
  service: GenService<S>,
  name: K,
  request: Req<S[K]>,
  options: CallOptions = {},
  metadata: Metadata = new Metadata(),
) {
  const def = definitionOf(service, name);
  return client.makeServerStreamRequest<Req<S[K]>, Res<S[K]>>(
    def.path,
    def.requestSerialize,
    def.responseDeserialize as (b: Buffer) => Res<S[K]>,
    request,
    metadata,
    options,
  );
}

/** Opens a bidirectional stream. */
export function callBidiStream<S extends GenServiceMethods, K extends keyof S>(
  client: Client,
  service: GenService<S>,
  name: K,
  options: CallOptions = {},
  metadata: Metadata = new Metadata(),
) {
  const def = definitionOf(service, name);
  return client.makeBidiStreamRequest<Req<S[K]>, Res<S[K]>>(
    def.path,
    def.requestSerialize,
    def.responseDeserialize as (b: Buffer) => Res<S[K]>,
    metadata,
    options,
  );
}
