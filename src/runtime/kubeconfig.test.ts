// The operator process must load one copy of client-node (the framework's),
// not also the top-level one: a second copy cost ~65 MB of RSS at start.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadKubeAuth } from './kubeconfig.js';

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

test('loadKubeAuth adds the current cluster’s proxy-url, also from the second file of $KUBECONFIG', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
  const saved = process.env.KUBECONFIG;
  try {
    const first = join(dir, 'first');
    const second = join(dir, 'second');
    writeFileSync(
      first,
      `apiVersion: v1
kind: Config
current-context: b
contexts: [{name: a, context: {cluster: a, user: u}}]
clusters: [{name: a, cluster: {server: 'https://a.example', proxy-url: 'http://wrong:1'}}]
users: [{name: u, user: {token: t}}]
`,
    );
    writeFileSync(
      second,
      `apiVersion: v1
kind: Config
contexts: [{name: b, context: {cluster: b, user: v}}]
clusters: [{name: b, cluster: {server: 'https://b.example', proxy-url: 'http://proxy.example:3128'}}]
users: [{name: v, user: {token: t}}]
`,
    );
    process.env.KUBECONFIG = `${first}:${second}`;
    const kc = loadKubeAuth(undefined, process.env);
    assert.equal(kc.getCurrentCluster()?.server, 'https://b.example');
    assert.equal(kc.getCurrentCluster()?.proxyUrl, 'http://proxy.example:3128');
    // One file, no proxy-url: none.
    const plain = join(dir, 'plain');
    writeFileSync(
      plain,
      readFileSync(first, 'utf8')
        .replace('current-context: b', 'current-context: a')
        .replace(", proxy-url: 'http://wrong:1'", ''),
    );
    assert.equal(loadKubeAuth(plain).getCurrentCluster()?.proxyUrl, undefined);
    const bad = join(dir, 'bad');
    writeFileSync(
      bad,
      readFileSync(first, 'utf8')
        .replace('current-context: b', 'current-context: a')
        .replace("'http://wrong:1'", '[1]'),
    );
    assert.throws(
      () => loadKubeAuth(bad),
      /kubeconfig .*bad: cluster "a" has a proxy-url that is not a string/,
    );
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
