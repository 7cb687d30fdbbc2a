// Local filesystem backend, the embedded default. An object's path under the root is its
// object key, so a store folder copied to a bucket (or back) with `aws s3 sync` stays valid.
// Writes are atomic (temp file, fsync, rename) and exclusive create uses link(2), which
// fails if the target exists, so two processes racing on one name get exactly one winner.

import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { InvalidArgument, StorageUnavailable } from "../errors.ts";
import {
  type ListedObject,
  type ListOptions,
  type ListPage,
  type ObjectStore,
  PreconditionFailed,
  type PutOptions,
  type StoredObject,
} from "./object-store.ts";

/** Folder under the root for temp files; on the same filesystem so rename/link are atomic. */
const TEMP_FOLDER = ".klstore-tmp";
const DEFAULT_MAX_KEYS = 1000;

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

export class FilesystemStore implements ObjectStore {
  readonly description: string;
  private readonly tempDir: string;

  readonly root: string;

  constructor(root: string) {
    this.root = root;
    this.description = `file://${root}`;
    this.tempDir = join(root, TEMP_FOLDER);
  }

  private pathOf(key: string): string {
    const segments = key.split("/");
    if (key.length === 0 || segments.some((s) => s === "" || s === "." || s === "..") || segments[0] === TEMP_FOLDER) {
      throw new InvalidArgument("object key", `${JSON.stringify(key)} is not a safe relative path`);
    }
    return join(this.root, ...segments);
  }

  async get(key: string): Promise<StoredObject | undefined> {
    try {
      return { body: await readFile(this.pathOf(key)) };
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === "EISDIR") return undefined;
      throw this.unavailable("read", key, err);
    }
  }

  async getRange(key: string, start: number, end?: number): Promise<StoredObject | undefined> {
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      handle = await open(this.pathOf(key), "r");
      const size = (await handle.stat()).size;
      const stop = Math.min(end ?? size, size);
      const body = Buffer.alloc(Math.max(0, stop - start));
      if (body.length > 0) await handle.read(body, 0, body.length, start);
      return { body };
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === "EISDIR") return undefined;
      throw this.unavailable("read", key, err);
    } finally {
      await handle?.close();
    }
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const target = this.pathOf(key);
    const temp = join(this.tempDir, randomUUID());
    try {
      await mkdir(this.tempDir, { recursive: true });
      await mkdir(dirname(target), { recursive: true });
      const handle = await open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (options?.ifNoneMatch) {
        try {
          await link(temp, target);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new PreconditionFailed(key);
          throw err;
        }
      } else {
        await rename(temp, target);
      }
      await this.syncDir(dirname(target));
    } catch (err) {
      if (err instanceof PreconditionFailed) throw err;
      throw this.unavailable("write", key, err);
    } finally {
      await rm(temp, { force: true });
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      try {
        await unlink(this.pathOf(key));
      } catch (err) {
        if (!isMissing(err)) throw this.unavailable("delete", key, err);
      }
    }
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    const slash = prefix.lastIndexOf("/");
    const folder = prefix.slice(0, slash + 1);
    const keys = await this.walk(folder, prefix);
    const startAfter = options?.startAfter;
    const matching = keys
      .filter((o) => startAfter === undefined || byteOrder(o.key, startAfter) > 0)
      .sort((a, b) => byteOrder(a.key, b.key));
    const maxKeys = options?.maxKeys ?? DEFAULT_MAX_KEYS;
    return { objects: matching.slice(0, maxKeys), truncated: matching.length > maxKeys };
  }

  async listFolders(prefix: string): Promise<string[]> {
    const dir = prefix === "" ? this.root : this.pathOf(prefix.replace(/\/$/, ""));
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return [];
      throw this.unavailable("list", prefix, err);
    }
    return entries
      .filter((e) => e.isDirectory() && !(prefix === "" && e.name === TEMP_FOLDER))
      .map((e) => e.name)
      .sort(byteOrder);
  }

  async close(): Promise<void> {}

  /** Every object under `folder` (recursively) whose key starts with `prefix`. */
  private async walk(folder: string, prefix: string): Promise<ListedObject[]> {
    const dir = folder === "" ? this.root : this.pathOf(folder.slice(0, -1));
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return [];
      throw this.unavailable("list", prefix, err);
    }
    const found: ListedObject[] = [];
    for (const entry of entries) {
      if (folder === "" && entry.name === TEMP_FOLDER) continue;
      const key = `${folder}${entry.name}`;
      if (entry.isDirectory()) {
        const sub = `${key}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) found.push(...(await this.walk(sub, prefix)));
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const size = await this.sizeOf(join(dir, entry.name));
        if (size !== undefined) found.push({ key, size });
      }
    }
    return found;
  }

  private async sizeOf(path: string): Promise<number | undefined> {
    try {
      return (await stat(path)).size;
    } catch (err) {
      if (isMissing(err)) return undefined; // deleted between readdir and stat
      throw err;
    }
  }

  private async syncDir(dir: string): Promise<void> {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  private unavailable(action: string, key: string, err: unknown): StorageUnavailable {
    return new StorageUnavailable(
      `filesystem ${action} of ${key} under ${this.root}${sep} failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
