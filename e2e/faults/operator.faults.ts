// Operator process faults during a rotation of one exported credential to 200
// placeholders: the operator SIGKILLed mid-fan-out and started again, and the
// leader of two replicas (--leader-elect=true) SIGKILLed mid-fan-out while
// the follower runs: the follower takes over within the lease duration and
// the audit log shows writes from one identity at a time.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LeasesResource, type Lease } from '../../src/runtime/leader-election.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import {
  FANOUT_REGISTRY,
  OperatorProcess,
  createFanout,
  killAllOperators,
  runRotationCase,
  type Fanout,
} from '../harness/faults.js';
import { AuditLog, describeAudit } from '../harness/operator-env.js';
import { waitFor } from '../harness/wait.js';

const N = 200;
const OPERATOR_NAMESPACE = 'regcred-operator';
const LEASE = 'regcred-operator';
// A client-side limit that makes the 200-placeholder fan-out last ~2 s, so each kill lands inside it.
const SLOW_FANOUT = ['--kube-api-qps=100', '--kube-api-burst=10'];
const CONTROLLERS = ['--controllers', 'secretexport,placeholder'];
// Short timings, in the order client-go requires: lease > renew deadline > retry period.
const LEASE_DURATION_MS = 4000;
const RETRY_PERIOD_MS = 1000;
const ELECTION = [
  '--leader-elect=true',
  '--leader-elect-lease-duration=4s',
  '--leader-elect-renew-deadline=3s',
  '--leader-elect-retry-period=1s',
];
const USERS = ['faults-solo', 'faults-leader', 'faults-follower'];

let cluster: TestCluster;
let audit: AuditLog;
let fanout: Fanout;

const start = (user: string, args: string[] = []) =>
  OperatorProcess.start(cluster.cp, {
    user,
    namespace: OPERATOR_NAMESPACE,
    args: [...CONTROLLERS, ...SLOW_FANOUT, ...args],
  });

const holderUser = async () =>
  (await cluster.client.get<Lease>(LeasesResource, OPERATOR_NAMESPACE, LEASE))?.spec?.holderIdentity?.split(
    '_',
  )[0];

before(async () => {
  cluster = await startTestCluster(
    { auditLog: true, controllerManager: true },
    USERS.map((name) => ({ name, token: randomBytes(24).toString('hex'), groups: ['system:masters'] })),
  );
  audit = new AuditLog(cluster.cp.auditLogPath!);
  await cluster.kubectl(['create', 'namespace', OPERATOR_NAMESPACE]);
  fanout = await createFanout(cluster.client, { prefix: 'op', count: N, password: 'initial' });
});

after(async () => {
  await killAllOperators();
  await cluster?.stop();
});

describe('operator process faults during a rotation to 200 placeholders', () => {
  test('c. the operator SIGKILLed mid-fan-out and started again', async () => {
    let operator = await start('faults-solo');
    await operator.waitReady();
    await fanout.waitConverged({ [FANOUT_REGISTRY]: 'initial' });
    let restartedReadyMs = 0;
    const result = await runRotationCase({
      label: 'c. operator SIGKILLed mid-fan-out',
      audit,
      users: ['faults-solo'],
      fanout,
      faultAfterRotated: 20,
      async fault() {
        await operator.kill();
        const t = performance.now();
        operator = await start('faults-solo');
        await operator.waitReady();
        restartedReadyMs = Math.round(performance.now() - t);
      },
    });
    console.log(`# c. the new process was ready ${restartedReadyMs} ms after the kill`);
    assert.ok(result.rotatedAtFault < N);
    assert.equal(await operator.stop(), 0, `clean exit on SIGTERM (log: ${operator.logPath})`);
  });

  test('d. the leader SIGKILLed mid-fan-out: the follower takes over within the lease duration, one writer at a time', async () => {
    const leader = await start('faults-leader', ELECTION);
    await waitFor('faults-leader to hold the Lease', async () => (await holderUser()) === 'faults-leader', {
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    const follower = await start('faults-follower', ELECTION);
    await Promise.all([leader.waitReady(), follower.waitReady()]);
    const offset = audit.offset();
    let takeoverMs = 0;
    const result = await runRotationCase({
      label: 'd. leader SIGKILLed, follower takes over',
      audit,
      users: ['faults-leader', 'faults-follower'],
      fanout,
      faultAfterRotated: 20,
      async fault() {
        const killedAt = performance.now();
        await leader.kill();
        await waitFor(
          'the follower to hold the Lease',
          async () => (await holderUser()) === 'faults-follower',
          {
            timeoutMs: 30_000,
            intervalMs: 25,
          },
        );
        takeoverMs = Math.round(performance.now() - killedAt);
      },
    });
    console.log(`# d. the follower took over ${takeoverMs} ms after the leader was SIGKILLed`);
    assert.ok(result.rotatedAtFault < N);
    // The Lease expires a lease duration after the last renewal the follower saw (made at most one retry
    // period before the kill, seen at most a jittered retry period, 2.2 s, after it).
    assert.ok(
      takeoverMs <= LEASE_DURATION_MS + 2.2 * RETRY_PERIOD_MS + 500,
      `the follower took over ${takeoverMs} ms after the kill`,
    );
    // One identity at a time: every write of the killed leader comes before the follower's first.
    const writes = audit
      .since(offset)
      .filter((e) => ['faults-leader', 'faults-follower'].includes(e.user.username) && e.verb !== 'get')
      .filter((e) => ['create', 'update', 'patch', 'delete'].includes(e.verb))
      .filter((e) => (e.responseStatus?.code ?? 0) < 300)
      .sort((x, y) => (x.requestReceivedTimestamp! < y.requestReceivedTimestamp! ? -1 : 1));
    const firstFollower = writes.findIndex((e) => e.user.username === 'faults-follower');
    assert.ok(firstFollower > 0, 'the leader wrote first, then the follower');
    const interleaved = writes.slice(firstFollower).filter((e) => e.user.username === 'faults-leader');
    assert.deepEqual(interleaved.map(describeAudit), [], 'no leader write after the follower’s first');
    const followerSecretWrites = writes.filter(
      (e) => e.user.username === 'faults-follower' && e.objectRef?.resource === 'secrets',
    );
    assert.ok(followerSecretWrites.length > 0, 'the follower finished the fan-out');
    assert.ok(
      followerSecretWrites.length <= N - result.rotatedAtFault + 32,
      `the follower rewrote ${followerSecretWrites.length} placeholders; ${N - result.rotatedAtFault} were left (+32 in flight)`,
    );
    assert.equal(await follower.stop(), 0, `clean exit on SIGTERM (log: ${follower.logPath})`);
  });
});
