// Where the operator's API credentials come from: client-node's KubeConfig
// (kubeconfig files, in-cluster token with rotation, exec and OIDC plugins).
//
// The framework base class (@dot-i/k8s-operator) loads its own copy of
// client-node at import, and the top-level copy (1.x) would be a second one:
// importing either loads its whole generated API client, and the second copy
// alone cost ~65 MB of RSS at start for one class. So the KubeConfig class is
// taken from the copy the framework resolves (already in memory); the rest of
// the operator uses client-node for types only.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { RequestOptions } from 'node:https';

/** The cluster entry of the current context (client-node 1.x spells proxy-url `proxyUrl` too). */
export interface KubeCluster {
  name?: string;
  server: string;
  skipTLSVerify?: boolean;
  tlsServerName?: string;
  proxyUrl?: string;
}

/** The part of client-node's KubeConfig the operator uses. */
export interface KubeAuth {
  loadFromFile(file: string): void;
  loadFromDefault(): void;
  getCurrentCluster(): KubeCluster | null;
  applyToHTTPSOptions(opts: RequestOptions): Promise<void>;
}

const requireHere = createRequire(import.meta.url);
const requireAsFramework = createRequire(requireHere.resolve('@dot-i/k8s-operator'));

/** A KubeConfig from the client-node copy the framework uses (no second copy loaded). */
export function newKubeConfig(): KubeAuth {
  const { KubeConfig } = requireAsFramework('@kubernetes/client-node') as { KubeConfig: new () => KubeAuth };
  return new KubeConfig();
}

/** The kubeconfig files client-node reads: `file`, else $KUBECONFIG's list, else ~/.kube/config. */
function kubeconfigFiles(file: string | undefined, env: NodeJS.ProcessEnv): string[] {
  if (file) return [file];
  if (env.KUBECONFIG) return env.KUBECONFIG.split(delimiter).filter(Boolean);
  const home = join(homedir(), '.kube', 'config');
  return existsSync(home) ? [home] : [];
}

interface RawKubeconfig {
  clusters?: Array<{ name?: unknown; cluster?: { 'proxy-url'?: unknown } }>;
}

/**
 * Loads credentials as kubectl would (`file`, else the default locations, else
 * in-cluster) and adds the current cluster's `proxy-url`, which the
 * framework's client-node copy (0.22) does not read.
 */
export function loadKubeAuth(file?: string, env: NodeJS.ProcessEnv = process.env): KubeAuth {
  const kc = newKubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  if (!cluster?.name || cluster.proxyUrl !== undefined) return kc;
  // The YAML parser client-node itself uses (already loaded with it).
  const requireAsClientNode = createRequire(requireAsFramework.resolve('@kubernetes/client-node'));
  const yaml = requireAsClientNode('js-yaml') as { load(text: string): unknown };
  for (const path of kubeconfigFiles(file, env)) {
    const raw = yaml.load(readFileSync(path, 'utf8')) as RawKubeconfig | null;
    const entry = raw?.clusters?.find((c) => c?.name === cluster.name);
    if (!entry) continue;
    const proxyUrl = entry.cluster?.['proxy-url'];
    if (proxyUrl === undefined || proxyUrl === null || proxyUrl === '') break;
    if (typeof proxyUrl !== 'string') {
      throw new Error(
        `kubeconfig ${path}: cluster ${JSON.stringify(cluster.name)} has a proxy-url that is not a string`,
      );
    }
    cluster.proxyUrl = proxyUrl;
    break;
  }
  return kc;
}
