// `npm run demo -- --once` as a user runs it (its own process, its own control
// plane, registry and operator): every step of the seed's story happens, it
// says so in plain words, and it leaves nothing behind; a step that does not
// happen in time ends it with exit 1 naming the step.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { REPO_ROOT } from './harness/cluster.js';

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the demo (with --once unless `interactive`); an interactive run gets
 * SIGINT, as from Ctrl-C, once it says it waits for it. On timeout it is
 * interrupted the same way (it cleans up) and the run fails.
 */
function runDemo(
  { env = {}, interactive = false }: { env?: Record<string, string>; interactive?: boolean } = {},
  timeoutMs = 240_000,
): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', join('e2e', 'demo.ts'), ...(interactive ? [] : ['--once'])];
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (interactive && !interrupted && stdout.includes('Press Ctrl-C')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGINT');
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`the demo did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** Temporary paths the demo prints (kubeconfig, operator log, registry CA); all must be gone after it. */
function printedTemporaryPaths(stdout: string): string[] {
  return [...stdout.matchAll(/(\/\S*\/regcred-(?:cp|demo|registry)-[^/\s]+)/g)].map((m) => m[1]!);
}

test('the demo tells the whole story: every step happens, in plain words, and nothing is left behind', async () => {
  const run = await runDemo();
  const transcript = `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
  assert.equal(run.code, 0, transcript);
  assert.doesNotMatch(run.stderr, /DEMO FAILED/, transcript);

  const steps = [...run.stdout.matchAll(/^=== (\d+)\. (.*)$/gm)].map((m) => `${m[1]}. ${m[2]}`);
  assert.deepEqual(
    steps.map((s) => s.replace(/ pull-robot-\d/g, '')),
    [
      '1. Starting a local control plane and a private registry (TLS + htpasswd)',
      "2. Copying the seed's package repository into the private registry, the way imgpkg copy leaves it",
      '3. Starting the operator (all controllers, one process), trusting the registry CA',
      "4. Applying the docs page's examples, with its registry names replaced by the local registry",
      '5. The credential, exported once, fills the placeholders',
      '6. PackageRepository e2e-repo.test.carvel.dev fetches the relocated bundle with its placeholder; Packages appear',
      "7. The Package's fetch reference points at the mirror, not at public-registry.invalid",
      '8. PackageInstall pkg-demo: its App fetches the package bundle from the mirror with placeholder pkg-demo-fetch-0',
      '9. The manual configuration (secretRef and fetch-0-secret-name) fetches with its own Secrets',
      '10. Rotating the credential: is revoked at the registry, replaces it in secrets-ns/reg-creds only',
    ],
    transcript,
  );
  const host = /private registry at https:\/\/(127\.0\.0\.1:\d+)/.exec(run.stdout)?.[1];
  assert.ok(host, transcript);
  const pkgDigest = /^ {2}@(sha256:[0-9a-f]{64}) {2}the package bundle/m.exec(run.stdout)?.[1];
  assert.ok(pkgDigest, transcript);
  const mirrored = `${host}/mirror/private-repo@${pkgDigest}`;
  for (const line of [
    // the Package names the mirror instead of the original host
    `  in the bundle:   public-registry.invalid/k14stest/private-pkg@${pkgDigest}`,
    `  in the cluster:  ${mirrored}`,
    // the App fetched from the mirror with the PackageInstall's placeholder, filled from the export
    `  placeholder default/pkg-demo-fetch-0 (made by the PackageInstall, filled from the export): ${host} as pull-robot-1`,
    // after the rotation, every placeholder holds the new user and both fetches ran again
    `  default/pkg-demo-fetch-0: ${host} as pull-robot-2`,
    `  kapp-controller-packaging-global/e2e-repo.test.carvel.dev-fetch-0: ${host} as pull-robot-2`,
    '  Both could only have used pull-robot-2: the registry refuses pull-robot-1 since before they started.',
    'Every step happened.',
  ]) {
    assert.ok(run.stdout.split('\n').includes(line), `missing line ${JSON.stringify(line)}\n${transcript}`);
  }
  assert.match(
    run.stdout,
    new RegExp(
      `^ {2}App pkg-demo: fetched again at \\S+: Fetched imgpkgBundle ${mirrored.replace(/[.]/g, '\\.')} `,
      'm',
    ),
  );
  assert.match(run.stdout, /^ {2}export KUBECONFIG=\S+ PATH=\S+:\$PATH$/m, transcript);
  assert.match(run.stdout, /^ {2}kubectl get app -n default pkg-demo /m, transcript);
  // No credential is printed: the demo shows user names only.
  assert.doesNotMatch(run.stdout + run.stderr, /"password"|"auth":|\.dockerconfigjson":/, transcript);

  const paths = printedTemporaryPaths(run.stdout);
  assert.ok(paths.length >= 3, `expected the kubeconfig, log and CA paths in the output\n${transcript}`);
  assert.deepEqual(
    paths.filter((p) => existsSync(p)),
    [],
    'the demo left temporary files behind',
  );
});

test('a step that does not happen in time ends the demo with exit 1, naming the step', async () => {
  const run = await runDemo({ env: { REGCRED_DEMO_STEP_TIMEOUT_MS: '1' } });
  const transcript = `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
  assert.equal(run.code, 1, transcript);
  assert.match(
    run.stderr,
    /^DEMO FAILED at step (\d+) \([^\n]+\): [^\n]+ did not happen within 0\.001 s; last seen: /m,
    transcript,
  );
  const failedStep = /^DEMO FAILED at step (\d+)/m.exec(run.stderr)![1];
  assert.match(run.stdout, new RegExp(`^=== ${failedStep}\\. `, 'm'), transcript);
  assert.doesNotMatch(run.stdout, /Every step happened/, transcript);
  assert.match(run.stdout, /operator, control plane, registry and temporary files are gone/, transcript);
  assert.deepEqual(
    printedTemporaryPaths(run.stdout).filter((p) => existsSync(p)),
    [],
    'the failed demo left temporary files behind',
  );
});

test('without --once the demo keeps running until Ctrl-C, then stops everything and exits 0', async () => {
  const run = await runDemo({ interactive: true });
  const transcript = `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
  assert.equal(run.code, 0, transcript);
  const lines = run.stdout.trimEnd().split('\n');
  const waiting = lines.indexOf('Press Ctrl-C to stop the operator, the control plane and the registry.');
  assert.ok(waiting > 0 && lines[waiting - 1] === 'Every step happened.', transcript);
  assert.deepEqual(
    lines.slice(waiting + 1).filter((l) => l !== ''),
    ['=== Stopping', 'operator, control plane, registry and temporary files are gone'],
    transcript,
  );
  assert.deepEqual(
    printedTemporaryPaths(run.stdout).filter((p) => existsSync(p)),
    [],
    'the demo left temporary files behind',
  );
});
