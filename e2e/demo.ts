// npm run demo [-- --once]
// Starts a local control plane, installs the CRDs, runs the operator against
// it, applies the examples of the Carvel docs page "Authenticating to Private
// Registries", and shows what the operator did. Ctrl-C stops everything
// (--once stops after the walkthrough).
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import { defaultConfig } from '../src/config.js';
import { startOperator } from '../src/main.js';
import { createLogger } from '../src/runtime/logger.js';
import { SecretsResource } from '../src/shared-informers.js';
import { REPO_ROOT, startTestCluster } from './harness/cluster.js';
import { waitFor } from './harness/wait.js';

const once = process.argv.includes('--once');
const say = (line = '') => console.log(line);
const section = (title: string) => say(`\n=== ${title}`);

/** Registry keys and status of a placeholder; never its credentials. */
function describePlaceholder(secret: V1Secret): string {
  const raw = Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8');
  let registries: string[];
  try {
    registries = Object.keys((JSON.parse(raw) as { auths?: Record<string, unknown> }).auths ?? {});
  } catch {
    registries = ['(unparsable)'];
  }
  const status = secret.metadata?.annotations?.['secretgen.carvel.dev/status'] ?? '(none yet)';
  return `registries: [${registries.join(', ')}]\n    status annotation: ${status}`;
}

async function main(): Promise<void> {
  section('Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)');
  const cluster = await startTestCluster({ auditLog: false });
  say(`kube-apiserver ready at ${cluster.cp.server} after ${cluster.cp.startMs} ms; CRDs of crds/ installed`);

  const logDir = mkdtempSync(join(tmpdir(), 'regcred-demo-'));
  const logFile = join(logDir, 'operator.log');
  const logStream = createWriteStream(logFile);
  const config = defaultConfig({ kubeconfig: cluster.cp.kubeconfig, healthPort: 0, healthHost: '127.0.0.1' });
  section('Starting the operator (all controllers, one process)');
  const operator = await startOperator(config, createLogger('info', logStream));
  const health = operator.manager.healthAddress();
  say(`operator ready; health on http://127.0.0.1:${health?.port}/readyz; JSON logs in ${logFile}`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    section('Stopping');
    await operator.stop();
    await cluster.stop();
    logStream.end();
    rmSync(logDir, { recursive: true, force: true });
    say('operator, control plane and temporary files are gone');
  };
  process.on('SIGINT', () => void stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(0)));

  try {
    section('Applying the docs page examples (e2e/fixtures/seed-examples.yaml)');
    say(await cluster.apply(readFileSync(join(REPO_ROOT, 'e2e', 'fixtures', 'seed-examples.yaml'), 'utf8')));

    section('The placeholder default/reg-creds is filled from the export in secrets-ns');
    const filled = await waitFor('placeholder filled', async () => {
      const s = await cluster.client.get<V1Secret>(SecretsResource, 'default', 'reg-creds');
      return s?.metadata?.annotations?.['secretgen.carvel.dev/status']?.includes('secrets-ns/reg-creds')
        ? s
        : undefined;
    });
    say(`  default/reg-creds ${describePlaceholder(filled)}`);

    section('A namespace created afterwards gets the credentials too');
    await cluster.apply(`apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Secret
metadata:
  name: pull-creds
  namespace: team-a
  annotations: {secretgen.carvel.dev/image-pull-secret: ""}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: e30K}
`);
    const teamA = await waitFor('team-a placeholder filled', async () => {
      const s = await cluster.client.get<V1Secret>(SecretsResource, 'team-a', 'pull-creds');
      return s?.metadata?.annotations?.['secretgen.carvel.dev/status']?.includes('secrets-ns/reg-creds')
        ? s
        : undefined;
    });
    say(`  team-a/pull-creds ${describePlaceholder(teamA)}`);

    section('kubectl get secretexports,secretimports -A');
    say(await cluster.kubectl(['get', 'secretexports,secretimports', '-A']));
    section('kubectl get pkgr,pkgi,apps,pkg -A');
    say(await cluster.kubectl(['get', 'pkgr,pkgi,apps,pkg', '-A']));
    section('Secrets and their placeholder status');
    say(
      await cluster.kubectl([
        'get',
        'secrets',
        '-A',
        '-o',
        'custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,TYPE:.type,STATUS:.metadata.annotations.secretgen\\.carvel\\.dev/status',
      ]),
    );

    section('Try it yourself');
    say(`  export KUBECONFIG=${cluster.cp.kubeconfig}`);
    say(`  ${cluster.cp.kubectlPath} get secretexports -A`);
    say(`  ${cluster.cp.kubectlPath} get secret -n default reg-creds -o yaml`);
    if (once) {
      await stop();
      return;
    }
    say('\nPress Ctrl-C to stop the operator and the control plane.');
    await new Promise(() => undefined);
  } catch (err) {
    console.error(err);
    await stop();
    process.exit(1);
  }
}

await main();
