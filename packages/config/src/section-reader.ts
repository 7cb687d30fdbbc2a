// Typed reads of one config section. Every key read is remembered, so whatever is left
// over is a typo or a setting of another version, and is reported rather than ignored:
// refused when it comes from the file or a flag, a warning when only the environment has it.

import { ConfigError, type ConfigValue } from "./config-sources.ts";

export class SectionReader {
  readonly name: string;
  private readonly entries: ReadonlyMap<string, ConfigValue>;
  private readonly known = new Set<string>();

  constructor(name: string, entries: ReadonlyMap<string, ConfigValue> | undefined) {
    this.name = name;
    this.entries = entries ?? new Map();
  }

  get present(): boolean {
    return this.entries.size > 0;
  }

  has(key: string): boolean {
    this.known.add(key);
    return this.entries.has(key);
  }

  private fail(key: string, problem: string): never {
    const origin = this.entries.get(key)?.origin ?? `[${this.name}]`;
    throw new ConfigError(`${origin} ${key}: ${problem}`);
  }

  string(key: string): string | undefined {
    this.known.add(key);
    return this.entries.get(key)?.value;
  }

  requiredString(key: string, why: string): string {
    const value = this.string(key);
    if (value === undefined || value === "") throw new ConfigError(`[${this.name}] ${key} is required: ${why}`);
    return value;
  }

  integer(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const raw = this.string(key);
    if (raw === undefined) return undefined;
    const text = raw.replaceAll("_", "");
    const n = Number(text);
    if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n)) this.fail(key, `${JSON.stringify(raw)} is not an integer`);
    if (n < min || n > max) this.fail(key, `${n} is outside ${min}..${max}`);
    return n;
  }

  boolean(key: string): boolean | undefined {
    const raw = this.string(key);
    if (raw === undefined) return undefined;
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    this.fail(key, `${JSON.stringify(raw)} is not true or false`);
  }

  oneOf<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const raw = this.string(key);
    if (raw === undefined) return undefined;
    if (!(choices as readonly string[]).includes(raw))
      this.fail(key, `${JSON.stringify(raw)} is not one of ${choices.join(", ")}`);
    return raw as T;
  }

  /**
   * Throws on keys nobody asked for, listing the ones this section understands. Returns
   * the unknown keys only an environment variable gives, for the caller to log: they are
   * ignored (the environment holds variables meant for other programs).
   */
  rejectUnknown(): string[] {
    const ignored: string[] = [];
    const known = () => `known in [${this.name}]: ${[...this.known].sort().join(", ")}`;
    for (const [key, value] of this.entries) {
      if (this.known.has(key)) continue;
      const refused = value.fromEnvironment ? value.replaced : value;
      if (refused !== undefined) throw new ConfigError(`${refused.origin} ${key}: unknown setting (${known()})`);
      ignored.push(`${value.origin}: [${this.name}] has no setting ${key}, so the variable is ignored (${known()})`);
    }
    return ignored;
  }
}
