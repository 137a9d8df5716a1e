// A GitOps tool that owns a placeholder's manifest resets its data to `e30K`
// ({}) on every sync. The operator must refill it at once, with exactly one
// write per reset and nothing after: a write loop between the two would show
// up here as extra writes in the API server's audit log.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import {
  auths,
  createNamespace,
  describeAudit,
  expectPlaceholder,
  IMAGE_PULL_SECRET,
  readPlaceholder,
  shareSecret,
  sleep,
  startSharingEnv,
  succeededStatus,
  userPass,
  waitForOperatorIdle,
  type SharingEnv,
} from './fixtures/sharing/env.js';
import { waitFor } from './harness/wait.js';

let env: SharingEnv;

before(async () => {
  env = await startSharingEnv();
});

after(async () => {
  await env?.stop();
});

/** The placeholder as it is committed to Git: `{}` and a newline, base64. */
const manifest = (namespace: string, name: string) =>
  stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { namespace, name, annotations: { [IMAGE_PULL_SECRET]: '' } },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': 'e30K' },
  });

const RESETS = 5;
/** "At once" on a 2-core machine shared with other test runs; typical refills take well under 1 s. */
const REFILL_LIMIT_MS = 3000;

for (const tool of [
  // Argo CD's default sync and a plain `kubectl apply`: client-side apply, three-way merge.
  { name: 'client-side apply (Argo CD, kubectl apply)', args: ['apply', '-f', '-'] },
  // Flux's kustomize-controller: server-side apply that forces its field ownership back.
  {
    name: 'forced server-side apply (Flux kustomize-controller)',
    args: ['apply', '--server-side', '--force-conflicts', '--field-manager=kustomize-controller', '-f', '-'],
  },
]) {
  test(`a placeholder reset to {} by ${tool.name} is refilled at once, one write per reset, none after`, async () => {
    const suffix = tool.args.includes('--server-side') ? 'ssa' : 'csa';
    const source = `gitops-src-${suffix}`;
    const target = `gitops-app-${suffix}`;
    await createNamespace(env.client, source);
    await createNamespace(env.client, target);
    const config = auths({ 'registry.gitops.test': userPass('robot', 'hunter2') });
    await shareSecret(env.client, source, 'creds', config, { toNamespaces: [target] });
    await env.cluster.kubectl(tool.args, manifest(target, 'pull'));
    const status = succeededStatus([`${source}/creds`]);
    await expectPlaceholder(env.client, target, 'pull', config, status);
    await waitForOperatorIdle(env);

    const refillMs: number[] = [];
    const offset = env.audit.offset();
    for (let i = 0; i < RESETS; i++) {
      const before = env.audit.offset();
      const reset = Date.now();
      await env.cluster.kubectl(tool.args, manifest(target, 'pull'));
      await waitFor(
        `placeholder ${target}/pull refilled after reset ${i + 1}`,
        async () => (await readPlaceholder(env.client, target, 'pull')).raw !== '{}\n',
        { timeoutMs: 20_000, intervalMs: 20 },
      );
      refillMs.push(Date.now() - reset);
      const state = await readPlaceholder(env.client, target, 'pull');
      assert.deepEqual(state.config, config, `refilled content after reset ${i + 1}`);
      assert.equal(state.status, status, `status annotation after reset ${i + 1}`);
      // The reset is a write by the test; make sure it really emptied the data (not a no-op apply).
      const resetWrites = env.audit
        .since(before)
        .filter((e) => e.user.username !== env.operatorUser && e.objectRef?.name === 'pull');
      assert.ok(
        resetWrites.some((e) => e.verb === 'patch' || e.verb === 'update'),
        `reset ${i + 1} wrote the Secret`,
      );
      await sleep(300);
    }
    console.log(`# refill after reset (ms): ${refillMs.join(', ')}`);
    for (const [i, ms] of refillMs.entries())
      assert.ok(ms < REFILL_LIMIT_MS, `reset ${i + 1} refilled after ${ms} ms (limit ${REFILL_LIMIT_MS})`);

    // Quiet period: any follow-up write (a loop with the status annotation, a second patch) shows here.
    await sleep(3000);
    const writes = env.operatorWritesSince(offset);
    assert.equal(
      writes.length,
      RESETS,
      `one operator write per reset, none after:\n${writes.map(describeAudit).join('\n')}`,
    );
    for (const w of writes) {
      assert.equal(w.objectRef?.resource, 'secrets', describeAudit(w));
      assert.equal(w.objectRef?.namespace, target, describeAudit(w));
      assert.equal(w.objectRef?.name, 'pull', describeAudit(w));
    }
  });
}
