// A node:test reporter for scripts/test-runner/run-tests.ts: one JSON line per event of a
// test file (no output, no values), with the time it arrived, so the runner knows which
// files have started, which have ended, which test each is in, and when each last moved.

interface TestEvent {
  readonly type: string;
  readonly data?: {
    readonly file?: string;
    readonly name?: string;
    readonly nesting?: number;
    readonly details?: { readonly passed?: boolean };
  };
}

export default async function* progressReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    const data = event.data;
    if (data?.file === undefined) continue;
    yield `${JSON.stringify({
      at: Date.now(),
      type: event.type,
      file: data.file,
      name: data.name,
      nesting: data.nesting,
      passed: event.type === "test:complete" ? data.details?.passed : undefined,
    })}\n`;
  }
}
