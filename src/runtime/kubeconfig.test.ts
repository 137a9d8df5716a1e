// The operator process must load one copy of client-node (the framework's),
// not also the top-level one: a second copy cost ~65 MB of RSS at start.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('loading the operator (src/main.ts) runs no module of the top-level @kubernetes/client-node copy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
  try {
    // Module hooks run beside the main thread; they record every module loaded in a file.
    const record = join(dir, 'loaded.txt');
    writeFileSync(
      join(dir, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(record)}, url + '\\n');
  return next(url, context);
}`,
    );
    writeFileSync(
      join(dir, 'register.mjs'),
      `import { register } from 'node:module';
register(${JSON.stringify(new URL(`file://${join(dir, 'hooks.mjs')}`).href)});`,
    );
    writeFileSync(record, '');
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        join(dir, 'register.mjs'),
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        "await import('./src/main.ts');",
      ],
      { cwd: root, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    const loaded = spawnSync('cat', [record], { encoding: 'utf8' }).stdout.split('\n');
    const topLevel = loaded.filter(
      (url) => /\/node_modules\/@kubernetes\/client-node\//.test(url) && !url.includes('/@dot-i/'),
    );
    assert.deepEqual(
      topLevel.slice(0, 3),
      [],
      `${topLevel.length} modules of the top-level client-node copy were loaded`,
    );
    // The framework's copy is loaded (it is the base class), and the KubeConfig comes from it.
    assert.ok(
      loaded.some((url) => url.includes('/@dot-i/k8s-operator/')),
      'the framework was not loaded',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
