// The test command's runner on small test files made to misbehave: kept alive after their
// tests, hanging, too slow for the budget, leaving a process behind. Each time the run
// ends, says truthfully why (which files had not finished, and doing what), and leaves no
// process running, not even one that ignores SIGTERM.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

const RUNNER = join(import.meta.dirname, "run-tests.ts");

/** A child that ignores SIGTERM, as a `klstore serve` stuck in its shutdown would; its pid goes to PID_FILE. */
const STUBBORN_CHILD = `
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
export function stubborn(options) {
  const child = spawn(process.execPath, ["-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], options);
  writeFileSync(process.env.PID_FILE, String(child.pid));
  return child;
}
`;

function alive(pid: number): boolean {
  try {
    // A zombie has exited; only its parent's (init's) bookkeeping is left.
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

interface Run {
  readonly code: number | null;
  readonly output: string;
  /** The stubborn child's pid, if a test started one. */
  readonly stubborn: number | undefined;
}

async function run(
  files: Record<string, string>,
  env: Record<string, string>,
  interrupt?: (runner: number, pidFile: string) => Promise<void>,
): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), "klstore-runner-test-"));
  mkdirSync(join(dir, "t"));
  writeFileSync(join(dir, "t/stubborn.mjs"), STUBBORN_CHILD);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, "t", name), text);
  const pidFile = join(dir, "stubborn.pid");
  // Without this test's NODE_TEST_CONTEXT: node --test would take itself for a nested run and skip the files.
  const { NODE_TEST_CONTEXT: _, ...outer } = process.env;
  const runner = spawn(process.execPath, [RUNNER, "t/*.test.mjs"], {
    cwd: dir,
    env: { ...outer, KLSTORE_TEST_CONCURRENCY: "1", KLSTORE_TEST_GRACE_SECONDS: "1", PID_FILE: pidFile, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  runner.stdout.on("data", (d) => (output += d));
  runner.stderr.on("data", (d) => (output += d));
  const exited = once(runner, "exit");
  await interrupt?.(runner.pid as number, pidFile);
  const [code] = await exited;
  const stubborn = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : undefined;
  return { code: code as number | null, output, stubborn };
}

const PASSES = `import { it } from "node:test";\nit("passes", () => {});\n`;

describe("the test command's runner", () => {
  it("stops a file kept alive after its tests, says so, and runs the rest", async () => {
    const { code, output, stubborn } = await run(
      {
        "a.test.mjs": PASSES,
        "kept.test.mjs": `import { it } from "node:test";\nimport { stubborn } from "./stubborn.mjs";\nit("starts a child", () => { stubborn({ stdio: ["ignore", "pipe", "inherit"] }); });\n`,
        "z.test.mjs": PASSES,
      },
      { KLSTORE_TEST_STALL_MINUTES: "0.05" },
    );
    assert.equal(code, 1, output);
    assert.match(
      output,
      /run-tests: t\/kept\.test\.mjs: no test event for \d+s .*no test running since its last one ended \d+s ago .*something keeps its process alive.*stopping it/,
    );
    assert.match(output, /run-tests: 3 test files in/, "the run went on to its end");
    assert.ok(stubborn !== undefined && !alive(stubborn), "the child that ignored SIGTERM is gone");
  });

  it("interrupted, names the files that had not finished and the test each was in, and ends every process", async () => {
    const { code, output, stubborn } = await run(
      {
        "a.test.mjs": PASSES,
        "hang.test.mjs": `import { it } from "node:test";\nimport { stubborn } from "./stubborn.mjs";\nit("waits forever", async () => { stubborn({ stdio: "ignore" }); await new Promise(() => {}); });\n`,
        "z.test.mjs": PASSES,
      },
      {},
      async (runner, pidFile) => {
        const deadline = Date.now() + 60_000;
        while (!existsSync(pidFile)) {
          assert.ok(Date.now() < deadline, "the hanging test started its child");
          await sleep(50);
        }
        process.kill(runner, "SIGTERM");
      },
    );
    assert.equal(code, 143, output);
    assert.match(output, /run-tests: stopping: interrupted \(SIGTERM\)/);
    assert.match(output, /run-tests: 1 of 3 test files ended \(0 failed\)\./);
    assert.match(output, /run-tests: {3}t\/hang\.test\.mjs: running for \d+s, in test "waits forever" for \d+s/);
    assert.match(output, /run-tests: 1 never started: t\/z\.test\.mjs/);
    assert.ok(stubborn !== undefined && !alive(stubborn), "the child that ignored SIGTERM is gone");
  });

  it("past its budget, says that is why it stopped (not a hang) and what was still running", async () => {
    const { code, output } = await run(
      {
        "slow.test.mjs": `import { it } from "node:test";\nit("takes a minute", async () => { await new Promise((r) => setTimeout(r, 60_000)); });\n`,
        "z.test.mjs": PASSES,
      },
      { KLSTORE_TEST_BUDGET_MINUTES: "0.05" },
    );
    assert.equal(code, 124, output);
    assert.match(output, /run-tests: stopping: the run took longer than KLSTORE_TEST_BUDGET_MINUTES=0\.05/);
    assert.match(output, /t\/slow\.test\.mjs: running for \d+s, in test "takes a minute"/);
    assert.match(output, /1 never started: t\/z\.test\.mjs/);
  });

  it("ends a process that outlived the test that started it, and fails the run for it", async () => {
    const { code, output, stubborn } = await run(
      {
        "leak.test.mjs": `import { it } from "node:test";\nimport { stubborn } from "./stubborn.mjs";\nit("leaves a child", () => { stubborn({ stdio: "ignore" }).unref(); });\n`,
      },
      {},
    );
    assert.equal(code, 1, output);
    assert.match(output, /✔ leaves a child/, "the test itself passed");
    assert.match(
      output,
      /run-tests: 1 process\(es\) outlived the tests that started them \(now ended\):\n.* -e process\.on/,
    );
    assert.ok(stubborn !== undefined && !alive(stubborn), "the child that ignored SIGTERM is gone");
  });
});
