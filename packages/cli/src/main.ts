#!/usr/bin/env node

// The klstore command line. Every data command works in two modes: direct, on a store URL
// (--store file://DIR or s3://BUCKET/FOLDER/?...) through the core engines, or remote,
// through running services (--writer HOST:PORT --reader HOST:PORT). `dev` and `serve` run
// the services themselves.
//
// Start-up is most of a short command's time, so this module loads only commander: each
// action imports what it needs (a direct-mode `stat` on a file:// store never loads the S3
// SDK or gRPC), and compiled modules are cached across runs (bench/src/cli-startup.ts).

import { readFileSync } from "node:fs";
import { enableCompileCache } from "node:module";
import type { Insertion, Retention } from "@klstore/core";
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import parseDuration from "parse-duration";
import type { Backend, KeyspaceInfo } from "./backends/backend.ts";
import type { ImportFormat } from "./bulk/import-command.ts";
import type { DevOptions } from "./dev.ts";
import { CommandFailed, EXIT, UsageError } from "./failures.ts";
import type { OutputFormat } from "./output.ts";
import type { ServeRole } from "./serve.ts";
import { abortOnStopSignal } from "./signals.ts";

// bin/klstore sets NODE_COMPILE_CACHE, which covers this module too; run as `node main.ts`
// the modules imported from here on are cached all the same.
enableCompileCache();

const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version;

const DEFAULT_STORE = "file://./klstore-data";

function bigintArg(name: string, min: bigint, max: bigint) {
  return (value: string): bigint => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be an integer`);
    const n = BigInt(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be within ${min}..${max}`);
    return n;
  };
}

function portArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1 || n > 65_535)
      throw new InvalidArgumentError(`${name} must be a port, 1..65535`);
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

interface GlobalOptions {
  store?: string;
  writer?: string;
  reader?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  timeout: number;
  discoverShards?: boolean;
}

/** Remote mode when --writer or --reader is given, else direct mode on --store. */
async function backendOf(command: Command): Promise<Backend> {
  const opts = command.optsWithGlobals() as GlobalOptions;
  const remote = opts.writer !== undefined || opts.reader !== undefined;
  if (remote && command.getOptionValueSourceWithGlobals("store") === "cli") {
    throw new UsageError("give either --store (direct) or --writer/--reader (remote), not both");
  }
  if (!remote) {
    const { directBackend } = await import("./backends/direct.ts");
    return directBackend(opts.store ?? DEFAULT_STORE);
  }
  const { remoteBackend } = await import("./backends/remote.ts");
  return remoteBackend({
    writer: opts.writer,
    reader: opts.reader,
    tls: { ca: opts.tlsCa, cert: opts.tlsCert, key: opts.tlsKey },
    deadlineMillis: opts.timeout,
    discoverShards: opts.discoverShards,
  });
}

/** Import writes objects itself, so it needs the store (--store or a config file), never the services. */
async function importStore(command: Command, configFile: string | undefined) {
  const opts = command.optsWithGlobals() as GlobalOptions;
  if (opts.writer !== undefined || opts.reader !== undefined) {
    throw new UsageError(
      "import writes large objects straight to storage (through the writers' fencing, so it is safe beside them); give --store URL or --config FILE instead of --writer/--reader",
    );
  }
  if (configFile === undefined) return { location: opts.store ?? DEFAULT_STORE, writerConfig: undefined };
  if (command.getOptionValueSourceWithGlobals("store") === "cli") {
    throw new UsageError("give either --store or --config, not both");
  }
  const { ConfigError, loadKlstoreConfig } = await import("@klstore/config");
  const config = loadKlstoreConfig({ file: configFile });
  for (const ignored of config.ignoredEnvironment) process.stderr.write(`klstore: config: ${ignored}\n`);
  if (config.store === undefined) throw new ConfigError(`${configFile} names no store ([store] url or [s3])`);
  return { location: config.store, writerConfig: config.writer.engine };
}

async function withBackend<T>(command: Command, fn: (backend: Backend) => Promise<T>): Promise<T> {
  const backend = await backendOf(command);
  try {
    return await fn(backend);
  } catch (err) {
    throw backend.explain(err);
  } finally {
    await backend.close();
  }
}

// A reader that went away (`klstore read ... | head`) is how a pipeline says "enough".
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

function print(line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // Honour backpressure: a slow pipe must not make us buffer every item.
    if (process.stdout.write(`${line}\n`)) resolve();
    else process.stdout.once("drain", resolve).once("error", reject);
  });
}

function keyspaceLine(info: KeyspaceInfo): string {
  const { maxAgeMillis, maxItems } = info.retention ?? {};
  return JSON.stringify({
    keyspace: info.keyspace,
    created: Number(info.createdMillis),
    compression: info.compression,
    retention:
      info.retention &&
      Object.fromEntries(
        Object.entries({ max_age_millis: maxAgeMillis, max_items: maxItems })
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => [k, Number(v)]),
      ),
  });
}

/** A duration like 7d, 12h, 90m or 1500 (ms). */
function durationArg(name: string) {
  return (value: string): bigint => {
    const millis = parseDuration(value);
    if (millis === null || !Number.isSafeInteger(millis) || millis < 1) {
      throw new InvalidArgumentError(`${name} must be a duration such as 7d, 12h, 90m or 1500 (ms)`);
    }
    return BigInt(millis);
  };
}

interface RetentionOptions {
  readonly maxAge?: bigint;
  readonly maxItems?: bigint;
}

function retentionOf(opts: RetentionOptions): Retention | undefined {
  if (opts.maxAge === undefined && opts.maxItems === undefined) return undefined;
  return { maxAgeMillis: opts.maxAge, maxItems: opts.maxItems };
}

const program = new Command("klstore")
  .description("Appendable, iterable key/list storage on S3-compatible object storage")
  .version(VERSION, "-V, --version", "print klstore's version")
  // Set before the subcommands are made: each copies them. Usage errors then reach the
  // catch below (exit 2) instead of commander's process.exit(1).
  .exitOverride()
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError("(add --help for usage)")
  // Every error line reads "klstore: ...", commander's as the commands' own.
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "klstore: ")) })
  .addHelpText(
    "after",
    "\nExit codes: 0 done; 1 the command failed (the message says why and where); 2 the command line is wrong;\n" +
      "78 a config file is wrong. Every command has --help.",
  )
  .addOption(
    new Option("--store <url>", "direct mode: storage URL, file://DIR or s3://BUCKET/FOLDER/?endpoint=...")
      .env("KLSTORE_STORE")
      .default(DEFAULT_STORE),
  )
  .addOption(
    new Option("--writer <address>", "remote mode: a writer shard host:port, or every shard as name=host:port,...").env(
      "KLSTORE_WRITER",
    ),
  )
  .addOption(new Option("--reader <address>", "remote mode: a reader host:port").env("KLSTORE_READER"))
  .option("--tls-ca <file>", "remote mode over TLS: CA certificate (PEM) that signed the servers'")
  .option("--tls-cert <file>", "remote mode with mutual TLS: this client's certificate (PEM)")
  .option("--tls-key <file>", "remote mode with mutual TLS: this client's private key (PEM)")
  .option("--timeout <ms>", "remote mode: deadline of each call", positiveIntArg("--timeout"), 30_000)
  .option(
    "--discover-shards",
    "remote mode: ask the --writer shard for the shard list (GetShards) and send each write to its owner",
  );

const keyspace = program.command("keyspace").description("create and inspect keyspaces");

keyspace
  .command("create <keyspace>")
  .description("create a keyspace (fails if it exists)")
  .addOption(
    new Option("--compression <codec>", "compression of compacted objects").choices(["none", "zstd"]).default("none"),
  )
  .option("--max-age <duration>", "retention: trim items older than this (7d, 12h, ...)", durationArg("--max-age"))
  .option("--max-items <n>", "retention: keep only each key's newest n items", bigintArg("--max-items", 1n, U64))
  .action(async (name: string, opts: { compression: "none" | "zstd" } & RetentionOptions, command: Command) => {
    const info = await withBackend(command, (b) => b.createKeyspace(name, opts.compression, retentionOf(opts)));
    await print(keyspaceLine(info));
  });

keyspace
  .command("set-retention <keyspace>")
  .description("replace a keyspace's retention (no option: keep every item)")
  .option("--max-age <duration>", "trim items older than this (7d, 12h, ...)", durationArg("--max-age"))
  .option("--max-items <n>", "keep only each key's newest n items", bigintArg("--max-items", 1n, U64))
  .action(async (name: string, opts: RetentionOptions, command: Command) => {
    await print(keyspaceLine(await withBackend(command, (b) => b.setRetention(name, retentionOf(opts)))));
  });

keyspace
  .command("get <keyspace>")
  .description("print a keyspace's metadata")
  .action(async (name: string, _opts: unknown, command: Command) => {
    await print(keyspaceLine(await withBackend(command, (b) => b.keyspace(name))));
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
        if (opts.format === "jsonl") throw new UsageError("--format jsonl reads stdin; give no values");
        insertions = values.map((v) => ({ value: Buffer.from(v, "utf8") }));
      } else {
        const { readInsertions } = await import("./input.ts");
        insertions = await readInsertions(process.stdin, opts.format);
      }
      if ((opts.nonce !== undefined || opts.timestamp !== undefined) && insertions.length !== 1) {
        throw new UsageError("--nonce and --timestamp apply to a single value");
      }
      if (insertions.length === 1) {
        const only = insertions[0] as Insertion;
        insertions = [{ ...only, nonce: opts.nonce ?? only.nonce, timestamp: opts.timestamp ?? only.timestamp }];
      }
      const outcomes = await withBackend(command, (b) => b.append(ks, key, insertions));
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
  .description("print a key's items, forwards or backwards, from any start; --follow tails")
  .option("--reverse", "newest first")
  .option("--from-offset <n>", "start at this offset", bigintArg("--from-offset", 0n, U64))
  .option("--from-timestamp <ms>", "start at this timestamp", bigintArg("--from-timestamp", -I64 - 1n, I64))
  .option("--from-nonce <n>", "start at this nonce", bigintArg("--from-nonce", 0n, U128))
  .option("--limit <n>", "stop after this many items", positiveIntArg("--limit"))
  .option("--page-size <n>", "items per page", positiveIntArg("--page-size"))
  .option("-f, --follow", "after the last item, keep printing new ones until Ctrl-C")
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
        follow?: boolean;
        output: OutputFormat;
      },
      command: Command,
    ) => {
      const starts = [opts.fromOffset, opts.fromTimestamp, opts.fromNonce].filter((v) => v !== undefined).length;
      if (starts > 1) throw new UsageError("give at most one of --from-offset, --from-timestamp, --from-nonce");
      if (opts.follow && opts.reverse) throw new UsageError("--follow reads forwards; drop --reverse");
      const signal = opts.follow ? abortOnStopSignal() : new AbortController().signal;
      const { formatItem } = await import("./output.ts");
      await withBackend(command, async (backend) => {
        const items = backend.items(ks, key, {
          order: opts.reverse ? "backwards" : "forwards",
          startOffset: opts.fromOffset,
          startTimestamp: opts.fromTimestamp,
          startNonce: opts.fromNonce,
          limit: opts.limit,
          pageSize: opts.pageSize,
          follow: opts.follow,
          signal,
        });
        for await (const item of items) await print(formatItem(item, opts.output));
      });
    },
  );

program
  .command("trim <keyspace> <key>")
  .description("remove a key's items below an offset (offsets and nonces are never reused)")
  .requiredOption("--before-offset <n>", "the key's new first offset", bigintArg("--before-offset", 0n, U64))
  .action(async (ks: string, key: string, opts: { beforeOffset: bigint }, command: Command) => {
    const first = await withBackend(command, (b) => b.trim(ks, key, opts.beforeOffset));
    await print(`{"keyspace":${JSON.stringify(ks)},"key":${JSON.stringify(key)},"first_offset":${first}}`);
  });

program
  .command("watch <keyspace>")
  .description("print every change of the keyspace's keys as it is committed, until Ctrl-C")
  .option("--cursor <cursor>", "resume right after the line that printed this cursor")
  .addOption(new Option("--output <format>", "change format").choices(["jsonl", "text"]).default("jsonl"))
  .action(async (ks: string, opts: { cursor?: string; output: OutputFormat }, command: Command) => {
    const signal = abortOnStopSignal();
    await withBackend(command, async (backend) => {
      for await (const batch of backend.watch(ks, opts.cursor, signal)) {
        for (const c of batch.changes) {
          await print(
            opts.output === "jsonl"
              ? `{"key":${JSON.stringify(c.key)},"next_offset":${c.nextOffset},"next_nonce":"${c.nextNonce}",` +
                  `"commit_time":${c.commitMillis},"cursor":"${batch.cursor}"}`
              : `${c.key}\t${c.nextOffset}\t${new Date(Number(c.commitMillis)).toISOString()}`,
          );
        }
      }
    });
  });

program
  .command("shards")
  .description("print the writer shards as the --writer shard is configured, one JSON line each")
  .action(async (_opts: unknown, command: Command) => {
    const { shards, thisShard } = await withBackend(command, (b) => b.shards());
    for (const s of shards)
      await print(JSON.stringify({ name: s.name, address: s.address, this_shard: s.name === thisShard }));
  });

program
  .command("stat <keyspace> <key>")
  .description("print a key's metadata (null if the key has no items)")
  .action(async (ks: string, key: string, _opts: unknown, command: Command) => {
    const meta = await withBackend(command, (b) => b.keyMetadata(ks, key));
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
  .command("import <keyspace> <files...>")
  .description("bulk-load jsonl or csv files as large objects; rerunning after a crash stores each line once")
  .addOption(
    new Option("--format <format>", "input format (default: csv for *.csv, else jsonl)").choices(["jsonl", "csv"]),
  )
  .option("--key-column <name>", "field (jsonl) or column (csv) holding the key", "key")
  .option("--value-column <name>", "field (jsonl) or column (csv) holding the value", "value")
  .option("--concurrency <n>", "commits in flight across keys", positiveIntArg("--concurrency"))
  .option(
    "--buffer-mb <n>",
    "memory for rows held at once, in MB (default 256); files whose rows fit are read once",
    positiveIntArg("--buffer-mb"),
  )
  .option("--config <file>", "take the store and writer limits from this config file (docs/operations.md)")
  .action(
    async (
      ks: string,
      files: string[],
      opts: {
        format?: ImportFormat;
        keyColumn: string;
        valueColumn: string;
        concurrency?: number;
        bufferMb?: number;
        config?: string;
      },
      command: Command,
    ) => {
      const { location, writerConfig } = await importStore(command, opts.config);
      const { runImport } = await import("./bulk/import-command.ts");
      await runImport(location, ks, { files, ...opts, writerConfig });
    },
  );

program
  .command("export <keyspace> [keys...]")
  .description("print items as the jsonl import reads: the named keys, else every key of the keyspace")
  .option("--output <file>", "write to this file instead of stdout")
  .action(async (ks: string, keys: string[], opts: { output?: string }, command: Command) => {
    const { runExport } = await import("./bulk/export-command.ts");
    await withBackend(command, (b) => runExport(b, ks, keys, opts));
  });

program
  .command("dev")
  .description("run writer shards and a reader on a local folder store (Ctrl-C flushes and stops)")
  .option("--data <dir>", "folder holding the store", "./klstore-data")
  .option("--shards <n>", "writer shards", positiveIntArg("--shards"), 1)
  .option(
    "--writer-port <port>",
    "first writer shard's port (the next shards take the next ports)",
    portArg("--writer-port"),
    7401,
  )
  .option("--reader-port <port>", "reader's port", portArg("--reader-port"), 7501)
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .action(async (opts: DevOptions) => {
    const { runDev } = await import("./dev.ts");
    await runDev(opts, print);
  });

program
  .command("serve")
  .description("run one production process: a writer shard or a reader (SIGTERM flushes and stops)")
  .addArgument(new Argument("<role>", "writer or reader").choices(["writer", "reader"]))
  .option("--config <file>", "config file (docs/operations.md); env KLSTORE_<SECTION>_<KEY> overrides it")
  .option(
    "--set <section.key=value>",
    "override one setting (repeatable), e.g. --set writer.name=writer-1",
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .action(async (role: ServeRole, opts: { config?: string; set: string[] }) => {
    const { runServe } = await import("./serve.ts");
    await runServe(role, opts, print);
  });

program
  .command("kafka-bridge")
  .description("consume a Kafka topic into klstore, exactly once (SIGTERM flushes, commits and stops)")
  .requiredOption("--config <file>", "config file with [kafka] and [parser] (docs/kafka-bridge.md)")
  .option(
    "--set <section.key=value>",
    "override one setting (repeatable), e.g. --set kafka.topic=inbound",
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .action(async (opts: { config: string; set: string[] }) => {
    const { runKafkaBridge } = await import("./kafka-bridge.ts");
    await runKafkaBridge(opts, print);
  });

/** Prints what went wrong in one line (a stack only for a bug) and picks the exit code. */
async function report(err: unknown): Promise<number> {
  const say = (line: string) => process.stderr.write(`klstore: ${line}\n`);
  if (err instanceof InvalidArgumentError || err instanceof UsageError) {
    say(err.message); // thrown by an action, so commander has not printed it
    return EXIT.usage;
  }
  // Thrown by commander through exitOverride, after it printed the message or the help.
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof CommandFailed) {
    say(err.message);
    return EXIT.failed;
  }
  // Loaded already if one of theirs was thrown; otherwise only this error's path pays for them.
  const [{ KlstoreError }, { ConfigError }] = await Promise.all([import("@klstore/core"), import("@klstore/config")]);
  if (err instanceof KlstoreError) {
    say(err.message);
    return EXIT.failed;
  }
  if (err instanceof ConfigError) {
    say(`config: ${err.message}`);
    return EXIT.config;
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === "number" && "details" in (err as object)) {
    // A gRPC status no backend method wrapped (they name the server): still one line.
    const { describeStatus } = await import("./backends/remote.ts");
    say(describeStatus(err as Parameters<typeof describeStatus>[0]));
    return EXIT.failed;
  }
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    say((err as Error).message); // the system refused (a file, a socket): it names the path
    return EXIT.failed;
  }
  say((err as Error).stack ?? String(err));
  return EXIT.internal;
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = await report(err);
  // A failed command is over: nothing it started (a server of a half-started `dev`, a
  // channel reconnecting) may keep the process running. Exit once stdout has drained.
  process.stdout.write("", () => process.exit(code));
}
