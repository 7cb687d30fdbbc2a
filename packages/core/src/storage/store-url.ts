// Opens a backend from a store URL: file:///abs/path, file://./relative/path, or
// s3://bucket/prefix?endpoint=...&region=...&path_style=true&access_key=...&secret_key=...
// A URL's path is a folder: s3://b/prefix and s3://b/prefix/ both mean object prefix "prefix/".

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

/**
 * The object prefix an s3:// URL's path names, read as a folder: "" for no path, else the
 * path's segments joined by "/" and ending in "/". A config file's `object_prefix` is
 * used verbatim instead (docs/format.md: `{prefix}{keyspace}/...`), but in a URL "prefix" and
 * "prefix/" look alike, and reading the first as prefix + keyspace ("prefixdemo/...")
 * would put a store where nobody looks for it.
 */
function objectPrefixFromUrl(url: string): string {
  // The raw path, not URL.pathname: the URL parser drops "." and ".." segments silently.
  const rest = url.slice("s3://".length);
  const query = rest.search(/[?#]/);
  const authorityAndPath = query === -1 ? rest : rest.slice(0, query);
  const slash = authorityAndPath.indexOf("/");
  const path = slash === -1 ? "" : authorityAndPath.slice(slash + 1).replace(/\/$/, "");
  if (path === "") return "";
  const segments = path.split("/").map((segment) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new InvalidArgument(
        "store URL",
        `the path segment ${JSON.stringify(segment)} is not valid percent-encoding`,
      );
    }
    // Folder-backed S3 servers (SeaweedFS) normalise or refuse such names (TEST-SERVICES.md).
    if (decoded === "" || decoded === "." || decoded === "..") {
      throw new InvalidArgument(
        "store URL",
        `the prefix ${JSON.stringify(path)} has an empty, "." or ".." segment; write it as s3://BUCKET/folder/sub/`,
      );
    }
    return decoded;
  });
  return `${segments.join("/")}/`;
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
  if (parsed.hash !== "")
    throw new InvalidArgument(
      "store URL",
      `"#" ends the URL where ${JSON.stringify(parsed.hash)} starts: percent-encode it as %23`,
    );
  const accessKey = q("access_key");
  const useDefault = q("use_default_credentials");
  const maxAttempts = q("max_attempts");
  return {
    bucketName: parsed.hostname,
    objectPrefix: objectPrefixFromUrl(url),
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
