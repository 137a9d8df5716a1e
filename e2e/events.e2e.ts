// What a user sees in `kubectl describe` and `kubectl explain`, against a
// real control plane with the whole operator running: every kind gets a
// Warning Event when it fails and a Normal Event when it first succeeds or
// recovers; reconciling again with the same outcome adds no Event (counted
// with the API server's `count`, as `kubectl describe` aggregates them); and
// `kubectl explain` prints the CRDs' own descriptions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CoreV1Event, KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { parse } from 'yaml';
import {
  AppKind,
  AppResource,
  PackageInstallKind,
  PackageInstallResource,
  PackageKind,
  PackageRepositoryKind,
  PackageRepositoryResource,
  PackageResource,
} from '../generated/index.js';
import { EventsResource } from '../src/runtime/events.js';
import type { ResourceType } from '../src/runtime/kube-client.js';
import { REPO_ROOT } from './harness/cluster.js';
import { sleep, startOperatorEnv, waitForOperatorIdle, type OperatorEnv } from './harness/operator-env.js';
import { waitFor } from './harness/wait.js';
import {
  auths,
  createNamespace,
  dockerConfigSecret,
  placeholderSecret,
  SecretExports,
  secretExport,
  SecretImports,
  secretImport,
  Secrets,
  userPass,
} from './fixtures/sharing/env.js';

const Apps: ResourceType = { ...AppResource, kind: AppKind };
const PackageRepositories: ResourceType = { ...PackageRepositoryResource, kind: PackageRepositoryKind };
const PackageInstalls: ResourceType = { ...PackageInstallResource, kind: PackageInstallKind };
const Packages: ResourceType = { ...PackageResource, kind: PackageKind };

let env: OperatorEnv;

before(async () => {
  env = await startOperatorEnv({
    operatorUser: 'regcred-operator',
    config: { resyncPeriodMs: 600_000, concurrency: 8, kubeApiQps: 0, kubeApiBurst: 1 },
  });
});
after(async () => {
  await env?.stop();
});

interface Seen {
  type: string;
  reason: string;
  message: string;
  count: number;
}

/** The Events `kubectl describe` shows for an object: those whose involvedObject.uid is its uid. */
async function eventsOf(obj: KubernetesObject): Promise<Seen[]> {
  const md = obj.metadata!;
  const { items } = await env.client.list<CoreV1Event>(EventsResource, {
    namespace: md.namespace,
    fieldSelector: `involvedObject.uid=${md.uid}`,
  });
  return (
    items
      // Timestamps have second precision; one etcd's revisions order them (a test-only assumption).
      .sort((a, b) => Number(a.metadata?.resourceVersion) - Number(b.metadata?.resourceVersion))
      .map((e) => ({
        type: e.type ?? '',
        reason: e.reason ?? '',
        message: e.message ?? '',
        count: e.count ?? 1,
      }))
  );
}

const line = (e: Seen) => `${e.type} ${e.reason}: ${e.message}`;
const total = (events: Seen[]) => events.reduce((n, e) => n + e.count, 0);

/** Waits until the object's Events include one matching each of `wanted` (type, reason, message pattern). */
async function waitForEvents(
  obj: KubernetesObject,
  wanted: Array<[string, string, RegExp]>,
  timeoutMs = 30_000,
): Promise<Seen[]> {
  let last: Seen[] = [];
  try {
    return await waitFor(
      `events ${wanted.map(([t, r]) => `${t} ${r}`).join(', ')} on ${obj.kind} ${obj.metadata?.namespace}/${obj.metadata?.name}`,
      async () => {
        last = await eventsOf(obj);
        return wanted.every(([type, reason, message]) =>
          last.some((e) => e.type === type && e.reason === reason && message.test(e.message)),
        )
          ? last
          : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nseen: ${JSON.stringify(last.map(line))}`, { cause: err });
  }
}

async function get<T extends KubernetesObject>(
  rt: ResourceType,
  namespace: string,
  name: string,
): Promise<T> {
  return waitFor(`${rt.kind} ${namespace}/${name}`, () => env.client.get<T>(rt, namespace, name));
}

/** Touches an annotation, which makes the controller reconcile the object again with nothing else changed. */
async function poke(rt: ResourceType, namespace: string, name: string, times = 3): Promise<void> {
  for (let i = 0; i < times; i++) {
    await env.client.mergePatch(rt, namespace, name, {
      metadata: { annotations: { 'e2e.test/poke': `${i}` } },
    });
    await sleep(300);
  }
  await waitForOperatorIdle(env, 1500, 30_000);
}

describe('Events in kubectl describe', () => {
  test('SecretExport: a Warning while its Secret is missing, a Normal once it exists, nothing more on reconciles that change nothing', async () => {
    await createNamespace(env.client, 'ev-src');
    await createNamespace(env.client, 'ev-dst');
    await env.client.create(SecretExports, secretExport('ev-src', 'creds', { toNamespaces: ['ev-dst'] }));
    const exp = await get(SecretExports, 'ev-src', 'creds');
    await waitForEvents(exp, [['Warning', 'ReconcileFailed', /^Missing exported secret$/]]);

    await env.client.create(
      Secrets,
      dockerConfigSecret('ev-src', 'creds', auths({ 'registry.example.com': userPass('u', 'p') })),
    );
    const events = await waitForEvents(exp, [
      ['Normal', 'ReconcileSucceeded', /^Reconcile succeeded; it had failed with: Missing exported secret$/],
    ]);
    assert.deepEqual(events.map(line), [
      'Warning ReconcileFailed: Missing exported secret',
      'Normal ReconcileSucceeded: Reconcile succeeded; it had failed with: Missing exported secret',
    ]);

    // kubectl describe shows them (it selects Events by the object's uid).
    const described = await env.cluster.kubectl(['describe', 'secretexport', '-n', 'ev-src', 'creds']);
    const shown = described.slice(described.indexOf('\nEvents:'));
    assert.match(shown, /^\s+Warning\s+ReconcileFailed\s.*Missing exported secret$/m, described);
    assert.match(shown, /^\s+Normal\s+ReconcileSucceeded\s.*it had failed with: Missing exported secret$/m);

    await poke(SecretExports, 'ev-src', 'creds');
    assert.equal(total(await eventsOf(exp)), 2, 'reconciles that change nothing add no Event');
  });

  test('SecretImport: a Warning while no export allows it, a Normal once one does', async () => {
    await createNamespace(env.client, 'ev-isrc');
    await createNamespace(env.client, 'ev-idst');
    await env.client.create(Secrets, dockerConfigSecret('ev-isrc', 'token', auths({})));
    await env.client.create(SecretImports, secretImport('ev-idst', 'token', 'ev-isrc'));
    const imp = await get(SecretImports, 'ev-idst', 'token');
    const [failure] = await waitForEvents(imp, [['Warning', 'ReconcileFailed', /./]]);

    await env.client.create(SecretExports, secretExport('ev-isrc', 'token', { toNamespace: 'ev-idst' }));
    const events = await waitForEvents(imp, [['Normal', 'ReconcileSucceeded', /it had failed with: /]]);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.reason}`),
      ['Warning ReconcileFailed', 'Normal ReconcileSucceeded'],
      JSON.stringify(events.map(line)),
    );
    assert.ok(events[1]!.message.includes(failure!.message.split('\n')[0]!.slice(0, 40)));

    await poke(SecretImports, 'ev-idst', 'token');
    assert.equal(total(await eventsOf(imp)), 2);
  });

  test('placeholder Secrets: no Event when filled or rotated (they exist by the thousand), a PlaceholderWrongType Warning for one of the wrong type', async () => {
    await createNamespace(env.client, 'ev-p');
    await env.client.create(
      Secrets,
      dockerConfigSecret('ev-src', 'all', auths({ 'all.example.com': userPass('a', 'b') })),
    );
    await env.client.create(SecretExports, secretExport('ev-src', 'all', { toNamespaces: ['ev-p'] }));
    await env.client.create(Secrets, placeholderSecret('ev-p', 'pull'));
    const pull = await get<V1Secret>(Secrets, 'ev-p', 'pull');
    await waitFor('the placeholder to be filled', async () => {
      const s = await env.client.get<V1Secret>(Secrets, 'ev-p', 'pull');
      return Buffer.from(s?.data?.['.dockerconfigjson'] ?? '', 'base64')
        .toString()
        .includes('all.example.com');
    });

    // A rotation changes the data, not the outcome.
    await env.client.mergePatch(Secrets, 'ev-src', 'all', {
      stringData: { '.dockerconfigjson': JSON.stringify(auths({ 'all.example.com': userPass('a', 'c') })) },
    });
    await waitFor('the rotation to reach the placeholder', async () => {
      const s = await env.client.get<V1Secret>(Secrets, 'ev-p', 'pull');
      return Buffer.from(s?.data?.['.dockerconfigjson'] ?? '', 'base64')
        .toString()
        .includes('"password":"c"');
    });
    await waitForOperatorIdle(env, 1500, 30_000);
    assert.equal(total(await eventsOf(pull)), 0);

    await env.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        namespace: 'ev-p',
        name: 'opaque',
        annotations: { 'secretgen.carvel.dev/image-pull-secret': '' },
      },
      type: 'Opaque',
    });
    const opaque = await get<V1Secret>(Secrets, 'ev-p', 'opaque');
    await waitForEvents(opaque, [['Warning', 'PlaceholderWrongType', /kubernetes\.io\/dockerconfigjson/]]);
    await poke(Secrets, 'ev-p', 'opaque');
    assert.equal(total(await eventsOf(opaque)), 1);
  });

  test('PackageRepository: a Warning when its content is invalid, a Normal once fixed', async () => {
    await createNamespace(env.client, 'ev-repo');
    await env.client.create(PackageRepositories, {
      apiVersion: 'packaging.carvel.dev/v1alpha1',
      kind: 'PackageRepository',
      metadata: { namespace: 'ev-repo', name: 'repo' },
      spec: { fetch: { inline: { paths: { 'packages/bad.yml': 'kind: [unclosed' } } } },
    });
    const repo = await get(PackageRepositories, 'ev-repo', 'repo');
    const [failure] = await waitForEvents(repo, [['Warning', 'ReconcileFailed', /./]]);

    const pkg = [
      'apiVersion: data.packaging.carvel.dev/v1alpha1',
      'kind: Package',
      'metadata: {name: ev.test.carvel.dev.1.0.0}',
      'spec:',
      '  refName: ev.test.carvel.dev',
      '  version: 1.0.0',
      '  template: {spec: {fetch: [{inline: {paths: {a.yml: "a: 1"}}}], template: [{ytt: {}}], deploy: [{kapp: {}}]}}',
    ].join('\n');
    await env.client.mergePatch(PackageRepositories, 'ev-repo', 'repo', {
      spec: { fetch: { inline: { paths: { 'packages/bad.yml': null, 'packages/ev.yml': pkg } } } },
    });
    const events = await waitForEvents(repo, [['Normal', 'ReconcileSucceeded', /it had failed with: /]]);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.reason}`),
      ['Warning ReconcileFailed', 'Normal ReconcileSucceeded'],
      JSON.stringify(events.map(line)),
    );
    assert.ok(failure!.message.length > 0);
    await poke(PackageRepositories, 'ev-repo', 'repo');
    assert.equal(total(await eventsOf(repo)), 2);
  });

  test('PackageInstall and App: a Warning for each new failure; an App failing the same way run after run adds none', async () => {
    await createNamespace(env.client, 'ev-pkgi');
    await env.client.create(PackageInstalls, {
      apiVersion: 'packaging.carvel.dev/v1alpha1',
      kind: 'PackageInstall',
      metadata: { namespace: 'ev-pkgi', name: 'inst' },
      spec: {
        serviceAccountName: 'default',
        packageRef: { refName: 'app.ev.test', versionSelection: { constraints: '>=1.0.0' } },
      },
    });
    const pkgi = await get(PackageInstalls, 'ev-pkgi', 'inst');
    await waitForEvents(pkgi, [['Warning', 'ReconcileFailed', /./]]);

    // The package appears: the App is created, fetches, and fails at its (unsupported) template step.
    await env.client.create(Packages, {
      apiVersion: 'data.packaging.carvel.dev/v1alpha1',
      kind: 'Package',
      metadata: { namespace: 'ev-pkgi', name: 'app.ev.test.1.0.0' },
      spec: {
        refName: 'app.ev.test',
        version: '1.0.0',
        template: {
          spec: {
            fetch: [{ inline: { paths: { 'a.yml': 'a: 1' } } }],
            template: [{ ytt: {} }],
            deploy: [{ kapp: {} }],
          },
        },
      },
    });
    const app = await get(Apps, 'ev-pkgi', 'inst');
    await waitForEvents(app, [['Warning', 'ReconcileFailed', /template stage 0 \(ytt\): not supported yet/]]);
    const pkgiEvents = await waitForEvents(pkgi, [
      ['Warning', 'ReconcileFailed', /template stage 0 \(ytt\): not supported yet/],
    ]);
    assert.equal(
      pkgiEvents.filter((e) => e.type === 'Warning').length,
      2,
      JSON.stringify(pkgiEvents.map(line)),
    );

    await poke(PackageInstalls, 'ev-pkgi', 'inst');
    assert.equal(
      total(await eventsOf(pkgi)),
      total(pkgiEvents),
      JSON.stringify((await eventsOf(pkgi)).map(line)),
    );
  });

  test('App: a Warning when it fails, none when it runs again with the same failure, another when the failure changes', async () => {
    await createNamespace(env.client, 'ev-app');
    await env.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'ev-app', name: 'cfg' },
      stringData: { 'a.yml': 'a: 1' },
    });
    await env.client.create(Apps, {
      apiVersion: 'kappctrl.k14s.io/v1alpha1',
      kind: 'App',
      metadata: { namespace: 'ev-app', name: 'app' },
      spec: {
        serviceAccountName: 'default',
        fetch: [{ inline: { pathsFrom: [{ secretRef: { name: 'cfg' } }] } }],
        template: [{ ytt: {} }],
        deploy: [{ kapp: {} }],
      },
    });
    type AppObject = KubernetesObject & { status?: { fetch?: { startedAt?: string } } };
    const app = await get<AppObject>(Apps, 'ev-app', 'app');
    const first = await waitForEvents(app, [
      ['Warning', 'ReconcileFailed', /template stage 0 \(ytt\): not supported yet/],
    ]);
    await waitForOperatorIdle(env, 1500, 30_000);
    const ranAt = (await get<AppObject>(Apps, 'ev-app', 'app')).status?.fetch?.startedAt;

    // A changed fetch Secret runs the App again at once: the same failure adds no Event.
    await env.client.mergePatch(Secrets, 'ev-app', 'cfg', { stringData: { 'a.yml': 'a: 2' } });
    await waitFor(
      'the App to run again',
      async () =>
        (await env.client.get<AppObject>(Apps, 'ev-app', 'app'))?.status?.fetch?.startedAt !== ranAt,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await waitForOperatorIdle(env, 1500, 30_000);
    assert.equal(total(await eventsOf(app)), total(first), JSON.stringify((await eventsOf(app)).map(line)));

    await env.client.mergePatch(Apps, 'ev-app', 'app', { spec: { template: [{ helmTemplate: {} }] } });
    const events = await waitForEvents(app, [
      ['Warning', 'ReconcileFailed', /template stage 0 \(helmTemplate\): not supported yet/],
    ]);
    assert.equal(events.filter((e) => e.type === 'Warning').length, 2, JSON.stringify(events.map(line)));
  });
});

interface SchemaNode {
  description?: string;
  properties?: Record<string, SchemaNode>;
}

/** The description of `path` (spec.x.y) in a CRD file's first version, as written there. */
function crdDescription(file: string, path: string): string {
  const crd = parse(readFileSync(join(REPO_ROOT, 'crds', file), 'utf8')) as {
    spec: { versions: Array<{ schema: { openAPIV3Schema: SchemaNode } }> };
  };
  let node: SchemaNode | undefined = crd.spec.versions[0]!.schema.openAPIV3Schema;
  for (const part of path.split('.')) node = node?.properties?.[part];
  assert.ok(node?.description, `${file}: no description at ${path}`);
  return node.description.replace(/\s+/g, ' ').trim();
}

/** The DESCRIPTION section of `kubectl explain`, whitespace-normalised. */
function explainDescription(out: string): string {
  const match = /^DESCRIPTION:\n([\s\S]*?)(?=^[A-Z]+:|$(?![\s\S]))/m.exec(out);
  assert.ok(match, `no DESCRIPTION in:\n${out}`);
  return match[1]!.replace(/\s+/g, ' ').trim();
}

describe('kubectl explain', () => {
  const fields: Array<[string, string, string]> = [
    ['secretexports', 'secretgen.carvel.dev_secretexports.yaml', 'spec.toNamespaces'],
    ['secretimports', 'secretgen.carvel.dev_secretimports.yaml', 'spec.fromNamespace'],
    ['packagerepositories', 'packaging.carvel.dev_packagerepositories.yaml', 'spec.fetch'],
    ['packageinstalls', 'packaging.carvel.dev_packageinstalls.yaml', 'spec.packageRef'],
    ['apps', 'kappctrl.k14s.io_apps.yaml', 'spec.fetch'],
    ['packages', 'data.packaging.carvel.dev_packages.yaml', 'spec.refName'],
    ['packagemetadatas', 'data.packaging.carvel.dev_packagemetadatas.yaml', 'spec.displayName'],
    ['registrytokens', 'regcred.dev_registrytokens.yaml', 'spec'],
    ['imagepullsecretpolicies', 'regcred.dev_imagepullsecretpolicies.yaml', 'spec'],
  ];
  for (const [plural, file, path] of fields) {
    test(`kubectl explain ${plural}.${path} prints the CRD's description`, async () => {
      const printed = explainDescription(await env.cluster.kubectl(['explain', `${plural}.${path}`]));
      // For a list, kubectl adds the description of its items after the field's own.
      const own = crdDescription(file, path);
      assert.ok(printed.startsWith(own), `kubectl explain printed: ${printed}\nthe CRD says: ${own}`);
    });
  }
});
