import { KubeClient, type ResourceType } from './kube-client.js';
import type { KubeAuth } from './kubeconfig.js';

/** Credentials for a test API server on plain HTTP: no kubeconfig, a bearer token when `token` is given. */
export function plainHttpAuth(server: string, token?: () => string): KubeAuth {
  return {
    loadFromFile: () => undefined,
    loadFromDefault: () => undefined,
    getCurrentCluster: () => ({ server }),
    applyToHTTPSOptions: async (opts) => {
      if (token) opts.headers = { Authorization: `Bearer ${token()}` };
    },
  };
}

/** A client of a test API server on plain HTTP, without client-side rate limit. */
export function plainHttpClient(server: string, timeoutMs = 5000): Promise<KubeClient> {
  return KubeClient.create(plainHttpAuth(server), { qps: 0, burst: 1, timeoutMs, userAgent: 'test' });
}

/** ConfigMaps: the core resource tests watch and write when the kind does not matter. */
export const ConfigMaps: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
};

/** The value of one sample (`name{labels}` exactly as exposed) in Prometheus text, or undefined when absent. */
export function metricSample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(' ');
    if (line.slice(0, at) === series) return Number(line.slice(at + 1));
  }
  return undefined;
}
