// Registry faults for fetches: four PackageRepositories, each fetching a
// bundle from the real registry (CNCF distribution, htpasswd, TLS from a test
// CA) with a secretRef, each through its own HTTPS proxy that is switched to
// one fault before the repository is created: registry down (connection
// refused), every request answered 500, every request held longer than
// --fetch-timeout, a certificate from another CA. Each repository reports
// the fault (ReconcileFailed naming it), then, once its proxy passes requests
// again, reconciles successfully on its own retry (no spec change), with a
// bounded number of status writes and no write after it settled.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { PackageRepositories } from '../../src/packaging/controllers/resources.js';
import type { RunStatus } from '../../src/packaging/run-status.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import {
  HttpsFaultProxy,
  OperatorProcess,
  Secrets,
  countWrites,
  describeWrites,
  killAllOperators,
  operatorWrites,
  writesDuring,
  type RegistryFaultMode,
} from '../harness/faults.js';
import { AuditLog } from '../harness/operator-env.js';
import {
  makeTestCertificates,
  startRegistry,
  writeOciLayout,
  type TestRegistry,
} from '../harness/registry.js';
import { waitFor } from '../harness/wait.js';

const USER = 'faults-operator';
const OPERATOR_NS = 'regcred-operator';
const ALICE = { username: 'alice', password: `faults-${randomBytes(8).toString('hex')}` };
const FETCH_TIMEOUT = '4s';
const QUIET_MS = 10_000;

type Pkgr = KubernetesObject & { metadata: { generation?: number }; status?: RunStatus };

interface FaultRow {
  mode: Exclude<RegistryFaultMode, 'pass'>;
  /** What the repository's usefulErrorMessage says while the fault lasts. */
  reported: RegExp;
}

const ROWS: FaultRow[] = [
  { mode: 'down', reported: /: NETWORK: connect ECONNREFUSED 127\.0\.0\.1:\d+$/ },
  { mode: 'status500', reported: /: SERVER_ERROR: .*\(HTTP 500 fetching manifest 1\.0\.0\)$/ },
  { mode: 'slow', reported: new RegExp(`: fetch timed out after ${FETCH_TIMEOUT} \\(--fetch-timeout\\)$`) },
  {
    mode: 'wrongCa',
    reported:
      /: X509: x509: TLS certificate of https:\/\/127\.0\.0\.1:\d+ could not be verified: .*add the CA that signed it to caCerts/,
  },
];

let cluster: TestCluster;
let audit: AuditLog;
let registry: TestRegistry;
let operator: OperatorProcess;
let work: string;
const proxies = new Map<string, HttpsFaultProxy>();

const namespaceOf = (mode: string) => `reg-${mode.toLowerCase()}`;

async function repository(mode: string): Promise<Pkgr | undefined> {
  return cluster.client.get<Pkgr>(PackageRepositories, namespaceOf(mode), 'repo');
}

const current = (r: Pkgr | undefined) =>
  r?.status?.observedGeneration === r?.metadata.generation ? r?.status : undefined;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'regcred-faults-registry-'));
  [cluster, registry] = await Promise.all([
    startTestCluster({ auditLog: true, controllerManager: true }, [
      { name: USER, token: randomBytes(24).toString('hex'), groups: ['system:masters'] },
    ]),
    startRegistry({ users: [ALICE], log: (line) => console.log(`# ${line}`) }),
  ]);
  audit = new AuditLog(cluster.cp.auditLogPath!);
  const layout = join(work, 'layout');
  await writeOciLayout(
    layout,
    {
      'packages/faults.yml': stringify({
        apiVersion: 'data.packaging.carvel.dev/v1alpha1',
        kind: 'PackageMetadata',
        metadata: { name: 'faults.test.carvel.dev' },
        spec: { displayName: 'Faults', shortDescription: 'for the registry fault suite' },
      }),
    },
    { tag: '1.0.0', bundle: true },
  );
  await registry.push(layout, '1.0.0', 'faults/repo');
  const other = await makeTestCertificates(join(work, 'other-ca'));
  const [host, port] = registry.host.split(':');
  for (const { mode } of ROWS) {
    const proxy = new HttpsFaultProxy({
      target: { host: host!, port: Number(port), ca: registry.caCert },
      tls: {
        cert: readFileSync(join(registry.dir, 'tls', 'server.crt'), 'utf8'),
        key: readFileSync(join(registry.dir, 'tls', 'server.key'), 'utf8'),
      },
      otherCaTls: { cert: readFileSync(other.certFile, 'utf8'), key: readFileSync(other.keyFile, 'utf8') },
      slowMs: 10_000,
    });
    await proxy.start();
    proxies.set(mode, proxy);
  }
  for (const ns of [OPERATOR_NS, 'kapp-controller-packaging-global', ...ROWS.map((r) => namespaceOf(r.mode))])
    await cluster.kubectl(['create', 'namespace', ns]);
  await cluster.apply(
    stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'regcred-operator-config', namespace: OPERATOR_NS },
      stringData: { caCerts: registry.caCert },
    }),
  );
  operator = await OperatorProcess.start(cluster.cp, {
    user: USER,
    namespace: OPERATOR_NS,
    args: ['--controllers', 'packagerepository', '--fetch-timeout', FETCH_TIMEOUT],
  });
  await operator.waitReady();
});

after(async () => {
  await killAllOperators();
  for (const proxy of proxies.values()) await proxy.stop();
  await registry?.stop();
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('registry faults for fetches, then recovery', () => {
  test('h. registry down / 500s / slower than --fetch-timeout / wrong CA: each reported, each recovers on its own retry', async () => {
    const offset = audit.offset();
    // Each repository is created while its fault is on: its very first fetch fails.
    for (const { mode } of ROWS) {
      const proxy = proxies.get(mode)!;
      await proxy.setMode(mode);
      const ns = namespaceOf(mode);
      await cluster.client.create<V1Secret>(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds', namespace: ns },
        type: 'kubernetes.io/dockerconfigjson',
        stringData: {
          '.dockerconfigjson': JSON.stringify({ auths: { [proxy.host]: { ...ALICE, auth: '' } } }),
        },
      });
      await cluster.apply(
        stringify({
          apiVersion: 'packaging.carvel.dev/v1alpha1',
          kind: 'PackageRepository',
          metadata: { name: 'repo', namespace: ns },
          spec: {
            fetch: {
              imgpkgBundle: { image: `${proxy.host}/faults/repo:1.0.0`, secretRef: { name: 'creds' } },
            },
          },
        }),
      );
    }
    const reported: Record<string, string> = {};
    await Promise.all(
      ROWS.map(({ mode, reported: pattern }) =>
        waitFor(
          `the ${mode} repository to report its fault`,
          async () => {
            const status = current(await repository(mode));
            const message = status?.usefulErrorMessage ?? '';
            if (status?.conditions?.[0]?.type !== 'ReconcileFailed') return false;
            if (!pattern.test(message)) throw new Error(`ReconcileFailed, but: ${message}`);
            reported[mode] = message;
            return true;
          },
          { timeoutMs: 60_000, intervalMs: 200 },
        ),
      ),
    );
    for (const { mode } of ROWS) console.log(`# h. ${mode}: ${reported[mode]}`);
    assert.ok(proxies.get('status500')!.requests.status500 > 0, 'the 500 proxy answered requests');
    assert.ok(proxies.get('slow')!.requests.slow > 0, 'the slow proxy held requests');

    const restoredAt = performance.now();
    for (const proxy of proxies.values()) await proxy.setMode('pass');
    const recoveredMs: Record<string, number> = {};
    await Promise.all(
      ROWS.map(({ mode }) =>
        waitFor(
          `the ${mode} repository to reconcile after the fault`,
          async () => {
            const status = current(await repository(mode));
            if (status?.conditions?.[0]?.type !== 'ReconcileSucceeded') return false;
            recoveredMs[mode] = Math.round(performance.now() - restoredAt);
            return true;
          },
          // Retries back off 2^n s; a few failures in, the next retry is at most ~32 s away.
          { timeoutMs: 60_000, intervalMs: 200 },
        ),
      ),
    );
    const packages = await cluster.kubectl(['get', 'packagemetadatas', '-A', '-o', 'name']);
    assert.equal(
      packages.trim().split('\n').length,
      ROWS.length,
      `one PackageMetadata per repository: ${packages}`,
    );

    const quiet = await writesDuring(audit, [USER], QUIET_MS);
    const all = operatorWrites(audit, [USER], offset);
    const counts = countWrites(all);
    const statusWrites = (mode: string) =>
      all.filter(
        (e) => e.objectRef?.resource === 'packagerepositories' && e.objectRef.namespace === namespaceOf(mode),
      ).length;
    for (const { mode } of ROWS)
      console.log(
        `# h. ${mode}: recovered ${recoveredMs[mode]} ms after the proxy passed requests again; ` +
          `${statusWrites(mode)} PackageRepository writes`,
      );
    console.log(
      `# h. operator writes: ${counts.total}; after settling ${quiet.length} in ${QUIET_MS / 1000} s`,
    );
    assert.deepEqual(describeWrites(quiet), '', 'no write after every repository settled');
    for (const { mode } of ROWS) {
      // Fetching, failed, (a few retries: each Fetching + failed, unchanged ones not written), succeeded.
      assert.ok(statusWrites(mode) <= 16, `${mode}: ${statusWrites(mode)} status writes: a retry loop`);
    }
  });
});
