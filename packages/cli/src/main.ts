#!/usr/bin/env node

// The klstore command line. Direct mode: every command works on a store URL
// (file://DIR or s3://BUCKET/PREFIX?...) through the core engines, no service needed.

import { type Insertion, type Item, KlstoreError, openStore, StoreReader, StoreWriter } from "@klstore/core";
import { Command, InvalidArgumentError, Option } from "commander";
import { type DevOptions, runDev } from "./dev.ts";
import { readInsertions } from "./input.ts";
import { formatItem, type OutputFormat } from "./output.ts";

const DEFAULT_STORE = "file://./klstore-data";

function bigintArg(name: string, min: bigint, max: bigint) {
  return (value: string): bigint => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be an integer`);
    const n = BigInt(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be within ${min}..${max}`);
    return n;
  };
}

function positiveIntArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

const U64 = (1n << 64n) - 1n;
const U128 = (1n << 128n) - 1n;
const I64 = (1n << 63n) - 1n;

function storeOf(command: Command) {
  const url = (command.optsWithGlobals().store as string | undefined) ?? DEFAULT_STORE;
  return openStore(url);
}

async function withWriter<T>(command: Command, fn: (w: StoreWriter) => Promise<T>): Promise<T> {
  const { store, prefix } = storeOf(command);
  const writer = new StoreWriter({ store, prefix });
  try {
    return await fn(writer);
  } finally {
    await writer.close();
    await store.close();
  }
}

async function withReader<T>(command: Command, fn: (r: StoreReader) => Promise<T>): Promise<T> {
  const { store, prefix } = storeOf(command);
  try {
    return await fn(new StoreReader({ store, prefix }));
  } finally {
    await store.close();
  }
}

function print(line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // Honour backpressure: a slow pipe must not make us buffer every item.
    if (process.stdout.write(`${line}\n`)) resolve();
    else process.stdout.once("drain", resolve).once("error", reject);
  });
}

const program = new Command("klstore")
  .description("Appendable, iterable key/list storage on S3-compatible object storage")
  .addOption(
    new Option("--store <url>", "storage URL: file://DIR or s3://BUCKET/PREFIX?endpoint=...")
      .env("KLSTORE_STORE")
      .default(DEFAULT_STORE),
  )
  .showHelpAfterError();

const keyspace = program.command("keyspace").description("create and inspect keyspaces");

keyspace
  .command("create <keyspace>")
  .description("create a keyspace (fails if it exists)")
  .addOption(
    new Option("--compression <codec>", "compression of compacted objects").choices(["none", "zstd"]).default("none"),
  )
  .action(async (name: string, opts: { compression: "none" | "zstd" }, command: Command) => {
    const settings = await withWriter(command, (w) => w.createKeyspace(name, { compression: opts.compression }));
    await print(
      JSON.stringify({ keyspace: name, created: Number(settings.createdMillis), compression: settings.compression }),
    );
  });

keyspace
  .command("get <keyspace>")
  .description("print a keyspace's metadata")
  .action(async (name: string, _opts: unknown, command: Command) => {
    const meta = await withReader(command, (r) => r.readKeyspaceMetadata(name));
    await print(JSON.stringify({ keyspace: name, created: Number(meta.createdMillis), compression: meta.compression }));
  });

program
  .command("append <keyspace> <key> [values...]")
  .description("append values (arguments, else one per stdin line) to a key")
  .option(
    "--nonce <n>",
    "nonce of a single value (duplicates below the key's next nonce are dropped)",
    bigintArg("--nonce", 0n, U128 - 1n),
  )
  .option("--timestamp <ms>", "timestamp of a single value, ms since epoch", bigintArg("--timestamp", -I64 - 1n, I64))
  .addOption(new Option("--format <format>", "stdin format").choices(["text", "jsonl"]).default("text"))
  .addOption(new Option("--output <format>", "result format").choices(["text", "jsonl"]).default("text"))
  .action(
    async (
      ks: string,
      key: string,
      values: string[],
      opts: { nonce?: bigint; timestamp?: bigint; format: "text" | "jsonl"; output: OutputFormat },
      command: Command,
    ) => {
      let insertions: Insertion[];
      if (values.length > 0) {
        if (opts.format === "jsonl") throw new InvalidArgumentError("--format jsonl reads stdin; give no values");
        insertions = values.map((v) => ({ value: Buffer.from(v, "utf8") }));
      } else {
        insertions = await readInsertions(process.stdin, opts.format);
      }
      if ((opts.nonce !== undefined || opts.timestamp !== undefined) && insertions.length !== 1) {
        throw new InvalidArgumentError("--nonce and --timestamp apply to a single value");
      }
      if (insertions.length === 1) {
        const only = insertions[0] as Insertion;
        insertions = [{ ...only, nonce: opts.nonce ?? only.nonce, timestamp: opts.timestamp ?? only.timestamp }];
      }
      const outcomes = await withWriter(command, (w) => w.appendList(ks, key, insertions));
      for (const o of outcomes) {
        if (opts.output === "jsonl") {
          await print(
            o.kind === "appended" ? `{"offset":${o.offset},"timestamp":${o.timestamp}}` : `{"duplicate":true}`,
          );
        } else {
          await print(o.kind === "appended" ? `appended offset ${o.offset}` : "duplicate (dropped)");
        }
      }
    },
  );

program
  .command("read <keyspace> <key>")
  .description("print a key's items, forwards or backwards, from any start")
  .option("--reverse", "newest first")
  .option("--from-offset <n>", "start at this offset", bigintArg("--from-offset", 0n, U64))
  .option("--from-timestamp <ms>", "start at this timestamp", bigintArg("--from-timestamp", -I64 - 1n, I64))
  .option("--from-nonce <n>", "start at this nonce", bigintArg("--from-nonce", 0n, U128))
  .option("--limit <n>", "stop after this many items", positiveIntArg("--limit"))
  .option("--page-size <n>", "items per storage page", positiveIntArg("--page-size"))
  .addOption(new Option("--output <format>", "item format").choices(["jsonl", "text"]).default("jsonl"))
  .action(
    async (
      ks: string,
      key: string,
      opts: {
        reverse?: boolean;
        fromOffset?: bigint;
        fromTimestamp?: bigint;
        fromNonce?: bigint;
        limit?: number;
        pageSize?: number;
        output: OutputFormat;
      },
      command: Command,
    ) => {
      const starts = [opts.fromOffset, opts.fromTimestamp, opts.fromNonce].filter((v) => v !== undefined).length;
      if (starts > 1)
        throw new InvalidArgumentError("give at most one of --from-offset, --from-timestamp, --from-nonce");
      await withReader(command, async (reader) => {
        let remaining = opts.limit ?? Number.POSITIVE_INFINITY;
        let continuation: string | undefined;
        const filter = { startOffset: opts.fromOffset, startTimestamp: opts.fromTimestamp, startNonce: opts.fromNonce };
        do {
          const page = await reader.readPage(ks, key, {
            order: opts.reverse ? "backwards" : "forwards",
            maxSize: Math.min(remaining, opts.pageSize ?? reader.config.defaultMaxResults),
            filter: continuation ? undefined : filter,
            continuation,
          });
          for (const item of page.items as Item[]) await print(formatItem(item, opts.output));
          remaining -= page.items.length;
          continuation = page.continuation;
        } while (continuation && remaining > 0);
      });
    },
  );

program
  .command("stat <keyspace> <key>")
  .description("print a key's metadata (null if the key has no items)")
  .action(async (ks: string, key: string, _opts: unknown, command: Command) => {
    const meta = await withReader(command, (r) => r.readKeyMetadata(ks, key));
    if (!meta) {
      await print("null");
      return;
    }
    await print(
      `{"keyspace":${JSON.stringify(ks)},"key":${JSON.stringify(key)},"first_offset":${meta.firstOffset},` +
        `"next_offset":${meta.nextOffset},"next_nonce":"${meta.nextNonce}","item_count":${meta.itemCount},` +
        `"min_timestamp":${meta.minTimestamp},"max_timestamp":${meta.maxTimestamp}}`,
    );
  });

program
  .command("dev")
  .description("run writer shards and a reader on a local folder store (Ctrl-C flushes and stops)")
  .option("--data <dir>", "folder holding the store", "./klstore-data")
  .option("--shards <n>", "writer shards", positiveIntArg("--shards"), 1)
  .option(
    "--writer-port <port>",
    "first writer shard's port (the next shards take the next ports)",
    positiveIntArg("--writer-port"),
    7401,
  )
  .option("--reader-port <port>", "reader's port", positiveIntArg("--reader-port"), 7501)
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .action(async (opts: DevOptions) => {
    await runDev(opts, print);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof KlstoreError) {
    process.stderr.write(`klstore: ${err.message}\n`);
    process.exitCode = 1;
  } else if (err instanceof InvalidArgumentError) {
    process.stderr.write(`klstore: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`klstore: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 70;
  }
}
