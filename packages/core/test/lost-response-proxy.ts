// A fault-injecting HTTP proxy in front of the test S3 server (SeaweedFS). It relays every
// request; for a request a rule picks, it lets the server process it, reads the server's
// whole answer, and then closes the client's connection instead of relaying it. That is a
// lost response: the write happened, and the client cannot know (issue 23). The S3 SDK
// retries such a request, so a conditional PUT's retry answers 412 for the object its own
// first attempt stored.
// Used by the lost-response tests of the core, the services and the end-to-end processes.

import { once } from "node:events";
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the proxy saw, in arrival order. */
export interface ProxiedRequest {
  readonly method: string;
  /** The object key (path-style URL: /bucket/key), decoded; "" for bucket-level requests. */
  readonly objectKey: string;
  /** A create-only PUT (If-None-Match: *). */
  readonly conditional: boolean;
  /** The server's status code. */
  readonly status: number;
  /** The server answered, and the proxy dropped the answer. */
  readonly dropped: boolean;
}

export interface DropRule {
  readonly method?: string;
  /** Only create-only PUTs (If-None-Match: *) when true. */
  readonly conditional?: boolean;
  /** Picks requests by object key. */
  readonly objectKey?: (objectKey: string) => boolean;
  /** How many matching answers to drop; the rule is spent after them (default 1). */
  readonly times?: number;
}

export interface LostResponseProxy {
  /** The proxy's S3 endpoint, e.g. http://127.0.0.1:41234. */
  readonly endpoint: string;
  /** Every request so far. */
  readonly requests: readonly ProxiedRequest[];
  /** Drops the answers of the next requests matching `rule`. */
  drop(rule: DropRule): void;
  /** Drops nothing more (spent or not). */
  clearRules(): void;
  close(): Promise<void>;
}

interface ActiveRule extends DropRule {
  remaining: number;
}

function objectKeyOf(url: string): string {
  const path = url.split("?", 1)[0] ?? "";
  const slash = path.indexOf("/", 1);
  return slash < 0 ? "" : decodeURIComponent(path.slice(slash + 1));
}

function matches(rule: ActiveRule, req: Omit<ProxiedRequest, "status" | "dropped">): boolean {
  if (rule.remaining <= 0) return false;
  if (rule.method !== undefined && rule.method !== req.method) return false;
  if (rule.conditional !== undefined && rule.conditional !== req.conditional) return false;
  return rule.objectKey === undefined || rule.objectKey(req.objectKey);
}

/** Starts a proxy on 127.0.0.1 (a free port) in front of `target` (an http:// endpoint). */
export async function startLostResponseProxy(target: string): Promise<LostResponseProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const requests: ProxiedRequest[] = [];
  let rules: ActiveRule[] = [];

  const relay = (clientReq: IncomingMessage, clientRes: ServerResponse) => {
    const seen = {
      method: clientReq.method ?? "GET",
      objectKey: objectKeyOf(clientReq.url ?? "/"),
      conditional: clientReq.headers["if-none-match"] === "*",
    };
    // Decided on arrival, so that concurrent requests cannot both take a rule's last drop.
    const rule = rules.find((r) => matches(r, seen));
    if (rule) rule.remaining--;
    // The proxy answers 100-continue itself (node:http does); the server need not.
    const { expect: _expect, ...headers } = clientReq.headers;
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: seen.method,
        path: clientReq.url,
        headers,
        agent,
      },
      (serverRes) => {
        const status = serverRes.statusCode ?? 0;
        if (rule) {
          // The server has processed the request; read its answer to the end, then hang up.
          serverRes.resume();
          serverRes.once("end", () => {
            requests.push({ ...seen, status, dropped: true });
            clientReq.socket.destroy();
          });
          return;
        }
        requests.push({ ...seen, status, dropped: false });
        clientRes.writeHead(status, serverRes.headers);
        serverRes.pipe(clientRes);
      },
    );
    forwarded.once("error", () => clientReq.socket.destroy());
    clientReq.pipe(forwarded);
  };

  const server = createServer(relay);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    drop(rule) {
      rules.push({ ...rule, remaining: rule.times ?? 1 });
    },
    clearRules() {
      rules = [];
    },
    async close() {
      server.closeAllConnections();
      server.close();
      agent.destroy();
    },
  };
}
