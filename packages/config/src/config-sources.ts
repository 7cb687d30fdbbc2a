// Where settings come from, lowest precedence first: the config file (INI sections,
// docs/operations.md), the environment (KLSTORE_<SECTION>_<KEY>), and flags (--set section.key=value).
// Every value keeps its origin so an error can say which file, variable or flag to fix.

import { readFileSync } from "node:fs";
import { parse } from "ini";

export interface ConfigValue {
  readonly value: string;
  /** "FILE [section]", "env NAME" or "--set section.key". */
  readonly origin: string;
  /** Set for a KLSTORE_<SECTION>_<KEY> variable: an unknown key there is ignored, not refused. */
  readonly fromEnvironment?: true;
  /** The file's or flag's value a variable replaced, so an unknown key in the file is still refused. */
  readonly replaced?: ConfigValue;
}

/** section -> key -> value. */
export type RawConfig = Map<string, Map<string, ConfigValue>>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function put(config: RawConfig, section: string, key: string, value: ConfigValue): void {
  let entries = config.get(section);
  if (!entries) {
    entries = new Map();
    config.set(section, entries);
  }
  entries.set(key, value);
}

/** Parses INI text; keys outside a section and nested sections are refused. */
export function parseConfigText(text: string, origin: string): RawConfig {
  const config: RawConfig = new Map();
  const parsed = parse(text) as Record<string, unknown>;
  for (const [section, body] of Object.entries(parsed)) {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new ConfigError(`${origin}: ${JSON.stringify(section)} is outside any [section]`);
    }
    for (const [key, value] of Object.entries(body)) {
      if (typeof value === "object" && value !== null) {
        throw new ConfigError(
          `${origin}: [${section}] ${key} is not a plain value (nested sections are not supported)`,
        );
      }
      put(config, section, key, { value: String(value), origin: `${origin} [${section}]` });
    }
  }
  return config;
}

export function readConfigFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  return parseConfigText(text, path);
}

/**
 * Names after KLSTORE_ that are never config sections, so the developer tools' variables
 * (scripts/services.sh's KLSTORE_SERVICES_..., the tests' KLSTORE_TEST_..., the bench's
 * KLSTORE_BENCH_...) can never be read as settings.
 */
export const RESERVED_ENV_PREFIXES = ["services", "test", "bench"] as const;

/**
 * KLSTORE_<SECTION>_<KEY> for the given sections, e.g. KLSTORE_WRITER_NAME or
 * KLSTORE_S3_BUCKET_NAME. Section names have no underscore, so the split is unambiguous;
 * variables naming other sections (KLSTORE_LOG_LEVEL, KLSTORE_TEST_...) are not settings.
 * The environment is shared with everything else a process runs beside (Kubernetes service
 * links put KLSTORE_READER_SERVICE_HOST into every pod of a namespace with a Service named
 * klstore-reader), so a variable naming a key its section lacks is ignored with a warning
 * (SectionReader.rejectUnknown), where the same key in the file or --set is refused.
 */
export function configFromEnv(env: NodeJS.ProcessEnv, sections: readonly string[]): RawConfig {
  const config: RawConfig = new Map();
  for (const [name, value] of Object.entries(env)) {
    const match = /^KLSTORE_([A-Z0-9]+)_([A-Z0-9_]+)$/.exec(name);
    if (!match || value === undefined) continue;
    const section = (match[1] as string).toLowerCase();
    if (!sections.includes(section) || (RESERVED_ENV_PREFIXES as readonly string[]).includes(section)) continue;
    put(config, section, (match[2] as string).toLowerCase(), { value, origin: `env ${name}`, fromEnvironment: true });
  }
  return config;
}

/** `section.key=value` pairs, as given with --set. */
export function configFromOverrides(overrides: readonly string[]): RawConfig {
  const config: RawConfig = new Map();
  for (const override of overrides) {
    const match = /^([A-Za-z0-9]+)\.([^=]+)=(.*)$/s.exec(override);
    if (!match) throw new ConfigError(`--set ${JSON.stringify(override)}: expected section.key=value`);
    const [, section, key, value] = match as unknown as [string, string, string, string];
    put(config, section, key, { value, origin: `--set ${section}.${key}` });
  }
  return config;
}

/** Later layers win, key by key. */
export function mergeConfig(...layers: readonly RawConfig[]): RawConfig {
  const merged: RawConfig = new Map();
  for (const layer of layers) {
    for (const [section, entries] of layer) {
      for (const [key, value] of entries) {
        const prior = merged.get(section)?.get(key);
        const replaced = prior?.fromEnvironment ? prior.replaced : prior;
        put(merged, section, key, value.fromEnvironment && replaced ? { ...value, replaced } : value);
      }
    }
  }
  return merged;
}
