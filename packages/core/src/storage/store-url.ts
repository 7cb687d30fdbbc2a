// Opens a backend from a store URL: file:///abs/path, file://./relative/path, or
// s3://bucket/prefix?endpoint=...&region=...&path_style=true&access_key=...&secret_key=...

import { resolve } from "node:path";
import { InvalidArgument } from "../errors.ts";
import { FilesystemStore } from "./filesystem.ts";
import type { ObjectStore } from "./object-store.ts";
import { S3_DEFAULTS, S3Store, type S3StoreConfig } from "./s3.ts";

const S3_PARAMS = new Set([
  "endpoint",
  "region",
  "path_style",
  "use_default_credentials",
  "access_key",
  "secret_key",
  "security_token",
  "session_token",
  "profile",
  "max_attempts",
]);

function parseBool(name: string, value: string): boolean {
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new InvalidArgument(`store URL parameter ${name}`, `expected true or false, got ${JSON.stringify(value)}`);
}

/** The S3 settings a URL describes (explicit keys imply use_default_credentials=false). */
export function s3ConfigFromUrl(url: string): S3StoreConfig {
  const parsed = new URL(url);
  for (const name of parsed.searchParams.keys()) {
    if (!S3_PARAMS.has(name)) {
      throw new InvalidArgument(
        "store URL",
        `unknown parameter ${JSON.stringify(name)} (known: ${[...S3_PARAMS].join(", ")})`,
      );
    }
  }
  const q = (name: string) => parsed.searchParams.get(name) ?? undefined;
  if (!parsed.hostname) throw new InvalidArgument("store URL", "s3:// needs a bucket name");
  const accessKey = q("access_key");
  const useDefault = q("use_default_credentials");
  const maxAttempts = q("max_attempts");
  return {
    bucketName: parsed.hostname,
    objectPrefix: decodeURIComponent(parsed.pathname.replace(/^\//, "")),
    endpoint: q("endpoint"),
    region: q("region") ?? S3_DEFAULTS.region,
    pathStyle:
      q("path_style") !== undefined ? parseBool("path_style", q("path_style") as string) : S3_DEFAULTS.pathStyle,
    useDefaultCredentials:
      useDefault !== undefined ? parseBool("use_default_credentials", useDefault) : accessKey === undefined,
    accessKey,
    secretKey: q("secret_key"),
    sessionToken: q("session_token") ?? q("security_token"),
    profile: q("profile"),
    maxAttempts: maxAttempts !== undefined ? Number(maxAttempts) : S3_DEFAULTS.maxAttempts,
  };
}

export interface OpenedStore {
  readonly store: ObjectStore;
  /** Prefix of every object key klstore writes in this store. */
  readonly prefix: string;
}

/** Where a store is: a URL, or S3 settings as a config file's [s3] section gives them. */
export type StoreLocation = string | S3StoreConfig;

export function openStore(location: StoreLocation): OpenedStore {
  if (typeof location !== "string") return { store: new S3Store(location), prefix: location.objectPrefix };
  const url = location;
  if (url.startsWith("file://")) {
    const path = decodeURIComponent(url.slice("file://".length));
    if (path === "") throw new InvalidArgument("store URL", "file:// needs a path");
    return { store: new FilesystemStore(resolve(path)), prefix: "" };
  }
  if (url.startsWith("s3://")) {
    const config = s3ConfigFromUrl(url);
    // The prefix is applied by the layout, so the backend itself works on whole keys.
    return { store: new S3Store(config), prefix: config.objectPrefix };
  }
  throw new InvalidArgument("store URL", `${JSON.stringify(url)} is neither file://PATH nor s3://BUCKET/PREFIX`);
}
