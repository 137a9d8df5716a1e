import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../src/runtime/kube-client.js';
import {
  startControlPlane,
  type ControlPlane,
  type ControlPlaneOptions,
  type User,
} from './control-plane.js';

const execFileAsync = promisify(execFile);
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface TestCluster {
  cp: ControlPlane;
  client: KubeClient;
  kubectl(args: string[], input?: string): Promise<string>;
  /** kubectl that resolves to {code, stdout, stderr} instead of throwing. */
  kubectlResult(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  apply(yaml: string): Promise<string>;
  stop(): Promise<void>;
}

export async function clientFor(kubeconfig: string): Promise<KubeClient> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return KubeClient.create(kc, { qps: 0, burst: 1, timeoutMs: 30_000, userAgent: 'regcred-e2e' });
}

/** Starts a control plane, installs the CRDs of crds/, and returns helpers bound to it. */
export async function startTestCluster(
  opts: ControlPlaneOptions & { installCrds?: boolean } = {},
  users: User[] = [],
): Promise<TestCluster> {
  const cp = await startControlPlane(
    {
      log: (l) => console.log(`# ${l}`),
      crdsDir: opts.installCrds !== false ? join(REPO_ROOT, 'crds') : undefined,
      ...opts,
    },
    users,
  );
  const client = await clientFor(cp.kubeconfig);
  const kubectlResult = (args: string[], input?: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolveResult) => {
      const child = execFile(
        cp.kubectlPath,
        ['--kubeconfig', cp.kubeconfig, ...args],
        { maxBuffer: 32 * 1024 * 1024, timeout: 120_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolveResult({ code, stdout, stderr });
        },
      );
      if (input !== undefined) child.stdin!.end(input);
    });
  const kubectl = async (args: string[], input?: string) => {
    const r = await kubectlResult(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  };
  const cluster: TestCluster = {
    cp,
    client,
    kubectl,
    kubectlResult,
    apply: (yaml) => kubectl(['apply', '-f', '-'], yaml),
    async stop() {
      client.close();
      await cp.stop();
    },
  };
  return cluster;
}

export { execFileAsync };
