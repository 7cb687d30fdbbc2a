// Prometheus metrics every klstore process exposes: gRPC calls by method and status code
// (through a server interceptor, so streaming calls count too), storage requests and their
// latency (through a store wrapper), and the process's own (memory, event loop lag). The
// services add their own counters to the same registry.

import { createServer, type Server } from "node:http";
import {
  type Responder,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  status,
} from "@grpc/grpc-js";
import { type ObjectStore, readRange } from "@klstore/core";
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { Logger } from "./logger.ts";

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly grpcCalls: Counter<"method" | "code">;
  readonly grpcSeconds: Histogram<"method">;
  readonly storageRequests: Counter<"operation" | "outcome">;
  readonly storageSeconds: Histogram<"operation">;
  readonly storageBytes: Counter<"direction">;

  constructor(role: string) {
    this.registry.setDefaultLabels({ role });
    collectDefaultMetrics({ register: this.registry, prefix: "klstore_" });
    const registers = [this.registry];
    this.grpcCalls = new Counter({
      name: "klstore_grpc_calls_total",
      help: "gRPC calls finished, by method and status code (errors by code)",
      labelNames: ["method", "code"],
      registers,
    });
    this.grpcSeconds = new Histogram({
      name: "klstore_grpc_call_seconds",
      help: "gRPC call duration, from arrival to status (streams: their whole life)",
      labelNames: ["method"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.storageRequests = new Counter({
      name: "klstore_storage_requests_total",
      help: "Object storage requests, by operation (get, put, delete, list) and outcome",
      labelNames: ["operation", "outcome"],
      registers,
    });
    this.storageSeconds = new Histogram({
      name: "klstore_storage_request_seconds",
      help: "Object storage request latency",
      labelNames: ["operation"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.storageBytes = new Counter({
      name: "klstore_storage_bytes_total",
      help: "Object bytes read from and written to storage",
      labelNames: ["direction"],
      registers,
    });
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}

/** Counts and times every call, and logs it: OK at debug, client errors at info, server errors at warn. */
export function callObserver(metrics: ServiceMetrics, logger: Logger): ServerInterceptor {
  const serverFaults = new Set<number>([status.INTERNAL, status.DATA_LOSS, status.UNKNOWN, status.UNAVAILABLE]);
  return (descriptor, call: ServerInterceptingCallInterface) => {
    const method = descriptor.path;
    const started = process.hrtime.bigint();
    let done = false;
    const finish = (code: number, details: string | undefined) => {
      if (done) return;
      done = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const codeName = status[code] ?? String(code);
      metrics.grpcCalls.inc({ method, code: codeName });
      metrics.grpcSeconds.observe({ method }, seconds);
      const entry = { method, code: codeName, ms: Math.round(seconds * 1000), peer: call.getPeer() };
      if (code === status.OK) logger.debug(entry, "call");
      else if (serverFaults.has(code)) logger.warn({ ...entry, details }, "call failed");
      else logger.info({ ...entry, details }, "call refused");
    };
    const responder: Responder = {
      start(next) {
        next({ onCancel: () => finish(status.CANCELLED, "cancelled by the client") });
      },
      sendStatus(statusObject, next) {
        finish(statusObject.code, statusObject.details);
        next(statusObject);
      },
    };
    return new ServerInterceptingCall(call, responder);
  };
}

async function measured<T>(metrics: ServiceMetrics, operation: string, run: () => Promise<T>): Promise<T> {
  const end = metrics.storageSeconds.startTimer({ operation });
  try {
    const result = await run();
    metrics.storageRequests.inc({ operation, outcome: "ok" });
    return result;
  } catch (err) {
    const outcome = (err as Error).name === "PreconditionFailed" ? "precondition_failed" : "error";
    metrics.storageRequests.inc({ operation, outcome });
    throw err;
  } finally {
    end();
  }
}

/** Wraps a store so every request is counted and timed. */
export function measuredStore(store: ObjectStore, metrics: ServiceMetrics): ObjectStore {
  return {
    description: store.description,
    get: (key) =>
      measured(metrics, "get", async () => {
        const obj = await store.get(key);
        if (obj) metrics.storageBytes.inc({ direction: "read" }, obj.body.byteLength);
        return obj;
      }),
    ...(store.getRange && {
      getRange: (key: string, start: number, end?: number) =>
        measured(metrics, "get", async () => {
          const obj = await readRange(store, key, start, end);
          if (obj) metrics.storageBytes.inc({ direction: "read" }, obj.body.byteLength);
          return obj;
        }),
    }),
    put: (key, body, options) =>
      measured(metrics, "put", async () => {
        await store.put(key, body, options);
        metrics.storageBytes.inc({ direction: "written" }, body.byteLength);
      }),
    delete: (keys) => measured(metrics, "delete", () => store.delete(keys)),
    list: (prefix, options) => measured(metrics, "list", () => store.list(prefix, options)),
    listFolders: (prefix) => measured(metrics, "list", () => store.listFolders(prefix)),
    close: () => store.close(),
  };
}

export interface MetricsEndpoint {
  readonly address: string;
  close(): Promise<void>;
}

/** Serves GET /metrics (Prometheus text format) on host:port. */
export async function serveMetrics(listen: string, metrics: ServiceMetrics): Promise<MetricsEndpoint> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("GET /metrics\n");
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
    );
  });
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, "");
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(listen.slice(colon + 1)), host, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound ? bound.port : 0;
  return {
    address: `${listen.slice(0, colon)}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
