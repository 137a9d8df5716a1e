// Runs node:test over the test files of one suite. Node 20 does not expand
// globs for --test, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const suites: Record<string, { roots: string[]; pattern: RegExp; concurrency: number }> = {
  unit: { roots: ['src', 'scripts', 'bench'], pattern: /\.test\.ts$/, concurrency: 4 },
  // Each e2e file starts its own control plane; much of a file's time is waiting (quiet windows, leases,
  // timers): with two at a time the 2 cores were about half busy, so four files share them (the suite took
  // 283 s instead of 462 s on 2026-12-02). Fault cases judge recovery times and run alone.
  e2e: { roots: ['e2e'], pattern: /\.e2e\.ts$/, concurrency: 4 },
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
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${suite.concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
