// Each install profile's release manifest (deploy/release/) really applied to
// a fresh control plane, then the operator run out of cluster with the
// profile's Deployment flags and its ServiceAccount's token, under the
// profile's RBAC only. The secretgen profile goes beside stand-ins for
// kapp-controller's CRDs and must leave them exactly as they were.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { V1Secret } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { parseConfig, type OperatorConfig } from '../src/config.js';
import { freePort } from './harness/control-plane.js';
import { startOperator, type RunningOperator } from '../src/main.js';
import { createLogger } from '../src/runtime/logger.js';
import { SecretsResource } from '../src/shared-informers.js';
import { REPO_ROOT, startTestCluster, type TestCluster } from './harness/cluster.js';
import { waitFor } from './harness/wait.js';

const NAMESPACE = 'regcred-operator';
const releaseManifest = (profile: string) =>
  join(REPO_ROOT, 'deploy', 'release', `regcred-operator-${profile}.yaml`);

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { template?: { spec: { containers: Array<{ args: string[] }> } } };
}
const manifestObjects = (profile: string) =>
  parseAllDocuments(readFileSync(releaseManifest(profile), 'utf8'))
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);

/** The flags the profile's Deployment passes, as the operator parses them. */
function deploymentConfig(profile: string): OperatorConfig {
  const deployment = manifestObjects(profile).find((o) => o.kind === 'Deployment')!;
  const config = parseConfig(deployment.spec!.template!.spec.containers[0]!.args, {
    POD_NAMESPACE: NAMESPACE,
  });
  assert.ok(!('help' in config));
  return config;
}

const resourceOf: Record<string, string> = {
  Namespace: 'namespace',
  CustomResourceDefinition: 'customresourcedefinition',
  ServiceAccount: 'serviceaccount',
  ClusterRole: 'clusterrole',
  ClusterRoleBinding: 'clusterrolebinding',
  Role: 'role',
  RoleBinding: 'rolebinding',
  Deployment: 'deployment',
  Service: 'service',
  PodDisruptionBudget: 'poddisruptionbudget',
};

/** Applies the release manifest and checks every object in it exists on the API server. */
async function applyRelease(cluster: TestCluster, profile: string): Promise<Manifest[]> {
  const out = await cluster.kubectl(['apply', '-f', releaseManifest(profile)]);
  const objects = manifestObjects(profile);
  for (const o of objects) {
    const resource = resourceOf[o.kind];
    assert.ok(resource, `unexpected kind ${o.kind} in the ${profile} manifest`);
    assert.match(out, new RegExp(`${resource}[^ ]*/${o.metadata.name} created`), out);
    const args = ['get', resource, o.metadata.name, '-o', 'name'];
    if (o.metadata.namespace) args.push('-n', o.metadata.namespace);
    assert.ok((await cluster.kubectl(args)).trim(), `${o.kind} ${o.metadata.name} exists`);
  }
  await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  return objects;
}

/** A kubeconfig that authenticates as the profile's ServiceAccount (a token from the TokenRequest API). */
async function serviceAccountKubeconfig(cluster: TestCluster, file: string): Promise<string> {
  const token = (await cluster.kubectl(['create', 'token', 'regcred-operator', '-n', NAMESPACE])).trim();
  const kubeconfig = join(cluster.cp.dir, file);
  writeFileSync(
    kubeconfig,
    readFileSync(cluster.cp.kubeconfig, 'utf8')
      .replace(/token: .*/, `token: ${token}`)
      .replace(/\badmin\b/g, 'sa'),
  );
  const whoami = await cluster.kubectl([
    '--kubeconfig',
    kubeconfig,
    'auth',
    'whoami',
    '-o',
    'jsonpath={.status.userInfo.username}',
  ]);
  assert.equal(whoami, `system:serviceaccount:${NAMESPACE}:regcred-operator`);
  return kubeconfig;
}

async function runOperator(
  config: OperatorConfig,
  kubeconfig: string,
): Promise<{ operator: RunningOperator; log: () => string }> {
  let log = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      log += chunk.toString();
      cb();
    },
  });
  // The Pod webhook of a profile that has it, on a free loopback port (9443 may be taken here).
  const webhookPort = config.webhookPort > 0 ? await freePort() : 0;
  const operator = await startOperator(
    {
      ...config,
      kubeconfig,
      healthPort: 0,
      healthHost: '127.0.0.1',
      logLevel: 'info',
      webhookPort,
      ...(webhookPort ? { webhookUrl: `https://127.0.0.1:${webhookPort}/mutate-pods` } : {}),
    },
    createLogger('info', sink),
  );
  return { operator, log: () => log };
}

const STAND_IN = 'e2e.regcred.dev/stand-in';
const KAPP_CONTROLLER_CRDS = [
  'kappctrl.k14s.io_apps.yaml',
  'packaging.carvel.dev_packageinstalls.yaml',
  'packaging.carvel.dev_packagerepositories.yaml',
  'data.packaging.carvel.dev_packages.yaml',
  'data.packaging.carvel.dev_packagemetadatas.yaml',
];

const SHARED = `
apiVersion: v1
kind: Namespace
metadata: {name: team-src}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-app}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: team-src}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"registry.profile.test":{"username":"robot","password":"pw"}}}'
---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata: {name: creds, namespace: team-src}
spec: {toNamespaces: ["*"]}
---
apiVersion: v1
kind: Secret
metadata:
  name: pull
  namespace: team-app
  annotations: {secretgen.carvel.dev/image-pull-secret: ""}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: e30K}
---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretImport
metadata: {name: creds, namespace: team-app}
spec: {fromNamespace: team-src}
`;

async function expectSharingWorks(cluster: TestCluster): Promise<void> {
  await cluster.apply(SHARED);
  const placeholder = await waitFor('placeholder team-app/pull filled', async () => {
    const s = await cluster.client.get<V1Secret>(SecretsResource, 'team-app', 'pull');
    const text = Buffer.from(s?.data?.['.dockerconfigjson'] ?? '', 'base64').toString();
    return text.includes('registry.profile.test') ? s : undefined;
  });
  assert.match(placeholder.metadata!.annotations!['secretgen.carvel.dev/status']!, /team-src\/creds/);
  await waitFor('SecretImport team-app/creds copied its Secret', async () =>
    cluster.client.get<V1Secret>(SecretsResource, 'team-app', 'creds'),
  );
  const exportStatus = await waitFor('SecretExport status written', async () => {
    const out = await cluster.kubectl([
      'get',
      'secretexport',
      '-n',
      'team-src',
      'creds',
      '-o',
      'jsonpath={.status.friendlyDescription}',
    ]);
    return out || undefined;
  });
  assert.equal(exportStatus, 'Reconcile succeeded');
}

describe('secretgen profile beside kapp-controller', () => {
  let cluster: TestCluster | undefined;
  let running: { operator: RunningOperator; log: () => string } | undefined;
  after(async () => {
    await running?.operator.stop();
    await cluster?.stop();
  });

  test('applies beside kapp-controller CRDs without touching them, and its RBAC suffices for sharing', async () => {
    cluster = await startTestCluster({ installCrds: false });
    // Stand-ins for a real kapp-controller's CRDs, marked so any rewrite shows.
    for (const file of KAPP_CONTROLLER_CRDS) {
      const [crd] = parseAllDocuments(readFileSync(join(REPO_ROOT, 'crds', file), 'utf8')).map(
        (d) => d.toJS() as { metadata: { annotations?: Record<string, string> } },
      );
      crd!.metadata.annotations = { ...crd!.metadata.annotations, [STAND_IN]: 'kapp-controller' };
      await cluster.kubectl(['create', '-f', '-'], JSON.stringify(crd));
    }
    await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
    const standIns = async () =>
      cluster!.kubectl([
        'get',
        'crd',
        '-o',
        `jsonpath={range .items[?(@.metadata.annotations.e2e\\.regcred\\.dev/stand-in)]}{.metadata.name}={.metadata.resourceVersion}/{.metadata.generation} {end}`,
      ]);
    const before = await standIns();
    assert.equal(before.trim().split(' ').length, KAPP_CONTROLLER_CRDS.length, before);

    const objects = await applyRelease(cluster, 'secretgen');
    assert.deepEqual(
      objects
        .filter((o) => o.kind === 'CustomResourceDefinition')
        .map((o) => o.metadata.name)
        .sort(),
      ['secretexports.secretgen.carvel.dev', 'secretimports.secretgen.carvel.dev'],
    );
    assert.equal(await standIns(), before, 'the kapp-controller CRDs are untouched (resourceVersion)');

    const config = deploymentConfig('secretgen');
    assert.deepEqual(config.controllers, ['secretexport', 'secretimport', 'placeholder']);
    const kubeconfig = await serviceAccountKubeconfig(cluster, 'secretgen-sa.kubeconfig');
    running = await runOperator(config, kubeconfig);
    await expectSharingWorks(cluster);

    // kapp-controller's kinds are left to kapp-controller: no packaging controller runs.
    await cluster.apply(`
apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageRepository
metadata: {name: left-alone, namespace: team-app}
spec: {fetch: {imgpkgBundle: {image: registry.profile.test/repo:1.0.0, secretRef: {name: pull}}}}
`);
    await new Promise((r) => setTimeout(r, 3000));
    const repo = JSON.parse(
      await cluster.kubectl(['get', 'packagerepository', '-n', 'team-app', 'left-alone', '-o', 'json']),
    ) as { status?: unknown; metadata: { finalizers?: string[] } };
    assert.equal(repo.status, undefined, 'no status written on a PackageRepository');
    assert.equal(repo.metadata.finalizers, undefined, 'no finalizer added to a PackageRepository');
    assert.equal(await standIns(), before, 'the kapp-controller CRDs are still untouched');
    assert.doesNotMatch(running.log(), /forbidden/i, running.log());
  });
});

describe('full profile', () => {
  let cluster: TestCluster | undefined;
  let running: { operator: RunningOperator; log: () => string } | undefined;
  after(async () => {
    await running?.operator.stop();
    await cluster?.stop();
  });

  test('without its CRDs the operator refuses to start and names the missing CRD', async () => {
    cluster = await startTestCluster({ installCrds: false });
    await assert.rejects(
      startOperator(
        {
          ...deploymentConfig('full'),
          kubeconfig: cluster.cp.kubeconfig,
          healthPort: 0,
          leaderElect: false,
          webhookPort: 0,
        },
        createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })),
      ),
      /CRD secretexports\.secretgen\.carvel\.dev is not installed \(needed by --controllers=secretexport,secretimport,placeholder\)/,
    );
  });

  test('applies to a fresh control plane, and its RBAC suffices for every controller', async () => {
    const objects = await applyRelease(cluster!, 'full');
    assert.equal(
      objects.filter((o) => o.kind === 'CustomResourceDefinition').length,
      readdirSync(join(REPO_ROOT, 'crds')).filter((f) => f.endsWith('.yaml')).length,
      'every CRD of crds/',
    );
    const config = deploymentConfig('full');
    const kubeconfig = await serviceAccountKubeconfig(cluster!, 'full-sa.kubeconfig');
    running = await runOperator(config, kubeconfig);
    await expectSharingWorks(cluster!);
    await cluster!.apply(readFileSync(join(REPO_ROOT, 'e2e', 'fixtures', 'seed-examples.yaml'), 'utf8'));
    await waitFor('PackageRepository placeholder created', async () =>
      cluster!.client.get<V1Secret>(
        SecretsResource,
        'kapp-controller-packaging-global',
        'e2e-repo.test.carvel.dev-fetch-0',
      ),
    );
    await waitFor('App created for the PackageInstall', async () => {
      const out = await cluster!.kubectlResult([
        'get',
        'app',
        '-n',
        'default',
        'simple-app-with-secret',
        '-o',
        'name',
      ]);
      return out.code === 0 ? out.stdout : undefined;
    });
    assert.doesNotMatch(running.log(), /forbidden/i, running.log());
  });
});
