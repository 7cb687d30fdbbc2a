// What each test file of a run is doing, from the progress reporter's events: not started,
// running (in which tests, since when, when it last moved) or ended (passed or failed,
// how long it took). Pure: the runner feeds it events and asks it for the report.

export interface ProgressEvent {
  readonly at: number;
  readonly type: string;
  readonly file: string;
  readonly name?: string | undefined;
  readonly nesting?: number | undefined;
  readonly passed?: boolean | undefined;
}

interface FileProgress {
  started?: number;
  ended?: number;
  passed?: boolean;
  lastEvent?: number;
  /** When the file's last test ended; a file still running long after it is being kept alive. */
  lastTestEnded?: number;
  /** Tests started and not ended: "nesting\u0000name" -> since. */
  readonly running: Map<string, { readonly name: string; readonly since: number }>;
}

export function duration(millis: number): string {
  const seconds = Math.round(millis / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
}

export class RunProgress {
  private readonly files = new Map<string, FileProgress>();
  /** Absolute path -> the path node --test was given (relative to the checkout). */
  private readonly names: ReadonlyMap<string, string>;

  constructor(files: ReadonlyMap<string, string>) {
    this.names = files;
    for (const file of files.keys()) this.files.set(file, { running: new Map() });
  }

  private progressOf(file: string): FileProgress {
    let progress = this.files.get(file);
    if (!progress) {
      progress = { running: new Map() };
      this.files.set(file, progress);
    }
    return progress;
  }

  private nameOf(file: string): string {
    return this.names.get(file) ?? file;
  }

  apply(event: ProgressEvent): void {
    const progress = this.progressOf(event.file);
    progress.lastEvent = event.at;
    // node --test reports the file itself as a test named by its path, as given to it.
    const isFile = event.nesting === 0 && event.name === this.nameOf(event.file);
    const key = `${event.nesting}\u0000${event.name}`;
    if (event.type === "test:dequeue") {
      if (isFile) progress.started ??= event.at;
      else if (event.name !== undefined) progress.running.set(key, { name: event.name, since: event.at });
    } else if (event.type === "test:complete") {
      if (isFile) {
        progress.ended = event.at;
        progress.passed = event.passed !== false;
        progress.running.clear();
      } else {
        progress.running.delete(key);
        progress.lastTestEnded = event.at;
      }
    }
  }

  /** When the last file ended, once every file has; undefined before. */
  allEnded(): number | undefined {
    let last = 0;
    for (const p of this.files.values()) {
      if (p.ended === undefined) return undefined;
      last = Math.max(last, p.ended);
    }
    return last;
  }

  /** Files running with no event for `millis`, as [file, silent for]. */
  silentFiles(now: number, millis: number): [string, number][] {
    const silent: [string, number][] = [];
    for (const [file, p] of this.files) {
      if (p.started !== undefined && p.ended === undefined && now - (p.lastEvent ?? p.started) >= millis) {
        silent.push([file, now - (p.lastEvent ?? p.started)]);
      }
    }
    return silent;
  }

  /** What a running file is doing, in one line: the test it is in, or that it is kept alive. */
  describeRunning(file: string, now: number): string {
    const p = this.progressOf(file);
    const running = [...p.running.values()].sort((a, b) => a.since - b.since);
    const since = `running for ${duration(now - (p.started ?? now))}`;
    // The innermost test is the one the file is waiting on.
    const innermost = running.at(-1);
    if (innermost) return `${since}, in test "${innermost.name}" for ${duration(now - innermost.since)}`;
    if (p.lastTestEnded !== undefined) {
      return `${since}; no test running since its last one ended ${duration(now - p.lastTestEnded)} ago (a hook, or something keeps its process alive: a child process, timer or socket)`;
    }
    return `${since}; no test started yet (loading, or in a before hook)`;
  }

  /** The report of an unfinished run: what ended, what was running and doing what, what never started. */
  report(now: number): string[] {
    const ended = [...this.files.entries()].filter(([, p]) => p.ended !== undefined);
    const failed = ended.filter(([, p]) => !p.passed);
    const running = [...this.files.entries()].filter(([, p]) => p.started !== undefined && p.ended === undefined);
    const waiting = [...this.files.entries()].filter(([, p]) => p.started === undefined);
    const lines = [
      `${ended.length} of ${this.files.size} test files ended (${failed.length} failed${failed.length ? `: ${failed.map(([f]) => this.nameOf(f)).join(", ")}` : ""}).`,
    ];
    if (running.length > 0) {
      lines.push(`${running.length} had not finished:`);
      for (const [file] of running) lines.push(`  ${this.nameOf(file)}: ${this.describeRunning(file, now)}`);
    }
    if (waiting.length > 0) {
      lines.push(`${waiting.length} never started: ${waiting.map(([f]) => this.nameOf(f)).join(", ")}`);
    }
    return lines;
  }

  /** The slowest ended files, for a run's closing summary. */
  slowest(count: number): string[] {
    return [...this.files.entries()]
      .filter(([, p]) => p.ended !== undefined && p.started !== undefined)
      .map(([file, p]) => [file, (p.ended as number) - (p.started as number)] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([file, millis]) => `${this.nameOf(file)} ${duration(millis)}`);
  }
}
