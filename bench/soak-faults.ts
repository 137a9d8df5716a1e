// Faults the soak injects at random, built on the fault suite's injectors
// (e2e/harness/faults.ts): each one breaks something the operator depends on
// for a while, then puts it back, as a real cluster would.
import type { TestCluster } from '../e2e/harness/cluster.js';
import {
  compactEtcd,
  cutConnections,
  tightenFlowControl,
  type HttpsFaultProxy,
  type RegistryFaultMode,
} from '../e2e/harness/faults.js';
import type { TcpProxy } from '../e2e/harness/tcp-proxy.js';
import type { OperatorProcess } from './soak-process.js';
import type { Random } from './soak-model.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FaultContext {
  cluster: TestCluster;
  /** The operator reaches the API server only through this proxy. */
  apiProxy: TcpProxy;
  /** The operator's fetches reach the registry only through this proxy. */
  registryProxy: HttpsFaultProxy;
  operator: OperatorProcess;
  /** The operator's API user (not in system:masters, so flow control applies to it). */
  operatorUser: string;
  rng: Random;
  /** A rotation of the credential exported to "*": every placeholder must be rewritten and every App fetch again. */
  rotateRegistryCredential(): Promise<void>;
  /** Churn steps for faults that must see changes during a gap: a delete of each kind first, then random ones. */
  churnBurst(steps: number): Promise<void>;
}

export interface Fault {
  name: string;
  /** Runs the whole fault (break, hold, repair); resolves to a one-line detail for the report. */
  run(ctx: FaultContext): Promise<string>;
}

/** The registry proxy in `mode` for 20-40 s, with a rotation during it so every App fetches (and fails). */
const registryFault = (name: string, mode: RegistryFaultMode): Fault => ({
  name,
  async run(ctx) {
    const seconds = ctx.rng.int(20, 40);
    await ctx.registryProxy.setMode(mode);
    try {
      await sleep(1000);
      await ctx.rotateRegistryCredential();
      await sleep(seconds * 1000 - 1000);
    } finally {
      await ctx.registryProxy.setMode('pass');
    }
    return `registry ${mode} for ${seconds} s, a rotation during it`;
  },
});

export const FAULTS: Fault[] = [
  {
    name: 'operator-sigkill',
    async run(ctx) {
      // Mid-fan-out: the rotation is written, the operator dies while applying it.
      await ctx.rotateRegistryCredential();
      await sleep(ctx.rng.int(0, 300));
      await ctx.operator.kill('SIGKILL');
      const down = ctx.rng.int(500, 5000);
      await sleep(down);
      await ctx.operator.start();
      return `rotation, SIGKILL, restarted after ${down} ms (operator #${ctx.operator.incarnation})`;
    },
  },
  {
    name: 'watch-cut',
    async run(ctx) {
      const open = ctx.apiProxy.openConnections;
      await cutConnections(ctx.apiProxy, { times: 1, downMs: 200 });
      return `cut ${open} connections to the API server`;
    },
  },
  {
    name: 'apiserver-unreachable',
    async run(ctx) {
      const seconds = ctx.rng.int(8, 15);
      ctx.apiProxy.cut();
      try {
        await sleep(2000);
        await ctx.rotateRegistryCredential();
        await sleep(seconds * 1000 - 2000);
      } finally {
        ctx.apiProxy.restore();
      }
      return `API server unreachable for ${seconds} s (connections cut, new ones refused), a rotation during it`;
    },
  },
  {
    name: 'apiserver-restart',
    async run(ctx) {
      await ctx.rotateRegistryCredential();
      await ctx.cluster.cp.stopApiserver();
      await sleep(10_000);
      await ctx.cluster.cp.startApiserver();
      return 'rotation, kube-apiserver stopped 10 s and started again (same etcd)';
    },
  },
  {
    name: 'apiserver-new-certificate',
    async run(ctx) {
      await ctx.rotateRegistryCredential();
      await ctx.cluster.cp.stopApiserver();
      await ctx.cluster.cp.startApiserver({ newServingCert: true });
      return `rotation, kube-apiserver restarted with a new serving certificate (${ctx.cluster.cp.servingCertFingerprint().slice(0, 16)}…)`;
    },
  },
  {
    name: 'compaction-410',
    async run(ctx) {
      ctx.apiProxy.cut();
      let revision: number;
      try {
        // Changes, deletes among them, while the operator cannot watch; then that history is compacted away.
        await ctx.churnBurst(8);
        await ctx.rotateRegistryCredential();
        await sleep(1000);
        revision = await compactEtcd(ctx.cluster.cp);
      } finally {
        ctx.apiProxy.restore();
      }
      return `watches cut, 8 churn steps (deletes among them) + a rotation, etcd compacted at revision ${revision}`;
    },
  },
  {
    name: 'api-429-storm',
    async run(ctx) {
      const seconds = ctx.rng.int(20, 40);
      const fault = await tightenFlowControl(ctx.cluster, ctx.operatorUser);
      try {
        await sleep(2000); // the API server picks up flow-control objects within a second or so
        await ctx.rotateRegistryCredential();
        await sleep(seconds * 1000 - 2000);
      } finally {
        await fault.remove();
      }
      return `operator's flow limited to 1 concurrency share and a queue of 1 for ${seconds} s, a rotation during it`;
    },
  },
  registryFault('registry-down', 'down'),
  registryFault('registry-500', 'status500'),
  registryFault('registry-slow', 'slow'),
  registryFault('registry-wrong-ca', 'wrongCa'),
];
