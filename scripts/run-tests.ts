// Runs node:test over the test files of one suite. Node 20 does not expand
// globs for --test, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

interface Suite {
  roots: string[];
  pattern: RegExp;
  concurrency: number;
  /** Files that judge latency (a bound of a few seconds or less): run after the others, fewer at a time. */
  timed?: { files: string[]; concurrency: number };
}

const suites: Record<string, Suite> = {
  unit: { roots: ['src', 'scripts', 'bench'], pattern: /\.test\.ts$/, concurrency: 4 },
  // Each e2e file starts its own control plane; much of a file's time is waiting (quiet windows, leases,
  // timers): with two at a time the 2 cores were about half busy, so four files share them. Files whose
  // assertions bound a latency (a canary filled within 1 s while a tenant's bad input is handled, a refill
  // within 3 s, a change within 5 s) run afterwards two at a time, as every file did before: with four at a
  // time the 1 s canary bound failed once in three runs. Fault cases judge recovery times and run alone.
  e2e: {
    roots: ['e2e'],
    pattern: /\.e2e\.ts$/,
    concurrency: 4,
    timed: {
      files: ['e2e/bad-input.e2e.ts', 'e2e/gitops.e2e.ts', 'e2e/sharing-placeholders.e2e.ts'],
      concurrency: 2,
    },
  },
  // Fault injection against a real control plane and registry (e2e/faults).
  faults: { roots: ['e2e/faults'], pattern: /\.faults\.ts$/, concurrency: 1 },
};

function walk(dir: string, pattern: RegExp, out: string[]): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, pattern, out);
    else if (pattern.test(entry)) out.push(relative(process.cwd(), path));
  }
  return out;
}

const name = process.argv[2] ?? 'unit';
const suite = suites[name];
if (!suite) {
  console.error(`unknown suite ${name}; one of ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
const only = process.argv.slice(3);
const files = only.length > 0 ? only : suite.roots.flatMap((root) => walk(root, suite.pattern, [])).sort();
if (files.length === 0) {
  console.error(`no test files for suite ${name}`);
  process.exit(1);
}

function run(group: string[], concurrency: number): number {
  if (group.length === 0) return 0;
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...group],
    { stdio: 'inherit' },
  );
  return result.status ?? 1;
}

const timed = new Set(suite.timed?.files ?? []);
// Only checked for a whole-suite run: a run of chosen files need not include them.
const missing = only.length > 0 ? [] : [...timed].filter((file) => !files.includes(file));
if (missing.length > 0) {
  console.error(`timed test files not found: ${missing.join(', ')}`);
  process.exit(1);
}
// Both groups run even when the first fails, so one run reports every failure.
const statuses = [
  run(
    files.filter((file) => !timed.has(file)),
    suite.concurrency,
  ),
  run(
    files.filter((file) => timed.has(file)),
    suite.timed?.concurrency ?? 1,
  ),
];
process.exit(statuses.find((status) => status !== 0) ?? 0);
