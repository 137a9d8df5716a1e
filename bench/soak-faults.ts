// Faults the soak injects at random: each one breaks something the operator
// depends on for a while and then puts it back, as a real cluster would.
import { readFileSync, readdirSync } from 'node:fs';
import type { ControlPlane } from '../e2e/harness/control-plane.js';
import type { TcpProxy } from '../e2e/harness/tcp-proxy.js';
import type { KubeClient, ResourceType } from '../src/runtime/kube-client.js';
import type { OperatorProcess } from './soak-process.js';
import type { Random } from './soak-model.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FaultContext {
  cp: ControlPlane;
  admin: KubeClient;
  /** The operator reaches the API server only through this proxy. */
  apiProxy: TcpProxy;
  /** The operator (and Apps' fetches) reach the registry only through this proxy. */
  registryProxy: TcpProxy;
  operator: OperatorProcess;
  /** The operator's API user (the 429 storm's FlowSchema matches it). */
  operatorUser: string;
  rng: Random;
  log: (line: string) => void;
  /** Churn steps run while a fault is on (e.g. a rotation so every placeholder must be rewritten). */
  rotateRegistryCredential(): Promise<void>;
  /** A few deletes and changes, for faults that must see changes happen during a gap. */
  churnBurst(steps: number): Promise<void>;
}

export interface Fault {
  name: string;
  /** Runs the whole fault (break, hold, repair); resolves to a one-line detail for the report. */
  run(ctx: FaultContext): Promise<string>;
}

const FlowSchemas: ResourceType = {
  group: 'flowcontrol.apiserver.k8s.io',
  version: 'v1',
  plural: 'flowschemas',
  kind: 'FlowSchema',
  namespaced: false,
};
const PriorityLevels: ResourceType = {
  group: 'flowcontrol.apiserver.k8s.io',
  version: 'v1',
  plural: 'prioritylevelconfigurations',
  kind: 'PriorityLevelConfiguration',
  namespaced: false,
};

/** The client URL of the control plane's etcd, read from its command line. */
export function etcdEndpoint(cp: ControlPlane): string {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!args[0]?.endsWith('/etcd') || !args.includes(`${cp.dir}/etcd`)) continue;
    const url = args[args.indexOf('--listen-client-urls') + 1];
    if (url) return url;
  }
  throw new Error(`no etcd process with data dir ${cp.dir}/etcd`);
}

/** Compacts etcd at its current revision (physical), so any older resourceVersion answers 410 Gone. */
export async function compactEtcd(cp: ControlPlane): Promise<number> {
  const base = etcdEndpoint(cp);
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as { header?: { revision?: string } };
  };
  const range = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') });
  const revision = Number(range.header?.revision);
  await post('/v3/kv/compaction', { revision: String(revision), physical: true });
  return revision;
}

export const FAULTS: Fault[] = [
  {
    name: 'operator-sigkill',
    async run(ctx) {
      await ctx.operator.kill('SIGKILL');
      const down = ctx.rng.int(500, 5000);
      await sleep(down);
      await ctx.operator.start();
      return `SIGKILL, restarted after ${down} ms (incarnation ${ctx.operator.incarnation})`;
    },
  },
  {
    name: 'watch-cut',
    async run(ctx) {
      const open = ctx.apiProxy.openConnections;
      ctx.apiProxy.cut();
      await sleep(200);
      ctx.apiProxy.restore();
      return `cut ${open} connections to the API server`;
    },
  },
  {
    name: 'apiserver-unreachable',
    async run(ctx) {
      const seconds = ctx.rng.int(8, 15);
      ctx.apiProxy.cut();
      await sleep(2000);
      await ctx.rotateRegistryCredential();
      await sleep(seconds * 1000 - 2000);
      ctx.apiProxy.restore();
      return `API server unreachable for ${seconds} s (connections cut, new ones refused), a rotation during it`;
    },
  },
  {
    name: 'compaction-410',
    async run(ctx) {
      ctx.apiProxy.cut();
      // Changes, deletes among them, while the operator cannot watch; then history is compacted away.
      await ctx.churnBurst(6);
      await ctx.rotateRegistryCredential();
      await sleep(1000);
      const revision = await compactEtcd(ctx.cp);
      ctx.apiProxy.restore();
      return `watches cut, 6 churn steps + a rotation, etcd compacted at revision ${revision}`;
    },
  },
  {
    name: 'api-429-storm',
    async run(ctx) {
      const seconds = ctx.rng.int(20, 40);
      await ctx.admin.create(PriorityLevels, {
        apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
        kind: 'PriorityLevelConfiguration',
        metadata: { name: 'soak-tight' },
        spec: {
          type: 'Limited',
          limited: { nominalConcurrencyShares: 1, lendablePercent: 0, limitResponse: { type: 'Reject' } },
        },
      });
      await ctx.admin.create(FlowSchemas, {
        apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
        kind: 'FlowSchema',
        metadata: { name: 'soak-operator' },
        spec: {
          priorityLevelConfiguration: { name: 'soak-tight' },
          matchingPrecedence: 100,
          distinguisherMethod: { type: 'ByUser' },
          rules: [
            {
              subjects: [{ kind: 'User', user: { name: ctx.operatorUser } }],
              resourceRules: [
                { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true },
              ],
              nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
            },
          ],
        },
      });
      try {
        await sleep(2000); // the API server picks up flow-control objects within a second or so
        await ctx.rotateRegistryCredential();
        await sleep(seconds * 1000 - 2000);
      } finally {
        await ctx.admin.delete(FlowSchemas, undefined, 'soak-operator');
        await ctx.admin.delete(PriorityLevels, undefined, 'soak-tight');
      }
      return `operator limited to 1 concurrency share, rejecting, for ${seconds} s, a rotation during it`;
    },
  },
  {
    name: 'registry-down',
    async run(ctx) {
      const seconds = ctx.rng.int(20, 40);
      ctx.registryProxy.cut();
      await sleep(1000);
      await ctx.rotateRegistryCredential(); // every App fetches again, and fails
      await sleep(seconds * 1000 - 1000);
      ctx.registryProxy.restore();
      return `registry unreachable for ${seconds} s, a rotation during it (Apps fetch again and fail)`;
    },
  },
];
