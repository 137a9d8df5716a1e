// 410 Gone during a rotation of one exported credential to 200 placeholders:
// the operator's connections are cut mid-fan-out; while it is away a second
// SecretExport is deleted (its credential must leave every placeholder),
// placeholders and whole namespaces are deleted, new namespaces with
// placeholders are created, and etcd is compacted past every resourceVersion
// the operator saw. With the watch cache off the API server serves watches
// from etcd, so the operator's resumed watches get 410 Gone: it must relist,
// act on the deletes it never saw as events, fill the new placeholders, and
// settle.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import {
  FANOUT_REGISTRY,
  OperatorProcess,
  Namespaces,
  SecretExports,
  Secrets,
  compactEtcd,
  createFanout,
  dockerConfigJson,
  killAllOperators,
  kubeconfigVia,
  runRotationCase,
  sleep,
  type Fanout,
} from '../harness/faults.js';
import { AuditLog } from '../harness/operator-env.js';
import { TcpProxy } from '../harness/tcp-proxy.js';

const USER = 'faults-operator';
const N = 200;
const OTHER_REGISTRY = 'other.faults.test';
const SLOW_FANOUT = ['--kube-api-qps=100', '--kube-api-burst=10'];

let cluster: TestCluster;
let audit: AuditLog;
let proxy: TcpProxy;
let fanout: Fanout;
let operator: OperatorProcess;

before(async () => {
  cluster = await startTestCluster(
    { auditLog: true, controllerManager: true, apiserverArgs: ['--watch-cache=false'] },
    [{ name: USER, token: randomBytes(24).toString('hex'), groups: ['system:masters'] }],
  );
  audit = new AuditLog(cluster.cp.auditLogPath!);
  proxy = new TcpProxy('127.0.0.1', Number(new URL(cluster.cp.server).port));
  await proxy.start();
  await cluster.kubectl(['create', 'namespace', 'regcred-operator']);
  fanout = await createFanout(cluster.client, { prefix: 'gone', count: N, password: 'initial' });
  // A second exported credential, for a different registry, in every placeholder too.
  await cluster.client.create<V1Secret>(Secrets, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'other', namespace: fanout.sourceNamespace },
    type: 'kubernetes.io/dockerconfigjson',
    data: {
      '.dockerconfigjson': Buffer.from(
        dockerConfigJson({ [OTHER_REGISTRY]: { username: 'other', password: 'other-pw' } }),
      ).toString('base64'),
    },
  });
  await cluster.client.create(SecretExports, {
    apiVersion: 'secretgen.carvel.dev/v1alpha1',
    kind: 'SecretExport',
    metadata: { name: 'other', namespace: fanout.sourceNamespace },
    spec: { toNamespaces: ['*'] },
  });
  operator = await OperatorProcess.start(cluster.cp, {
    user: USER,
    kubeconfig: kubeconfigVia(cluster.cp, USER, `https://127.0.0.1:${proxy.port}`),
    args: ['--controllers', 'secretexport,placeholder', ...SLOW_FANOUT],
  });
  await operator.waitReady();
  await fanout.waitConverged({ [FANOUT_REGISTRY]: 'initial', [OTHER_REGISTRY]: 'other-pw' });
});

after(async () => {
  await killAllOperators();
  await proxy?.stop();
  await cluster?.stop();
});

describe('410 Gone from etcd compaction during a rotation to 200 placeholders', () => {
  test('e. deletes and creates while the operator is cut off, etcd compacted: it relists, drops the deleted export’s credential, fills new placeholders', async () => {
    const deletedPlaceholders = fanout.namespaces.slice(0, 10);
    const deletedNamespaces = fanout.namespaces.slice(10, 20);
    let added: string[] = [];
    let revision = 0;
    const relistsBefore = relistLines();
    await runRotationCase({
      label: 'e. 410 Gone after compaction, deletes in the gap',
      audit,
      users: [USER],
      fanout,
      changed: N - 20 + 5,
      // The deleted export's credential leaves every placeholder; the rotated one holds the new password.
      expected: (password) => ({ [FANOUT_REGISTRY]: password }),
      // Two changes reach each placeholder (the rotation and the revocation); after the relist they may
      // arrive in two writes, as the SecretExport and Secret caches are refilled one after the other.
      maxAcceptedPerPlaceholder: 3,
      // The namespace controller finishes the deletes; the export's status then counts fewer namespaces.
      async settled() {
        for (const ns of deletedNamespaces)
          if (await cluster.client.get(Namespaces, undefined, ns)) return false;
        // "*" reaches every namespace (but perhaps the export's own): the count has caught up with the deletes.
        const all = (await cluster.client.list(Namespaces)).items.length;
        const reached = (
          await cluster.client.get<{ metadata?: object; status?: { reachedNamespaceCount?: number } }>(
            SecretExports,
            fanout.sourceNamespace,
            'creds',
          )
        )?.status?.reachedNamespaceCount;
        return reached === all || reached === all - 1;
      },
      async fault() {
        proxy.cut();
        await cluster.client.delete(SecretExports, fanout.sourceNamespace, 'other');
        for (const ns of deletedPlaceholders) await cluster.client.delete(Secrets, ns, 'pull');
        for (const ns of deletedNamespaces)
          await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
        fanout.namespaces.splice(0, 20);
        added = await fanout.addNamespaces(5);
        revision = await compactEtcd(cluster.cp);
        await sleep(500);
        proxy.restore();
      },
    });
    console.log(`# e. etcd compacted at revision ${revision}`);
    assert.ok(
      relistLines() > relistsBefore,
      `the operator relisted after 410 Gone (log: ${operator.logPath})`,
    );
    for (const ns of deletedPlaceholders)
      assert.equal(await cluster.client.get(Secrets, ns, 'pull'), undefined, `${ns}/pull stays deleted`);
    assert.equal(added.length, 5);
    assert.ok(operator.alive);
  });
});

/** Operator log lines about relisting (after a watch answered 410 Gone). */
function relistLines(): number {
  return operator.lines().filter((l) => /relist/i.test(l.message)).length;
}
