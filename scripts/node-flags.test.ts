// The image runs the operator with the same node flags as `npm start`, which
// the benchmark also uses: the RSS figures in the README hold for both.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));

/** The node flags of a `node <flags> dist/src/main.js` command line, or undefined for another shape. */
export function nodeFlagsOf(argv: readonly string[]): string[] | undefined {
  if (argv[0] !== 'node' || argv.at(-1) !== 'dist/src/main.js') return undefined;
  return argv.slice(1, -1);
}

test('nodeFlagsOf reads the flags of a node command line', () => {
  const cases: Array<[string[], string[] | undefined]> = [
    [['node', 'dist/src/main.js'], []],
    [
      ['node', '--a', '--b=1', 'dist/src/main.js'],
      ['--a', '--b=1'],
    ],
    [['npm', 'start'], undefined],
    [['node', '--a', 'other.js'], undefined],
  ];
  for (const [argv, flags] of cases) assert.deepEqual(nodeFlagsOf(argv), flags, argv.join(' '));
});

test('the Dockerfile ENTRYPOINT runs node with the flags of npm start', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const fromStart = nodeFlagsOf(pkg.scripts.start.split(' '));
  const entrypoints = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((line) => /^ENTRYPOINT\s/.test(line));
  assert.equal(entrypoints.length, 1, 'one ENTRYPOINT');
  const fromImage = nodeFlagsOf(JSON.parse(entrypoints[0]!.replace(/^ENTRYPOINT\s+/, '')) as string[]);
  assert.ok(fromStart, `npm start is not "node <flags> dist/src/main.js": ${pkg.scripts.start}`);
  assert.deepEqual(fromImage, fromStart);
  // The memory and fan-out figures depend on these two (and on the operator's own heap compactor).
  assert.deepEqual([...fromStart].sort(), ['--heap-growing-percent=10', '--max-semi-space-size=2']);
});
