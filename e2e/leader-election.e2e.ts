// Leader election between operator processes against a real API server: one
// replica holds the Lease and writes, the others keep their caches warm and
// write nothing (each process has its own user, so the audit log tells their
// writes apart); a SIGKILLed leader is replaced within the lease duration, a
// SIGTERMed one releases the Lease so the follower leads at once; with
// --leader-elect off no Lease is created.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import { LeasesResource, type Lease } from '../src/runtime/leader-election.js';
import type { ResourceType } from '../src/runtime/kube-client.js';
import { SecretsResource } from '../src/shared-informers.js';
import { REPO_ROOT, startTestCluster, type TestCluster } from './harness/cluster.js';
import { freePort } from './harness/control-plane.js';
import { AuditLog, describeAudit, type AuditEvent } from './harness/operator-env.js';
import { waitFor } from './harness/wait.js';

const OPERATOR_NAMESPACE = 'regcred-operator';
const LEASE = 'regcred-operator';
// Short timings, in the order client-go requires: lease > renew deadline > retry period.
const LEASE_DURATION_MS = 4000;
const RETRY_PERIOD_MS = 1000;
const ELECTION_FLAGS = [
  '--leader-elect=true',
  '--leader-elect-lease-duration=4s',
  '--leader-elect-renew-deadline=3s',
  '--leader-elect-retry-period=1s',
];
const USERS = ['operator-a', 'operator-b', 'operator-c', 'operator-solo'];

const Namespaces: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
};

let cluster: TestCluster;
let audit: AuditLog;
const running: OperatorProcess[] = [];

interface LogLine {
  message: string;
  level: string;
  [key: string]: unknown;
}

class OperatorProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  logs = '';

  constructor(
    readonly user: string,
    readonly port: number,
    args: string[],
  ) {
    this.child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src', 'main.ts'),
        '--namespace',
        OPERATOR_NAMESPACE,
        '--health-port',
        String(port),
        '--health-host',
        '127.0.0.1',
        // The Pod webhook (its own e2e) would race other processes for port 9443.
        '--webhook-port',
        '0',
        '--controllers',
        'secretexport,placeholder',
        ...args,
      ],
      {
        env: {
          ...process.env,
          KUBECONFIG: cluster.cp.kubeconfigFor(user),
          POD_NAME: user,
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child.stderr!.on('data', (d: Buffer) => (this.logs += d.toString()));
    this.exited = new Promise((r) => this.child.once('exit', (code) => r(code)));
    running.push(this);
  }

  lines(): LogLine[] {
    return this.logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  }

  async readyz(): Promise<number | undefined> {
    return (await fetch(`http://127.0.0.1:${this.port}/readyz`).catch(() => undefined))?.status;
  }

  async leaderGauge(): Promise<string | undefined> {
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    return /^leader_election_master_status\{name="regcred-operator"\} (\d)$/m.exec(text)?.[1];
  }

  async waitReady(): Promise<void> {
    await waitFor(`${this.user} /readyz 200`, async () => (await this.readyz()) === 200, {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
  }
}

async function spawnOperator(user: string, args: string[] = ELECTION_FLAGS): Promise<OperatorProcess> {
  return new OperatorProcess(user, await freePort(), args);
}

const getLease = () => cluster.client.get<Lease>(LeasesResource, OPERATOR_NAMESPACE, LEASE);
const holderUser = (lease: Lease | undefined) => lease?.spec?.holderIdentity?.split('_')[0];

async function waitForHolder(user: string, timeoutMs = 30_000): Promise<Lease> {
  return waitFor(
    `${user} to hold the Lease`,
    async () => {
      const lease = await getLease();
      return holderUser(lease) === user ? lease : undefined;
    },
    { timeoutMs, intervalMs: 25 },
  );
}

const dockerConfig = (password: string) =>
  JSON.stringify({ auths: { 'registry.example.com': { username: 'ci', password } } });

/** The source Secret's credential, written by the test (as a rotation would). */
async function setSource(password: string): Promise<void> {
  const yaml = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'creds', namespace: 'le-src' },
    type: 'kubernetes.io/dockerconfigjson',
    stringData: { '.dockerconfigjson': dockerConfig(password) },
  });
  await cluster.apply(yaml);
}

async function waitForPlaceholder(password: string, timeoutMs = 30_000): Promise<number> {
  const started = performance.now();
  await waitFor(
    `the placeholder to hold password ${password}`,
    async () => {
      const s = await cluster.client.get<V1Secret>(SecretsResource, 'le-dst', 'pull');
      const data = s?.data?.['.dockerconfigjson'];
      return data !== undefined && Buffer.from(data, 'base64').toString().includes(password);
    },
    { timeoutMs, intervalMs: 25 },
  );
  return performance.now() - started;
}

const writesBy = (events: AuditEvent[], user: string) => events.filter((e) => e.user.username === user);
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const writes = (offset: number) =>
  audit.since(offset).filter((e) => WRITE_VERBS.has(e.verb) && USERS.includes(e.user.username));

before(async () => {
  const users = USERS.map((name) => ({
    name,
    token: randomBytes(24).toString('hex'),
    groups: ['system:masters'],
  }));
  cluster = await startTestCluster({ auditLog: true, controllerManager: true }, users);
  audit = new AuditLog(cluster.cp.auditLogPath!);
  for (const name of [OPERATOR_NAMESPACE, 'le-src', 'le-dst'])
    await cluster.client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await setSource('v1');
  await cluster.apply(
    [
      {
        apiVersion: 'secretgen.carvel.dev/v1alpha1',
        kind: 'SecretExport',
        metadata: { name: 'creds', namespace: 'le-src' },
        spec: { toNamespaces: ['*'] },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'pull',
          namespace: 'le-dst',
          annotations: { 'secretgen.carvel.dev/image-pull-secret': '' },
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': 'e30=' },
      },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n'),
  );
});

after(async () => {
  for (const p of running) p.child.kill('SIGKILL');
  await cluster?.stop();
});

describe('leader election', () => {
  test('with --leader-elect off (the default) the operator works and creates no Lease', async () => {
    const solo = await spawnOperator('operator-solo', []);
    try {
      await solo.waitReady();
      await waitForPlaceholder('v1');
      assert.equal(await solo.leaderGauge(), '1', 'without election the process runs its workers');
      const leases = await cluster.client.list(LeasesResource, { namespace: OPERATOR_NAMESPACE });
      assert.deepEqual(leases.items, []);
      solo.child.kill('SIGTERM');
      assert.equal(await solo.exited, 0, solo.logs);
      assert.equal(await getLease(), undefined);
    } finally {
      solo.child.kill('SIGKILL');
    }
  });

  let a: OperatorProcess;
  let b: OperatorProcess;

  test('two replicas: both become ready, one holds the Lease and writes, the follower writes nothing', async () => {
    const offset = audit.offset();
    a = await spawnOperator('operator-a');
    const lease = await waitForHolder('operator-a', 60_000);
    assert.match(lease.spec?.holderIdentity ?? '', /^operator-a_[0-9a-f-]{36}$/);
    assert.equal(lease.spec?.leaseDurationSeconds, 4);
    b = await spawnOperator('operator-b');
    await Promise.all([a.waitReady(), b.waitReady()]);
    assert.equal(await a.leaderGauge(), '1');
    assert.equal(await b.leaderGauge(), '0');
    await setSource('v2');
    const ms = await waitForPlaceholder('v2');
    console.log(`# leader filled the placeholder in ${Math.round(ms)} ms`);
    // Several renew periods with both running.
    await new Promise((r) => setTimeout(r, 3 * RETRY_PERIOD_MS));
    assert.equal(holderUser(await getLease()), 'operator-a');
    const all = writes(offset);
    assert.ok(writesBy(all, 'operator-a').some((e) => e.objectRef?.resource === 'secrets'));
    assert.ok(
      writesBy(all, 'operator-a').some((e) => e.objectRef?.resource === 'leases' && e.verb === 'update'),
    );
    assert.deepEqual(writesBy(all, 'operator-b').map(describeAudit), [], 'the follower wrote nothing');
    assert.ok(
      b
        .lines()
        .some((l) => l.message === 'another replica is leader' && String(l.leader).startsWith('operator-a_')),
      b.logs,
    );
  });

  test('SIGKILL of the leader: the follower takes over when the Lease expires (lease duration after the last renewal it saw) and fills a change', async () => {
    const offset = audit.offset();
    const before = (await getLease())!.spec!.leaseTransitions ?? 0;
    const killedAt = performance.now();
    a.child.kill('SIGKILL');
    await a.exited;
    const lease = await waitForHolder('operator-b');
    const takeover = performance.now() - killedAt;
    console.log(`# follower took over ${Math.round(takeover)} ms after the leader was SIGKILLed`);
    // The follower's lease duration runs from when it first saw the leader's last renewal (made at
    // most one retry period before the kill, seen at most one jittered period, 2.2 s, after it);
    // it tries again the moment that expires.
    assert.ok(
      takeover >= LEASE_DURATION_MS - RETRY_PERIOD_MS - 100,
      `not before the Lease expired: ${Math.round(takeover)} ms`,
    );
    assert.ok(
      takeover <= LEASE_DURATION_MS + 2.2 * RETRY_PERIOD_MS + 500,
      `took over in ${Math.round(takeover)} ms`,
    );
    assert.equal(lease.spec?.leaseTransitions, before + 1);
    await waitFor('b reports itself leader', async () => (await b.leaderGauge()) === '1');
    await setSource('v3');
    const ms = await waitForPlaceholder('v3');
    console.log(`# new leader filled the change in ${Math.round(ms)} ms`);
    const all = writes(offset);
    assert.deepEqual(writesBy(all, 'operator-a').map(describeAudit), [], 'a killed process writes nothing');
    assert.ok(writesBy(all, 'operator-b').some((e) => e.objectRef?.resource === 'secrets'));
  });

  test('SIGTERM of the leader: it drains, releases the Lease, and the follower leads at once', async () => {
    const c = await spawnOperator('operator-c', [
      ...ELECTION_FLAGS.filter((f) => !f.startsWith('--leader-elect-retry-period')),
      // A short retry period, so "at once" is told apart from "after the lease duration".
      '--leader-elect-retry-period=500ms',
    ]);
    await c.waitReady();
    assert.equal(await c.leaderGauge(), '0');
    assert.equal(holderUser(await getLease()), 'operator-b');
    const offset = audit.offset();
    const before = (await getLease())!.spec!.leaseTransitions ?? 0;
    const stoppedAt = performance.now();
    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0, b.logs);
    const exitedAfter = performance.now() - stoppedAt;
    assert.ok(
      b.lines().some((l) => l.message === 'released the Lease'),
      b.logs,
    );
    const lease = await waitForHolder('operator-c', 10_000);
    const takeover = performance.now() - stoppedAt;
    console.log(
      `# SIGTERM: leader exited after ${Math.round(exitedAfter)} ms, follower led ${Math.round(takeover)} ms after the signal`,
    );
    // Without the release the follower would wait the whole lease duration (4 s) after the last renewal.
    assert.ok(
      takeover - exitedAfter < 2.2 * 500 + 500,
      `led ${Math.round(takeover - exitedAfter)} ms after the exit`,
    );
    assert.equal(lease.spec?.leaseTransitions, before + 1);
    // The leader's last write was the release (its workers drained before it), and it came
    // before the new leader's first write: one writer at a time.
    const all = writes(offset);
    const fromB = writesBy(all, 'operator-b');
    const fromC = writesBy(all, 'operator-c');
    assert.ok(fromB.length > 0, 'the leader released the Lease');
    const lastB = fromB.at(-1)!;
    assert.equal(`${lastB.verb} ${lastB.objectRef?.resource}`, 'update leases');
    assert.ok(fromC.length > 0);
    assert.ok(
      lastB.requestReceivedTimestamp! <= fromC[0]!.requestReceivedTimestamp!,
      `${describeAudit(lastB)} before ${describeAudit(fromC[0]!)}`,
    );
    await setSource('v4');
    await waitForPlaceholder('v4');
    c.child.kill('SIGTERM');
    assert.equal(await c.exited, 0, c.logs);
    const released = await getLease();
    assert.equal(released?.spec?.holderIdentity ?? '', '', 'the last leader left the Lease released');
    assert.equal(released?.spec?.leaseDurationSeconds, 1);
  });

  test('a leader that finds its Lease taken stops writing at once and exits 1 (the Deployment restarts it)', async () => {
    const d = await spawnOperator('operator-solo');
    const lease = await waitForHolder('operator-solo', 60_000);
    await d.waitReady();
    const offset = audit.offset();
    const takenAt = performance.now();
    await cluster.client.replace<Lease>(LeasesResource, {
      ...lease,
      spec: { ...lease.spec, holderIdentity: 'intruder', leaseDurationSeconds: 60 },
    });
    const code = await d.exited;
    const exitedAfter = performance.now() - takenAt;
    console.log(`# leader exited ${Math.round(exitedAfter)} ms after its Lease was taken`);
    assert.equal(code, 1, d.logs);
    assert.ok(d.logs.includes('regcred-operator: leader election lost\n'), d.logs);
    assert.ok(
      d
        .lines()
        .some(
          (l) => l.message === 'lost leadership: another replica holds the Lease' && l.leader === 'intruder',
        ),
      d.logs,
    );
    assert.ok(
      d.lines().some((l) => l.message === 'leadership lost: stopping workers'),
      d.logs,
    );
    // Seen at its next renewal (one retry period), well inside the renew deadline.
    assert.ok(exitedAfter < 3000, `exited after ${Math.round(exitedAfter)} ms`);
    const accepted = writes(offset).filter((e) => (e.responseStatus?.code ?? 0) < 300);
    assert.deepEqual(accepted.map(describeAudit), [], 'no write accepted from the replaced leader');
    assert.equal((await getLease())?.spec?.holderIdentity, 'intruder', 'and it did not take the Lease back');
  });
});
