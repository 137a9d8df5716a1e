// Upgrade from the previous release (0.1.0, commit a12c2af) to this one with
// objects in place. The previous release's manifest (e2e/fixtures/upgrade/)
// is applied and the previous operator code, taken from git, runs until
// every export, import and placeholder has converged. Then it stops, the
// current full-profile manifest is applied, the current operator starts, and
// the API server's audit log must show no write to any of those objects: the
// upgrade rewrites nothing that did not change.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../src/config.js';
import { startOperator, type RunningOperator } from '../src/main.js';
import { LeasesResource } from '../src/runtime/leader-election.js';
import { createLogger } from '../src/runtime/logger.js';
import { SecretsResource } from '../src/shared-informers.js';
import { REPO_ROOT, startTestCluster, type TestCluster } from './harness/cluster.js';
import { AuditLog, describeAudit, sleep } from './harness/operator-env.js';
import { waitFor } from './harness/wait.js';

const PREVIOUS_COMMIT = 'a12c2af';
const PREVIOUS_MANIFEST = join(REPO_ROOT, 'e2e', 'fixtures', 'upgrade', 'regcred-operator-0.1.0.yaml');
const CURRENT_MANIFEST = join(REPO_ROOT, 'deploy', 'release', 'regcred-operator-full.yaml');
const NAMESPACE = 'regcred-operator';
const SERVICE_ACCOUNT = `system:serviceaccount:${NAMESPACE}:regcred-operator`;
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

let cluster: TestCluster;
let audit: AuditLog;
let previousDir: string | undefined;
let previous: ChildProcess | undefined;
let current: RunningOperator | undefined;

/** The previous release's sources, or a clear failure when the clone does not have its commit. */
function checkOutPrevious(): string {
  try {
    execFileSync('git', ['-C', REPO_ROOT, 'cat-file', '-e', `${PREVIOUS_COMMIT}^{commit}`], {
      stdio: 'pipe',
    });
  } catch {
    throw new Error(
      `commit ${PREVIOUS_COMMIT} (release 0.1.0) is not in this clone; the upgrade test runs the ` +
        'previous release from git: fetch the full history (git fetch --unshallow) and run it again',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'regcred-previous-'));
  const archive = join(dir, 'previous.tar');
  execFileSync('git', [
    '-C',
    REPO_ROOT,
    'archive',
    '-o',
    archive,
    PREVIOUS_COMMIT,
    'src',
    'generated',
    'package.json',
    'tsconfig.json',
  ]);
  execFileSync('tar', ['-x', '-f', archive, '-C', dir]);
  // Same dependencies as today's (0.1.0 had every package this checkout installs).
  symlinkSync(realpathSync(join(REPO_ROOT, 'node_modules')), join(dir, 'node_modules'));
  return dir;
}

const deploymentArgs = (manifest: string): string[] => {
  const deployment = parseAllDocuments(readFileSync(manifest, 'utf8'))
    .map(
      (d) =>
        d.toJS() as {
          kind?: string;
          spec?: { template: { spec: { containers: Array<{ args: string[] }> } } };
        },
    )
    .find((d) => d?.kind === 'Deployment');
  assert.ok(deployment?.spec, `a Deployment in ${manifest}`);
  return deployment.spec.template.spec.containers[0]!.args;
};

async function serviceAccountKubeconfig(file: string): Promise<string> {
  const token = (await cluster.kubectl(['create', 'token', 'regcred-operator', '-n', NAMESPACE])).trim();
  const kubeconfig = join(cluster.cp.dir, file);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    kubeconfig,
    readFileSync(cluster.cp.kubeconfig, 'utf8')
      .replace(/token: .*/, `token: ${token}`)
      .replace(/\badmin\b/g, 'sa'),
  );
  return kubeconfig;
}

const serviceAccountWrites = (offset: number) =>
  audit.since(offset).filter((e) => e.user.username === SERVICE_ACCOUNT && WRITE_VERBS.has(e.verb));

/** Waits until the operator (the ServiceAccount) has written nothing but its Lease renewals for `quietMs`. */
async function waitForQuiet(quietMs: number): Promise<void> {
  await waitFor(
    `no write by the operator for ${quietMs} ms`,
    async () => {
      const offset = audit.offset();
      await sleep(quietMs);
      return serviceAccountWrites(offset).every((e) => e.objectRef?.resource === 'leases');
    },
    { timeoutMs: 60_000, intervalMs: 0 },
  );
}

const TEST_NAMESPACES = ['up-src', 'up-a', 'up-b', 'up-c'];
const OBJECTS = `
${TEST_NAMESPACES.map((n) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}}\n---`).join('\n')}
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: up-src}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"registry.upgrade.test":{"username":"robot","password":"one"}}}'
---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata: {name: creds, namespace: up-src}
spec: {toNamespaces: [up-a, up-b]}
---
apiVersion: v1
kind: Secret
metadata: {name: everyone, namespace: up-src}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"mirror.upgrade.test":{"username":"reader","password":"two"}}}'
---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata: {name: everyone, namespace: up-src}
spec: {toNamespace: "*"}
${['up-a', 'up-b', 'up-c']
  .map(
    (n) => `---
apiVersion: v1
kind: Secret
metadata:
  name: pull
  namespace: ${n}
  annotations: {secretgen.carvel.dev/image-pull-secret: ""}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: e30K}`,
  )
  .join('\n')}
${['up-a', 'up-b']
  .map(
    (n) => `---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretImport
metadata: {name: creds, namespace: ${n}}
spec: {fromNamespace: up-src}`,
  )
  .join('\n')}
`;

/** name -> resourceVersion of every Secret, SecretExport and SecretImport in the test namespaces. */
async function resourceVersions(): Promise<Map<string, string>> {
  const out = await cluster.kubectl([
    'get',
    'secrets,secretexports,secretimports',
    '-A',
    '-o',
    'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}',
  ]);
  return new Map(
    out
      .split('\n')
      .filter((l) => TEST_NAMESPACES.some((n) => l.includes(`/${n}/`)))
      .map((l) => l.split('=') as [string, string]),
  );
}

async function converged(): Promise<void> {
  const auths = async (namespace: string, name: string) => {
    const s = await cluster.client.get<V1Secret>(SecretsResource, namespace, name);
    const text = Buffer.from(s?.data?.['.dockerconfigjson'] ?? '', 'base64').toString();
    return Object.keys((JSON.parse(text || '{}') as { auths?: object }).auths ?? {}).sort();
  };
  await waitFor('placeholders filled, imports copied, export statuses written', async () => {
    for (const n of ['up-a', 'up-b'])
      if ((await auths(n, 'pull')).join() !== 'mirror.upgrade.test,registry.upgrade.test') return false;
    if ((await auths('up-c', 'pull')).join() !== 'mirror.upgrade.test') return false;
    for (const n of ['up-a', 'up-b'])
      if ((await auths(n, 'creds')).join() !== 'registry.upgrade.test') return false;
    const statuses = await cluster.kubectl([
      'get',
      'secretexports,secretimports',
      '-A',
      '-o',
      'jsonpath={range .items[*]}{.status.friendlyDescription}{"\\n"}{end}',
    ]);
    return statuses.split('\n').filter((s) => s === 'Reconcile succeeded').length === 4;
  });
}

before(async () => {
  previousDir = checkOutPrevious();
  cluster = await startTestCluster({ installCrds: false, auditLog: true });
  audit = new AuditLog(cluster.cp.auditLogPath!);
});

after(async () => {
  if (previous && previous.exitCode === null) previous.kill('SIGKILL');
  await current?.stop();
  await cluster?.stop();
  if (previousDir) rmSync(previousDir, { recursive: true, force: true });
});

test('upgrading from 0.1.0 to this release rewrites no export, import or placeholder', async () => {
  // 1. The previous release, and its operator over a set of objects until they converge.
  await cluster.kubectl(['apply', '-f', PREVIOUS_MANIFEST]);
  await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  await cluster.apply(OBJECTS);
  const previousKubeconfig = await serviceAccountKubeconfig('previous-sa.kubeconfig');
  const previousLog = join(cluster.cp.dir, 'previous-operator.log');
  const args = deploymentArgs(PREVIOUS_MANIFEST).filter((a) => !a.startsWith('--health-port'));
  previous = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(previousDir!, 'src', 'main.ts'),
      ...args,
      '--health-port=0',
      '--health-host=127.0.0.1',
      `--kubeconfig=${previousKubeconfig}`,
    ],
    {
      cwd: previousDir,
      env: { ...process.env, POD_NAMESPACE: NAMESPACE, POD_NAME: 'previous-0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logStream = createWriteStream(previousLog);
  previous.stdout!.pipe(logStream);
  previous.stderr!.pipe(logStream);
  const exited = new Promise<number | null>((resolve) => previous!.on('exit', (code) => resolve(code)));
  try {
    await converged();
  } catch (err) {
    throw new Error(
      `the previous operator did not converge: ${(err as Error).message}\n${readFileSync(previousLog, 'utf8').slice(-4000)}`,
      { cause: err },
    );
  }
  await waitForQuiet(3000);
  const versionsBefore = await resourceVersions();
  assert.equal(versionsBefore.size, 2 + 2 + 3 + 2 + 2, [...versionsBefore.keys()].join('\n'));
  previous.kill('SIGTERM');
  assert.equal(await exited, 0, 'the previous operator stopped cleanly');

  // 2. The current release over it, and the current operator with its flags and ServiceAccount.
  const offset = audit.offset();
  const applied = await cluster.kubectl(['apply', '-f', CURRENT_MANIFEST]);
  assert.match(applied, /deployment.apps\/regcred-operator configured/);
  await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  const config = parseConfig(deploymentArgs(CURRENT_MANIFEST), { POD_NAMESPACE: NAMESPACE });
  assert.ok(!('help' in config));
  let log = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      log += chunk.toString();
      cb();
    },
  });
  current = await startOperator(
    {
      ...config,
      kubeconfig: await serviceAccountKubeconfig('current-sa.kubeconfig'),
      healthPort: 0,
      healthHost: '127.0.0.1',
      logLevel: 'info',
      // The Pod webhook is not part of the upgrade under test (e2e/pod-webhook.e2e.ts).
      webhookPort: 0,
    },
    createLogger('info', sink),
  );
  // It took over the Lease the previous operator released, and reconciled every object once.
  await waitFor('the current operator leads', async () => {
    const lease = await cluster.client.get<KubernetesObject & { spec?: { holderIdentity?: string } }>(
      LeasesResource,
      NAMESPACE,
      'regcred-operator',
    );
    return current!.manager.isLeading() && lease?.spec?.holderIdentity !== 'previous-0';
  });
  const reconciled = async (controller: string) => {
    const metrics = await current!.manager.metrics();
    const line = metrics
      .split('\n')
      .find((l) =>
        l.startsWith(`controller_runtime_reconcile_total{controller="${controller}",result="success"}`),
      );
    return Number(line?.split(' ').pop() ?? 0);
  };
  await waitFor('every export, import and placeholder reconciled by the current operator', async () => {
    return (
      (await reconciled('secretexport')) >= 2 &&
      (await reconciled('secretimport')) >= 2 &&
      (await reconciled('placeholder')) >= 3
    );
  });
  await waitForQuiet(5000);

  // 3. Nothing rewritten: no write to the objects (audit log), the same resourceVersions.
  const writes = serviceAccountWrites(offset);
  const toObjects = writes.filter((e) => TEST_NAMESPACES.includes(e.objectRef?.namespace ?? ''));
  assert.deepEqual(
    toObjects.map(describeAudit),
    [],
    `the current operator rewrote objects that did not change:\n${writes.map(describeAudit).join('\n')}`,
  );
  // What it may write: its own Lease (leader election), nothing else.
  for (const w of writes) assert.equal(w.objectRef?.resource, 'leases', describeAudit(w));
  assert.deepEqual(await resourceVersions(), versionsBefore);
  assert.doesNotMatch(log, /forbidden/i, log);

  // 4. And it works: a changed source reaches the placeholders and the import copies.
  await cluster.apply(`
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: up-src}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"registry.upgrade.test":{"username":"robot","password":"rotated"}}}'
`);
  await waitFor('the rotated password reaches up-a/pull', async () => {
    const s = await cluster.client.get<V1Secret>(SecretsResource, 'up-a', 'pull');
    return Buffer.from(s?.data?.['.dockerconfigjson'] ?? '', 'base64')
      .toString()
      .includes('"password":"rotated"');
  });
});
