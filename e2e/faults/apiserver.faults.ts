// API server faults during a rotation of one exported credential to 200
// placeholders: kube-apiserver stopped for 10 s and restarted (same etcd,
// port and certificate), restarted with a new serving certificate from the
// same CA, every TCP connection of the operator (its watches included) cut
// by a loopback proxy, and 429 storms from a tightened API Priority and
// Fairness config. Each case ends with every placeholder holding the new
// value, a bounded number of operator writes (audit log), and no write in the
// 10 s after convergence.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import {
  FANOUT_REGISTRY,
  OperatorProcess,
  createFanout,
  cutConnections,
  grantClusterAdmin,
  killAllOperators,
  kubeconfigVia,
  loadAsUser,
  runRotationCase,
  sleep,
  tightenFlowControl,
  type Fanout,
  type LoadResult,
  type RotationCaseOptions,
} from '../harness/faults.js';
import { AuditLog } from '../harness/operator-env.js';
import { TcpProxy } from '../harness/tcp-proxy.js';
import { waitFor } from '../harness/wait.js';

const USER = 'faults-operator';
const N = 200;
// A client-side limit that makes the 200-placeholder fan-out last ~2 s, so each fault lands inside it.
const SLOW_FANOUT = ['--kube-api-qps=100', '--kube-api-burst=10'];
const CONTROLLERS = ['--controllers', 'secretexport,placeholder'];

let cluster: TestCluster;
let audit: AuditLog;
let proxy: TcpProxy;
let fanout: Fanout;
let operator: OperatorProcess;

const startOperator = async (args: string[]) => {
  operator = await OperatorProcess.start(cluster.cp, {
    user: USER,
    // Through the proxy, so a test can cut the operator's connections (and only the operator's).
    kubeconfig: kubeconfigVia(cluster.cp, USER, `https://127.0.0.1:${proxy.port}`),
    args: [...CONTROLLERS, ...args],
  });
  await operator.waitReady();
};

const rotationCase = (
  label: string,
  fault: RotationCaseOptions['fault'],
  extra: Partial<RotationCaseOptions> = {},
) => runRotationCase({ label, audit, users: [USER], fanout, fault, ...extra });

/** The SHA-256 fingerprint of the certificate the API server presents, verified against the kubeconfig's CA. */
function presentedFingerprint(): Promise<string> {
  const { port } = new URL(cluster.cp.server);
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port: Number(port), ca: readFileSync(cluster.cp.caFile), servername: undefined },
      () => {
        const cert = socket.getPeerX509Certificate();
        socket.destroy();
        if (!cert) reject(new Error('no peer certificate'));
        else resolve(cert.fingerprint256);
      },
    );
    socket.once('error', reject);
  });
}

before(async () => {
  cluster = await startTestCluster({ auditLog: true, controllerManager: true, servingCa: true }, [
    // Not in system:masters (exempt from API Priority and Fairness): cluster-admin is bound below.
    { name: USER, token: randomBytes(24).toString('hex'), groups: [] },
  ]);
  audit = new AuditLog(cluster.cp.auditLogPath!);
  await grantClusterAdmin(cluster, USER);
  proxy = new TcpProxy('127.0.0.1', Number(new URL(cluster.cp.server).port));
  await proxy.start();
  await cluster.kubectl(['create', 'namespace', 'regcred-operator']);
  fanout = await createFanout(cluster.client, { prefix: 'api', count: N, password: 'initial' });
  await startOperator(SLOW_FANOUT);
  await fanout.waitConverged({ [FANOUT_REGISTRY]: 'initial' });
});

after(async () => {
  await killAllOperators();
  await proxy?.stop();
  await cluster?.stop();
});

describe('API server faults during a rotation to 200 placeholders', () => {
  test('a. kube-apiserver stopped for 10 s mid-rotation and restarted (same etcd, port and certificate)', async () => {
    const certBefore = presentedFingerprint();
    await rotationCase('a. apiserver stopped 10 s', async () => {
      await cluster.cp.stopApiserver();
      await sleep(10_000);
      await cluster.cp.startApiserver();
    });
    assert.equal(await presentedFingerprint(), await certBefore, 'the same serving certificate');
    assert.ok(operator.alive, `the operator survived the outage (log: ${operator.logPath})`);
  });

  test('b. kube-apiserver restarted with a new serving certificate from the same CA', async () => {
    const certBefore = await presentedFingerprint();
    await rotationCase('b. apiserver new serving cert', async () => {
      await cluster.cp.stopApiserver();
      await cluster.cp.startApiserver({ newServingCert: true });
    });
    const now = await presentedFingerprint();
    assert.notEqual(now, certBefore, 'the API server presents a new certificate');
    assert.equal(now, cluster.cp.servingCertFingerprint());
    assert.ok(operator.alive, `the operator survived the restart (log: ${operator.logPath})`);
  });

  test('f. the operator’s TCP connections (watches included) cut by a loopback proxy mid-rotation', async () => {
    let cutWhileOpen = 0;
    await rotationCase('f. watch connections cut', async () => {
      cutWhileOpen = proxy.openConnections;
      // Three cuts: the second and third land on reconnected watches.
      await cutConnections(proxy, { times: 3, downMs: 500, upMs: 700 });
    });
    assert.ok(cutWhileOpen > 0, 'the operator had connections open when they were cut');
    assert.ok(operator.alive, `the operator survived the cuts (log: ${operator.logPath})`);
  });

  test('g. 429 storms from a tightened API Priority and Fairness config: converges without a hot loop', async () => {
    // The client-side defaults this time: the API server's flow control is what pushes back.
    await operator.stop();
    await startOperator([]);
    const flowControl = await tightenFlowControl(cluster, USER);
    try {
      // The config is applied asynchronously; wait until the operator's user is really limited.
      await waitFor(
        'the tightened priority level to answer 429',
        async () => {
          const probe = loadAsUser(cluster.cp, USER, { concurrency: 24 });
          await sleep(300);
          return (await probe.stop()).throttled > 0;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      // The storm: other clients of the same user saturate its priority level for 6 s from the first
      // write of the fan-out on; the operator's requests queue behind them or get 429 with Retry-After.
      let load: LoadResult = { requests: 0, throttled: 0 };
      const result = await rotationCase(
        'g. 429 storm (APF)',
        async () => {
          const storm = loadAsUser(cluster.cp, USER, { concurrency: 16 });
          await sleep(6000);
          load = await storm.stop();
        },
        {
          faultAfterRotated: 0,
          // The server's Retry-After grows to 16-32 s during the storm; honouring it to the letter converged
          // 25-53 s after the storm. A request served after the storm releases the throttled ones (one per
          // served request), so recovery takes ~1-2 s; a stalled chain still ends with the shortest wait.
          maxRecoveryMs: 20_000,
        },
      );
      console.log(`# g. the storm's own requests: ${load.requests}, ${load.throttled} answered 429`);
      assert.ok(load.throttled > 0, 'the priority level was saturated');
      assert.ok(result.counts.throttled > 0, 'the operator’s writes met 429s');
    } finally {
      await flowControl.remove();
    }
  });
});
