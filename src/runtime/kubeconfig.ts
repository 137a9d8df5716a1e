// Where the operator's API credentials come from: client-node's KubeConfig
// (kubeconfig files, in-cluster token with rotation, exec and OIDC plugins).
//
// The framework base class (@dot-i/k8s-operator) loads its own copy of
// client-node at import, and the top-level copy (1.x) would be a second one:
// importing either loads its whole generated API client, and the second copy
// alone cost ~65 MB of RSS at start for one class. So the KubeConfig class is
// taken from the copy the framework resolves (already in memory); the rest of
// the operator uses client-node for types only.
import { createRequire } from 'node:module';
import type { RequestOptions } from 'node:https';

/** The part of client-node's KubeConfig the operator uses. */
export interface KubeAuth {
  loadFromFile(file: string): void;
  loadFromDefault(): void;
  getCurrentCluster(): { server: string; skipTLSVerify?: boolean; tlsServerName?: string } | null;
  applyToHTTPSOptions(opts: RequestOptions): Promise<void>;
}

const requireHere = createRequire(import.meta.url);
const requireAsFramework = createRequire(requireHere.resolve('@dot-i/k8s-operator'));

/** A KubeConfig from the client-node copy the framework uses (no second copy loaded). */
export function newKubeConfig(): KubeAuth {
  const { KubeConfig } = requireAsFramework('@kubernetes/client-node') as { KubeConfig: new () => KubeAuth };
  return new KubeConfig();
}
