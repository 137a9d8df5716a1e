// Placeholder secrets end to end: a real control plane and the operator,
// in-process, with every controller and a 10-minute resync (nothing here may
// rely on a resync). The behaviour asserted is the one the README describes.
//
// Tests run one after another and each uses its own namespaces; a test that
// creates an export reaching every namespace ("*" or a selector) deletes it
// when it ends, so later tests see only their own exports.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { SecretExport, SecretExportSpec, SecretImport } from '../generated/index.js';
import type { ResourceType } from '../src/runtime/kube-client.js';
import {
  auths,
  b64,
  ConfigMaps,
  createNamespace,
  deleteAll,
  describeAudit,
  DOCKER_CONFIG_JSON,
  dockerConfigSecret,
  eventsAbout,
  eventually,
  EXCLUDED,
  expectPlaceholder,
  friendlyFailure,
  IMAGE_PULL_SECRET,
  Namespaces,
  placeholderSecret,
  readPlaceholder,
  RESYNC_MS,
  secretExport,
  shareSecret,
  SecretExports,
  secretImport,
  SecretImports,
  Secrets,
  sleep,
  startSharingEnv,
  STATUS,
  succeededStatus,
  userPass,
  waitForOperatorIdle,
  WEIGHT,
  type PlaceholderState,
  type SharingEnv,
} from './fixtures/sharing/env.js';
import { REPO_ROOT } from './harness/cluster.js';

let env: SharingEnv;

before(async () => {
  env = await startSharingEnv();
});

after(async () => {
  await env?.stop();
});

const EMPTY_STATUS = '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}]}';
const WRONG_TYPE_STATUS =
  '{"conditions":[{"type":"ReconcileFailed","status":"True","message":"Expected secret to have type=corev1.SecretTypeDockerConfigJson, but did not"}]}';
/** "At once": well below any resync, and the operator runs with a 10-minute one. */
const AT_ONCE_MS = 5000;

/** Deletes what the test registered when it ends (pass or fail). */
function cleanupAfter(t: TestContext): Array<[ResourceType, string, string]> {
  const objects: Array<[ResourceType, string, string]> = [];
  t.after(() => deleteAll(env.client, objects));
  return objects;
}

/** Creates a dockerconfigjson Secret and its SecretExport; the export is deleted when the test ends. */
async function share(
  cleanup: Array<[ResourceType, string, string]>,
  namespace: string,
  name: string,
  config: unknown,
  spec: SecretExportSpec,
  annotations?: Record<string, string>,
): Promise<void> {
  await shareSecret(env.client, namespace, name, config, spec, annotations);
  cleanup.push([SecretExports, namespace, name]);
}

async function exportStatus(namespace: string, name: string): Promise<SecretExport['status']> {
  const exp = await env.client.get<SecretExport>(SecretExports, namespace, name);
  assert.ok(exp, `SecretExport ${namespace}/${name} does not exist`);
  return exp.status;
}

describe('the seed example', () => {
  test('the docs example fills the placeholder in default from secrets-ns, and a namespace created afterwards gets the credentials too', async (t) => {
    // The first documents of the seed: the two namespaces, the placeholder, the
    // registry Secret and its SecretExport (the packaging examples follow).
    const text = readFileSync(join(REPO_ROOT, 'e2e', 'fixtures', 'seed-examples.yaml'), 'utf8');
    const docs = parseAllDocuments(text);
    const sharing = docs.slice(
      0,
      docs.findIndex((d) => !['Namespace', 'Secret', 'SecretExport'].includes(String(d.get('kind')))),
    );
    assert.deepEqual(
      sharing.map((d) => `${String(d.get('kind'))} ${String(d.getIn(['metadata', 'name']))}`),
      [
        'Namespace secrets-ns',
        'Namespace kapp-controller-packaging-global',
        'Secret reg-creds',
        'Secret reg-creds',
        'SecretExport reg-creds',
      ],
    );
    t.after(() => env.client.delete(SecretExports, 'secrets-ns', 'reg-creds'));
    await env.cluster.apply(sharing.map((d) => d.toString()).join('---\n'));

    // The seed entry has username/password and "auth": "": the placeholder gets auth = base64(user:pass).
    const expected = { auths: { 'index.docker.io': userPass('user...', 'password...') } };
    assert.equal(expected.auths['index.docker.io'].auth, b64('user...:password...'));
    const status =
      '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["secrets-ns/reg-creds"]}';
    const filled = await expectPlaceholder(env.client, 'default', 'reg-creds', expected, status);
    assert.equal(filled.secret.type, DOCKER_CONFIG_JSON);
    assert.deepEqual(Object.keys(filled.secret.data ?? {}), ['.dockerconfigjson']);
    assert.equal(filled.secret.metadata?.annotations?.[IMAGE_PULL_SECRET], '');

    // A namespace created afterwards, with the docs' placeholder in it.
    const placeholderDoc = sharing[2]!.toJS() as V1Secret;
    await createNamespace(env.client, 'seed-later');
    await env.cluster.apply(
      JSON.stringify({
        ...placeholderDoc,
        metadata: { ...placeholderDoc.metadata, namespace: 'seed-later' },
      }),
    );
    await expectPlaceholder(env.client, 'seed-later', 'reg-creds', expected, status);

    const exportedStatus = await exportStatus('secrets-ns', 'reg-creds');
    assert.equal(exportedStatus?.friendlyDescription, 'Reconcile succeeded');

    // Deleting the export revokes the credentials; the placeholders stay.
    await env.client.delete(SecretExports, 'secrets-ns', 'reg-creds');
    for (const namespace of ['default', 'seed-later']) {
      const revoked = await expectPlaceholder(
        env.client,
        namespace,
        'reg-creds',
        { auths: {} },
        EMPTY_STATUS,
      );
      assert.equal(revoked.raw, '{"auths":{}}');
    }
  });
});

describe('merging', () => {
  test('several exports merge into one placeholder with sorted keys, and the most preferred source wins each registry', async (t) => {
    const cleanup = cleanupAfter(t);
    for (const ns of ['merge-p', 'merge-a', 'merge-b']) await createNamespace(env.client, ns);
    await createNamespace(env.client, 'merge-none', { annotations: { [EXCLUDED]: '' } });
    const cfg = (registries: string[], user: string) => ({
      auths: Object.fromEntries(registries.map((r) => [r, { username: user, password: `${user}-pw` }])),
    });
    const toP = { toNamespaces: ['merge-p'] };
    const all = { toNamespaces: ['*'] };
    // 1. weight first: a weight-2.5 wildcard export in another namespace beats an explicit one in merge-p.
    await share(cleanup, 'merge-a', 'heavy', cfg(['weight.example.com'], 'a-heavy'), all, {
      [WEIGHT]: '2.5',
    });
    await share(cleanup, 'merge-p', 'own-explicit', cfg(['weight.example.com'], 'p-own-explicit'), toP);
    // 2. then the placeholder's own namespace: merge-p's wildcard export beats merge-a's explicit one.
    await share(cleanup, 'merge-p', 'own-wild', cfg(['own.example.com'], 'p-own-wild'), all);
    await share(
      cleanup,
      'merge-a',
      'explicit',
      cfg(['own.example.com', 'explicit.example.com'], 'a-explicit'),
      toP,
    );
    // 3. then explicit over wildcard: merge-a/explicit beats merge-b/wild although it sorts first.
    await share(
      cleanup,
      'merge-b',
      'wild',
      cfg(['explicit.example.com', 'order.example.com'], 'b-wild'),
      all,
    );
    // 4. then "ns/name" ascending, the last one winning: merge-b/wild beats merge-a/zz.
    await share(cleanup, 'merge-a', 'zz', cfg(['order.example.com'], 'a-zz'), all);
    // An invalid weight reads as 0 (merge-b/bogus-weight wins by name over merge-a/plain);
    // a negative weight loses to 0 (merge-a/plain beats merge-b/light).
    await share(
      cleanup,
      'merge-a',
      'plain',
      cfg(['bogus.example.com', 'light.example.com', 'unique.example.com'], 'a-plain'),
      all,
      { [WEIGHT]: '0' },
    );
    await share(cleanup, 'merge-b', 'bogus-weight', cfg(['bogus.example.com'], 'b-bogus'), all, {
      [WEIGHT]: 'heavy',
    });
    await share(cleanup, 'merge-b', 'light', cfg(['light.example.com'], 'b-light'), all, { [WEIGHT]: '-1' });
    // The singular toNamespace field works like toNamespaces, for a name and for "*".
    await share(cleanup, 'merge-b', 'single', cfg(['single.example.com'], 'b-single'), {
      toNamespace: 'merge-p',
    });
    await share(cleanup, 'merge-b', 'single-star', cfg(['star.example.com'], 'b-star'), { toNamespace: '*' });
    // A source of another type is not merged.
    await env.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'merge-a', name: 'opaque' },
      type: 'Opaque',
      data: { '.dockerconfigjson': b64(JSON.stringify(cfg(['opaque.example.com'], 'opaque'))) },
    });
    await env.client.create(SecretExports, secretExport('merge-a', 'opaque', all));
    cleanup.push([SecretExports, 'merge-a', 'opaque']);

    // The placeholder's extra key goes: data is replaced entirely.
    await env.client.create(Secrets, placeholderSecret('merge-p', 'creds', { extra: b64('dropped') }));
    await env.client.create(Secrets, placeholderSecret('merge-none', 'creds'));

    const expected = auths({
      'bogus.example.com': userPass('b-bogus', 'b-bogus-pw'),
      'explicit.example.com': userPass('a-explicit', 'a-explicit-pw'),
      'light.example.com': userPass('a-plain', 'a-plain-pw'),
      'order.example.com': userPass('b-wild', 'b-wild-pw'),
      'own.example.com': userPass('p-own-wild', 'p-own-wild-pw'),
      'single.example.com': userPass('b-single', 'b-single-pw'),
      'star.example.com': userPass('b-star', 'b-star-pw'),
      'unique.example.com': userPass('a-plain', 'a-plain-pw'),
      'weight.example.com': userPass('a-heavy', 'a-heavy-pw'),
    });
    const conflict = (registry: string, winner: string, losers: string[]) => ({ registry, winner, losers });
    const sources = [
      'merge-a/explicit',
      'merge-a/heavy',
      'merge-a/plain',
      'merge-a/zz',
      'merge-b/bogus-weight',
      'merge-b/light',
      'merge-b/single',
      'merge-b/single-star',
      'merge-b/wild',
      'merge-p/own-explicit',
      'merge-p/own-wild',
    ];
    const conflictsWith = (weightConflict: ReturnType<typeof conflict>) => [
      conflict('bogus.example.com', 'merge-b/bogus-weight', ['merge-a/plain']),
      conflict('explicit.example.com', 'merge-a/explicit', ['merge-b/wild']),
      conflict('light.example.com', 'merge-a/plain', ['merge-b/light']),
      conflict('order.example.com', 'merge-b/wild', ['merge-a/zz']),
      conflict('own.example.com', 'merge-p/own-wild', ['merge-a/explicit']),
      weightConflict,
    ];
    const status = succeededStatus(sources, {
      conflicts: conflictsWith(conflict('weight.example.com', 'merge-a/heavy', ['merge-p/own-explicit'])),
    });
    const merged = await expectPlaceholder(env.client, 'merge-p', 'creds', expected, status);
    // Keys sorted in the written text itself, and nothing but .dockerconfigjson left in data.
    const written = JSON.parse(merged.raw) as { auths: Record<string, unknown> };
    assert.deepEqual(Object.keys(written.auths), Object.keys(expected.auths).sort());
    assert.deepEqual(Object.keys(merged.secret.data ?? {}), ['.dockerconfigjson']);

    // Nothing reaches a namespace excluded from "*" that no export names: exactly {"auths":{}}.
    const none = await expectPlaceholder(env.client, 'merge-none', 'creds', { auths: {} }, EMPTY_STATUS);
    assert.equal(none.raw, '{"auths":{}}');

    // A weight annotation change alone flips the winner: merge-p/own-explicit now outweighs merge-a/heavy.
    await env.client.mergePatch(SecretExports, 'merge-p', 'own-explicit', {
      metadata: { annotations: { [WEIGHT]: '3' } },
    });
    await expectPlaceholder(
      env.client,
      'merge-p',
      'creds',
      { auths: { ...expected.auths, 'weight.example.com': userPass('p-own-explicit', 'p-own-explicit-pw') } },
      succeededStatus(sources, {
        conflicts: conflictsWith(conflict('weight.example.com', 'merge-p/own-explicit', ['merge-a/heavy'])),
      }),
    );
  });
});

describe('propagation', () => {
  test('source, export and namespace changes reach every affected placeholder and no other', async (t) => {
    const cleanup = cleanupAfter(t);
    const targets = ['up-a', 'up-b', 'up-c', 'up-quiet'] as const;
    type Target = (typeof targets)[number];
    await createNamespace(env.client, 'up-src');
    for (const ns of targets) await createNamespace(env.client, ns);

    let onePassword = 'p1';
    const oneConfig = () => ({ auths: { 'one.example.com': { username: 'u1', password: onePassword } } });
    await share(cleanup, 'up-src', 'one', oneConfig(), { toNamespaces: ['up-a', 'up-b'] });
    await share(
      cleanup,
      'up-src',
      'wild',
      { auths: { 'wild.example.com': { auth: b64('w:wp') } } },
      {
        toNamespaces: ['*'],
      },
    );
    for (const ns of targets) await env.client.create(Secrets, placeholderSecret(ns, 'creds'));

    // What each placeholder should hold: which of the two exports reach it.
    const reach: Record<Target, { one: boolean; wild: boolean }> = {
      'up-a': { one: true, wild: true },
      'up-b': { one: true, wild: true },
      'up-c': { one: false, wild: true },
      'up-quiet': { one: false, wild: true },
    };
    const versions = {} as Record<Target, string>;
    const expectedOf = (ns: Target) => {
      const entries: Record<string, Record<string, string>> = {};
      const names: string[] = [];
      if (reach[ns].one) {
        entries['one.example.com'] = userPass('u1', onePassword);
        names.push('up-src/one');
      }
      if (reach[ns].wild) {
        entries['wild.example.com'] = { auth: b64('w:wp') };
        names.push('up-src/wild');
      }
      return { config: auths(entries), status: succeededStatus(names) };
    };
    /** The affected placeholders converge; every other one still has the version it had. */
    const step = async (what: string, affected: Target[], timeoutMs?: number) => {
      for (const ns of affected) {
        const { config, status } = expectedOf(ns);
        const state = await expectPlaceholder(env.client, ns, 'creds', config, status, { timeoutMs });
        versions[ns] = state.resourceVersion;
      }
      for (const ns of targets.filter((x) => !affected.includes(x))) {
        const state = await readPlaceholder(env.client, ns, 'creds');
        assert.equal(state.resourceVersion, versions[ns], `${what}: placeholder ${ns}/creds was written`);
        assert.deepEqual(state.config, expectedOf(ns).config, `${what}: content of ${ns}/creds`);
      }
    };
    await step('initial fill', [...targets]);

    onePassword = 'p2';
    await env.client.mergePatch(Secrets, 'up-src', 'one', {
      data: { '.dockerconfigjson': b64(JSON.stringify(oneConfig())) },
    });
    await step('source credential changed', ['up-a', 'up-b']);

    await env.client.mergePatch(SecretExports, 'up-src', 'one', {
      spec: { toNamespaces: ['up-a', 'up-b', 'up-c'] },
    });
    reach['up-c'].one = true;
    await step('up-c added to toNamespaces', ['up-c']);

    await env.client.mergePatch(SecretExports, 'up-src', 'one', { spec: { toNamespaces: ['up-a', 'up-c'] } });
    reach['up-b'].one = false;
    await step('up-b removed from toNamespaces', ['up-b']);

    await env.client.delete(Secrets, 'up-src', 'one');
    reach['up-a'].one = false;
    reach['up-c'].one = false;
    await step('source Secret deleted', ['up-a', 'up-c']);

    onePassword = 'p3';
    await env.client.create(Secrets, dockerConfigSecret('up-src', 'one', oneConfig()));
    reach['up-a'].one = true;
    reach['up-c'].one = true;
    await step('source Secret created again', ['up-a', 'up-c']);

    await env.client.delete(SecretExports, 'up-src', 'one');
    reach['up-a'].one = false;
    reach['up-c'].one = false;
    await step('export deleted', ['up-a', 'up-c']);

    await env.client.mergePatch(Namespaces, undefined, 'up-a', {
      metadata: { annotations: { [EXCLUDED]: 'true' } },
    });
    reach['up-a'].wild = false;
    await step('up-a excluded from wildcard matching', ['up-a'], AT_ONCE_MS);
    assert.equal((await readPlaceholder(env.client, 'up-a', 'creds')).raw, '{"auths":{}}');

    await env.client.mergePatch(Namespaces, undefined, 'up-a', {
      metadata: { annotations: { [EXCLUDED]: null } },
    });
    reach['up-a'].wild = true;
    await step('exclusion of up-a removed', ['up-a'], AT_ONCE_MS);

    // An edit to a placeholder is undone at once.
    await env.client.mergePatch(Secrets, 'up-quiet', 'creds', {
      data: { '.dockerconfigjson': b64('{"auths":{"evil.example.com":{"auth":"eDp5"}}}'), extra: b64('x') },
    });
    await step('placeholder up-quiet edited', ['up-quiet'], AT_ONCE_MS);
    assert.deepEqual(
      Object.keys((await readPlaceholder(env.client, 'up-quiet', 'creds')).secret.data ?? {}),
      ['.dockerconfigjson'],
    );

    // A Secret that gets the annotation later becomes a placeholder; without it, it is left alone again.
    await env.client.create(Secrets, dockerConfigSecret('up-b', 'late', { auths: {} }));
    await env.client.mergePatch(Secrets, 'up-b', 'late', {
      metadata: { annotations: { [IMAGE_PULL_SECRET]: '' } },
    });
    await expectPlaceholder(
      env.client,
      'up-b',
      'late',
      expectedOf('up-b').config,
      expectedOf('up-b').status,
      {
        timeoutMs: AT_ONCE_MS,
      },
    );
    await env.client.mergePatch(Secrets, 'up-b', 'late', {
      metadata: { annotations: { [IMAGE_PULL_SECRET]: null } },
    });
    const released = await readPlaceholder(env.client, 'up-b', 'late');
    await env.client.mergePatch(Secrets, 'up-src', 'wild', {
      data: {
        '.dockerconfigjson': b64(JSON.stringify({ auths: { 'wild.example.com': { auth: b64('w:new') } } })),
      },
    });
    await eventually('up-b/creds to get the new wildcard credential', async () => {
      const state = await readPlaceholder(env.client, 'up-b', 'creds');
      assert.deepEqual(state.config, auths({ 'wild.example.com': { auth: b64('w:new') } }));
    });
    const leftAlone = await readPlaceholder(env.client, 'up-b', 'late');
    assert.equal(
      leftAlone.resourceVersion,
      released.resourceVersion,
      'a Secret without the annotation was written',
    );
  });
});

describe('writes', () => {
  test("a fill rewrites only the data and the status annotation: the placeholder's labels, other annotations, owner, finalizer and managed fields stay", async (t) => {
    const cleanup = cleanupAfter(t);
    await createNamespace(env.client, 'keep-src');
    await createNamespace(env.client, 'keep-p');
    const owner = await env.client.create<V1ConfigMap>(ConfigMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { namespace: 'keep-p', name: 'owner' },
    });
    const placeholder = placeholderSecret('keep-p', 'creds');
    placeholder.metadata = {
      ...placeholder.metadata,
      labels: { team: 'blue' },
      annotations: { ...placeholder.metadata!.annotations, note: 'mine' },
      ownerReferences: [
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid!, controller: false },
      ],
      finalizers: ['example.com/keep'],
    };
    await env.client.create(Secrets, placeholder);
    t.after(() =>
      env.client
        .mergePatch(Secrets, 'keep-p', 'creds', { metadata: { finalizers: null } })
        .catch(() => undefined),
    );
    const config = (password: string) => ({ auths: { 'keep.example.com': { username: 'u', password } } });
    await share(cleanup, 'keep-src', 'creds', config('one'), { toNamespaces: ['keep-p'] });
    const expected = (password: string) => auths({ 'keep.example.com': userPass('u', password) });
    await expectPlaceholder(
      env.client,
      'keep-p',
      'creds',
      expected('one'),
      succeededStatus(['keep-src/creds']),
    );
    // A second fill, after the source changes, goes through the same write.
    await env.client.mergePatch(Secrets, 'keep-src', 'creds', {
      data: { '.dockerconfigjson': b64(JSON.stringify(config('two'))) },
    });
    await expectPlaceholder(
      env.client,
      'keep-p',
      'creds',
      expected('two'),
      succeededStatus(['keep-src/creds']),
    );

    const secret = await env.client.get<V1Secret>(Secrets, 'keep-p', 'creds');
    const md = secret!.metadata!;
    assert.deepEqual(md.labels, { team: 'blue' });
    assert.equal(md.annotations?.note, 'mine');
    assert.equal(md.annotations?.[IMAGE_PULL_SECRET], '');
    assert.deepEqual(
      md.ownerReferences?.map((r) => [r.kind, r.name, r.uid]),
      [['ConfigMap', 'owner', owner.metadata!.uid]],
    );
    assert.deepEqual(md.finalizers, ['example.com/keep']);
    // The creator still owns what it set; the operator owns the data and the status it writes.
    const managers = (md.managedFields ?? []).map((f) => f.manager);
    assert.ok(managers.includes('regcred-e2e'), `managers: ${managers.join(', ')}`);
    const creator = JSON.stringify(md.managedFields?.find((f) => f.manager === 'regcred-e2e')?.fieldsV1);
    assert.match(creator, /f:team/);
    assert.match(creator, /f:finalizers/);
  });
});

describe('dangerousToNamespacesSelector', () => {
  test('In, NotIn, Exists, DoesNotExist and two ANDed entries select namespaces, and a namespace whose metadata changes starts or stops matching at once', async (t) => {
    const cleanup = cleanupAfter(t);
    const projectKey = String.raw`metadata.annotations['field\.cattle\.io/projectId']`;
    const PROJECT = 'field.cattle.io/projectId';
    await createNamespace(env.client, 'sel-src');
    await createNamespace(env.client, 'sel-red', { labels: { team: 'red' } });
    await createNamespace(env.client, 'sel-blue', {
      labels: { team: 'blue' },
      annotations: { [PROJECT]: 'p-1', tier: 'gold' },
    });
    // An empty annotation counts as absent.
    await createNamespace(env.client, 'sel-empty', { annotations: { [PROJECT]: '' } });
    await createNamespace(env.client, 'sel-gold', {
      labels: { team: 'green' },
      annotations: { tier: 'gold' },
    });

    const entry = (registry: string) => ({ auths: { [registry]: { username: registry, password: 'pw' } } });
    await share(cleanup, 'sel-src', 'in', entry('in.example.com'), {
      dangerousToNamespacesSelector: [
        { key: 'metadata.labels.team', operator: 'In', values: ['red', 'blue'] },
      ],
    });
    await share(cleanup, 'sel-src', 'notin', entry('notin.example.com'), {
      dangerousToNamespacesSelector: [{ key: 'metadata.labels.team', operator: 'NotIn', values: ['red'] }],
    });
    await share(cleanup, 'sel-src', 'exists', entry('exists.example.com'), {
      dangerousToNamespacesSelector: [{ key: projectKey, operator: 'Exists' }],
    });
    await share(cleanup, 'sel-src', 'dne', entry('dne.example.com'), {
      dangerousToNamespacesSelector: [{ key: projectKey, operator: 'DoesNotExist' }],
    });
    await share(cleanup, 'sel-src', 'and', entry('and.example.com'), {
      dangerousToNamespacesSelector: [
        { key: 'metadata.labels.team', operator: 'In', values: ['blue'] },
        { key: 'metadata.annotations.tier', operator: 'In', values: ['gold'] },
      ],
    });
    const namespaces = ['sel-red', 'sel-blue', 'sel-empty', 'sel-gold'];
    for (const ns of namespaces) await env.client.create(Secrets, placeholderSecret(ns, 'creds'));

    const expectSources = async (ns: string, names: string[], timeoutMs?: number) => {
      const config = auths(
        Object.fromEntries(names.map((n) => [`${n}.example.com`, userPass(`${n}.example.com`, 'pw')])),
      );
      await expectPlaceholder(
        env.client,
        ns,
        'creds',
        config,
        succeededStatus(names.map((n) => `sel-src/${n}`)),
        {
          timeoutMs,
        },
      );
    };
    await expectSources('sel-red', ['dne', 'in']);
    await expectSources('sel-blue', ['and', 'exists', 'in', 'notin']);
    await expectSources('sel-empty', ['dne', 'notin']);
    await expectSources('sel-gold', ['dne', 'notin']);

    const atOnce = async (what: string, change: () => Promise<unknown>, ns: string, names: string[]) => {
      const started = performance.now();
      await change();
      await expectSources(ns, names, AT_ONCE_MS);
      const ms = performance.now() - started;
      assert.ok(ms < AT_ONCE_MS && ms < RESYNC_MS, `${what} took ${Math.round(ms)} ms`);
    };
    await atOnce(
      'annotating sel-red',
      () =>
        env.client.mergePatch(Namespaces, undefined, 'sel-red', {
          metadata: { annotations: { [PROJECT]: 'p-2' } },
        }),
      'sel-red',
      ['exists', 'in'],
    );
    await atOnce(
      'relabelling sel-gold team=blue',
      () =>
        env.client.mergePatch(Namespaces, undefined, 'sel-gold', { metadata: { labels: { team: 'blue' } } }),
      'sel-gold',
      ['and', 'dne', 'in', 'notin'],
    );
    await atOnce(
      'removing the annotation of sel-red',
      () =>
        env.client.mergePatch(Namespaces, undefined, 'sel-red', {
          metadata: { annotations: { [PROJECT]: null } },
        }),
      'sel-red',
      ['dne', 'in'],
    );
    await atOnce(
      'changing tier of sel-blue',
      () =>
        env.client.mergePatch(Namespaces, undefined, 'sel-blue', {
          metadata: { annotations: { tier: 'silver' } },
        }),
      'sel-blue',
      ['exists', 'in', 'notin'],
    );
    await atOnce(
      'emptying the annotation of sel-blue',
      () =>
        env.client.mergePatch(Namespaces, undefined, 'sel-blue', {
          metadata: { annotations: { [PROJECT]: '' } },
        }),
      'sel-blue',
      ['dne', 'in', 'notin'],
    );
  });
});

describe('wrong type', () => {
  test('an annotated Secret that is not kubernetes.io/dockerconfigjson keeps its data and gets the upstream failure annotation', async (t) => {
    const cleanup = cleanupAfter(t);
    await createNamespace(env.client, 'wt-src');
    await createNamespace(env.client, 'wt');
    await share(
      cleanup,
      'wt-src',
      'creds',
      { auths: { 'wt.example.com': { username: 'u', password: 'p' } } },
      {
        toNamespaces: ['wt'],
      },
    );
    const data = { config: b64('keep me'), '.dockerconfigjson': b64('{}') };
    await env.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'wt', name: 'opaque', annotations: { [IMAGE_PULL_SECRET]: '' } },
      type: 'Opaque',
      data,
    });
    await eventually('the wrong-type annotation', async () => {
      const s = await env.client.get<V1Secret>(Secrets, 'wt', 'opaque');
      assert.equal(s?.metadata?.annotations?.[STATUS], WRONG_TYPE_STATUS);
    });
    const s = (await env.client.get<V1Secret>(Secrets, 'wt', 'opaque'))!;
    assert.equal(s.type, 'Opaque');
    assert.deepEqual(s.data, data);
    // A source change that reaches the namespace still leaves it alone.
    await env.client.mergePatch(Secrets, 'wt-src', 'creds', {
      data: {
        '.dockerconfigjson': b64(JSON.stringify({ auths: { 'wt.example.com': { auth: b64('x:y') } } })),
      },
    });
    await env.client.create(Secrets, placeholderSecret('wt', 'right'));
    await expectPlaceholder(
      env.client,
      'wt',
      'right',
      auths({ 'wt.example.com': { auth: b64('x:y') } }),
      succeededStatus(['wt-src/creds']),
    );
    const after = (await env.client.get<V1Secret>(Secrets, 'wt', 'opaque'))!;
    assert.equal(after.metadata?.resourceVersion, s.metadata?.resourceVersion);
    assert.deepEqual(after.data, data);
  });
});

describe('bad input', () => {
  test('a malformed source is skipped and reported while the other sources still fill the placeholder, tokens are kept and same-registry conflicts are reported', async (t) => {
    const cleanup = cleanupAfter(t);
    await createNamespace(env.client, 'bad-src');
    await createNamespace(env.client, 'bad-p');
    const toP = { toNamespaces: ['bad-p'] };
    await share(
      cleanup,
      'bad-src',
      'good',
      { auths: { 'good.example.com': { username: 'u', password: 'p' } } },
      toP,
    );
    // Valid JSON of the wrong shape: the API server accepts it, the operator cannot use it.
    await share(cleanup, 'bad-src', 'shape', '{"auths":[]}', toP);
    await share(
      cleanup,
      'bad-src',
      'numuser',
      { auths: { 'num.example.com': { username: 5, password: 'p' } } },
      toP,
    );
    // An entry with no credential at all is skipped, the rest of that source is used.
    await share(
      cleanup,
      'bad-src',
      'nocred',
      {
        auths: { 'nocred.example.com': { email: 'a@example.com' }, 'ok2.example.com': { auth: b64('x:y') } },
      },
      toP,
    );
    // identitytoken, registrytoken and email are kept; an auth is copied as it is, never recomputed.
    await share(
      cleanup,
      'bad-src',
      'tokens',
      {
        auths: {
          'tok.example.com': { identitytoken: 'idt' },
          'keep.example.com': { username: 'u2', password: 'p2', auth: b64('other:thing') },
          'reg.example.com': { registrytoken: 'rt', email: 'e@example.com' },
        },
      },
      toP,
    );
    // The same registries under other spellings: conflicts, won by bad-src/conflict-b ("ns/name" order).
    await share(
      cleanup,
      'bad-src',
      'conflict-a',
      {
        auths: {
          'https://Conflict.example.com/v1/': { username: 'ca', password: 'pa' },
          'docker.io': { username: 'ha', password: 'pa' },
        },
      },
      toP,
    );
    await share(
      cleanup,
      'bad-src',
      'conflict-b',
      {
        auths: {
          'conflict.example.com': { username: 'cb', password: 'pb' },
          'https://index.docker.io/v1/': { username: 'hb', password: 'pb' },
        },
      },
      toP,
    );
    await env.client.create(Secrets, placeholderSecret('bad-p', 'creds'));

    const expected = auths({
      'conflict.example.com': userPass('cb', 'pb'),
      'good.example.com': userPass('u', 'p'),
      'https://index.docker.io/v1/': userPass('hb', 'pb'),
      'ok2.example.com': { auth: b64('x:y') },
      'keep.example.com': { username: 'u2', password: 'p2', auth: b64('other:thing') },
      'reg.example.com': { email: 'e@example.com', registrytoken: 'rt' },
      'tok.example.com': { identitytoken: 'idt' },
    });
    const status = succeededStatus(
      ['bad-src/conflict-a', 'bad-src/conflict-b', 'bad-src/good', 'bad-src/nocred', 'bad-src/tokens'],
      {
        skipped: [
          {
            source: 'bad-src/nocred',
            registry: 'nocred.example.com',
            reason: 'no credential (none of username, password, auth, identitytoken, registrytoken)',
          },
          {
            source: 'bad-src/numuser',
            reason: 'auths["num.example.com"].username: expected a string, got number',
          },
          { source: 'bad-src/shape', reason: 'expected "auths" to be an object, got array' },
        ],
        conflicts: [
          { registry: 'conflict.example.com', winner: 'bad-src/conflict-b', losers: ['bad-src/conflict-a'] },
          { registry: 'docker.io', winner: 'bad-src/conflict-b', losers: ['bad-src/conflict-a'] },
        ],
      },
    );
    const filled = await expectPlaceholder(env.client, 'bad-p', 'creds', expected, status);

    // The malformed sources' exports report the parse error; the usable ones succeed.
    const failed = (problem: string) => {
      const message = `Exported secret is not valid kubernetes.io/dockerconfigjson: ${problem}`;
      return { message, friendlyDescription: friendlyFailure(message) };
    };
    const expectedExports: Record<string, { message?: string; friendlyDescription: string }> = {
      shape: failed('expected "auths" to be an object, got array'),
      numuser: failed('auths["num.example.com"].username: expected a string, got number'),
      good: { friendlyDescription: 'Reconcile succeeded' },
      nocred: { friendlyDescription: 'Reconcile succeeded' },
      tokens: { friendlyDescription: 'Reconcile succeeded' },
    };
    for (const [name, want] of Object.entries(expectedExports)) {
      await eventually(`status of SecretExport bad-src/${name}`, async () => {
        const exportedStatus = await exportStatus('bad-src', name);
        assert.equal(exportedStatus?.friendlyDescription, want.friendlyDescription);
        assert.equal(exportedStatus?.conditions?.length, 1);
        const c = exportedStatus.conditions[0]!;
        assert.equal(c.type, want.message ? 'ReconcileFailed' : 'ReconcileSucceeded');
        assert.equal(c.status, 'True');
        assert.equal(c.message, want.message);
      });
    }
    // The status annotation names sources, registries and fields, never a credential value.
    assert.doesNotMatch(filled.status ?? '', /"(?:p|pa|pb|p2|idt|rt)"/);

    await eventually('RegistryConflict events on the placeholder', async () => {
      const events = (await eventsAbout(env.client, 'bad-p', 'Secret', 'creds')).filter(
        (e) => e.reason === 'RegistryConflict',
      );
      assert.ok(
        events.every((e) => e.type === 'Warning'),
        JSON.stringify(events.map((e) => e.type)),
      );
      assert.deepEqual([...new Set(events.map((e) => e.message))].sort(), [
        'Several exports give credentials for registry conflict.example.com: using bad-src/conflict-b, ignoring bad-src/conflict-a',
        'Several exports give credentials for registry docker.io: using bad-src/conflict-b, ignoring bad-src/conflict-a',
      ]);
    });
  });
});

describe('no churn', () => {
  test('once converged, the operator writes nothing, even when unrelated objects and namespace labels change or the operator restarts', async (t) => {
    const cleanup = cleanupAfter(t);
    await createNamespace(env.client, 'quiet-src');
    await createNamespace(env.client, 'quiet-a');
    await createNamespace(env.client, 'quiet-b');
    const started = env.audit.offset();
    // A steady state with everything the operator reports on: a failing export, a conflict,
    // a wrong-type placeholder and an import with its copy.
    const quiet = { auths: { 'quiet.example.com': { username: 'q', password: 'p' } } };
    await share(cleanup, 'quiet-src', 'creds', quiet, { toNamespaces: ['quiet-a', 'quiet-b'] });
    await share(
      cleanup,
      'quiet-src',
      'wild',
      { auths: { 'wild.example.com': { auth: b64('w:p') } } },
      {
        toNamespaces: ['*'],
      },
    );
    await share(cleanup, 'quiet-src', 'broken', '{"auths":[]}', { toNamespaces: ['quiet-a'] });
    const rival = { auths: { 'quiet.example.com': { username: 'r', password: 'p' } } };
    await share(cleanup, 'quiet-src', 'rival', rival, { toNamespaces: ['quiet-b'] });
    await env.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'quiet-src', name: 'token' },
      type: 'Opaque',
      data: { token: b64('t') },
    });
    await env.client.create(SecretExports, secretExport('quiet-src', 'token', { toNamespaces: ['quiet-b'] }));
    cleanup.push([SecretExports, 'quiet-src', 'token']);
    await env.client.create(SecretImports, secretImport('quiet-b', 'token', 'quiet-src'));
    await env.client.create(ConfigMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { namespace: 'quiet-a', name: 'unrelated' },
      data: { a: '1' },
    } satisfies V1ConfigMap);
    await env.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'quiet-a', name: 'opaque', annotations: { [IMAGE_PULL_SECRET]: '' } },
      type: 'Opaque',
      data: { a: b64('1') },
    });
    for (const ns of ['quiet-a', 'quiet-b']) await env.client.create(Secrets, placeholderSecret(ns, 'creds'));

    const wild = { auth: b64('w:p') };
    await expectPlaceholder(
      env.client,
      'quiet-a',
      'creds',
      auths({ 'quiet.example.com': userPass('q', 'p'), 'wild.example.com': wild }),
      succeededStatus(['quiet-src/creds', 'quiet-src/wild'], {
        skipped: [{ source: 'quiet-src/broken', reason: 'expected "auths" to be an object, got array' }],
      }),
    );
    await expectPlaceholder(
      env.client,
      'quiet-b',
      'creds',
      auths({ 'quiet.example.com': userPass('r', 'p'), 'wild.example.com': wild }),
      succeededStatus(['quiet-src/creds', 'quiet-src/rival', 'quiet-src/wild'], {
        conflicts: [
          { registry: 'quiet.example.com', winner: 'quiet-src/rival', losers: ['quiet-src/creds'] },
        ],
      }),
    );
    await eventually('the wrong-type placeholder to be marked', async () => {
      const s = await env.client.get<V1Secret>(Secrets, 'quiet-a', 'opaque');
      assert.equal(s?.metadata?.annotations?.[STATUS], WRONG_TYPE_STATUS);
    });
    await eventually('the copy of the import', async () => {
      const s = await env.client.get<V1Secret>(Secrets, 'quiet-b', 'token');
      assert.deepEqual(s?.data, { token: b64('t') });
      const imp = await env.client.get<SecretImport>(SecretImports, 'quiet-b', 'token');
      assert.equal(imp?.status?.friendlyDescription, 'Reconcile succeeded');
    });
    const exportNames = ['broken', 'creds', 'rival', 'token', 'wild'];
    for (const name of exportNames) {
      await eventually(`SecretExport quiet-src/${name} reconciled`, async () => {
        const status = await exportStatus('quiet-src', name);
        assert.equal(
          status?.conditions?.[0]?.type,
          name === 'broken' ? 'ReconcileFailed' : 'ReconcileSucceeded',
        );
      });
    }
    // The operator's writes do show up under its own user (so counting zero below means something).
    const filled = env
      .operatorWritesSince(started)
      .filter((e) => e.objectRef?.resource === 'secrets' && e.objectRef.namespace === 'quiet-a');
    assert.ok(filled.length >= 1, 'no write of the operator to quiet-a/creds in the audit log');
    await waitForOperatorIdle(env);

    const versionsOf = async () => {
      const rv = async (rt: ResourceType, namespace: string, name: string) =>
        `${rt.plural} ${namespace}/${name}@${(await env.client.get(rt, namespace, name))?.metadata?.resourceVersion}`;
      return [
        await rv(Secrets, 'quiet-a', 'creds'),
        await rv(Secrets, 'quiet-b', 'creds'),
        await rv(Secrets, 'quiet-a', 'opaque'),
        await rv(Secrets, 'quiet-b', 'token'),
        await rv(SecretImports, 'quiet-b', 'token'),
        ...(await Promise.all(exportNames.map((n) => rv(SecretExports, 'quiet-src', n)))),
      ];
    };
    const before = await versionsOf();
    const offset = env.audit.offset();
    // Harmless changes: an unrelated ConfigMap relabelled, a namespace label and annotation no export looks at.
    await env.client.mergePatch(ConfigMaps, 'quiet-a', 'unrelated', {
      metadata: { labels: { touched: 'yes' } },
    });
    await env.client.mergePatch(Namespaces, undefined, 'quiet-b', {
      metadata: { labels: { touched: 'yes' }, annotations: { note: 'nothing to do' } },
    });
    await sleep(5000);
    const writes = env.operatorWritesSince(offset);
    assert.deepEqual(writes.map(describeAudit), [], 'the operator wrote while nothing it manages changed');
    assert.deepEqual(await versionsOf(), before);
    // The test's own writes are in the same window of the log.
    const own = env.audit.since(offset).filter((e) => e.user.username === 'admin');
    assert.ok(
      own.length >= 2,
      `the test's own patches are missing from the audit log: ${own.map(describeAudit).join(', ')}`,
    );

    // A fresh operator (empty caches, everything reconciled from its first list) finds nothing to write.
    const restarted = env.audit.offset();
    await env.restartOperator();
    await sleep(5000);
    assert.deepEqual(
      env.operatorWritesSince(restarted).map(describeAudit),
      [],
      'the restarted operator rewrote converged objects',
    );
    assert.deepEqual(await versionsOf(), before);
  });
});

describe('oversized', () => {
  test('merged credentials over the 1 MiB Secret limit leave the data as it was, report ReconcileFailed and a PlaceholderTooLarge event once, and settle', async (t) => {
    const cleanup = cleanupAfter(t);
    for (const ns of ['big-src', 'big-p', 'big-canary']) await createNamespace(env.client, ns);
    const small = auths({ 'small.example.com': userPass('s', 'p') });
    await share(cleanup, 'big-src', 'small', small, { toNamespaces: ['big-p'] });
    await env.client.create(Secrets, placeholderSecret('big-p', 'pull'));
    await expectPlaceholder(env.client, 'big-p', 'pull', small, succeededStatus(['big-src/small']));

    // Two sources of ~600 KB each: each fits in a Secret, their merge does not.
    const bulky = (prefix: string) => ({
      auths: Object.fromEntries(
        Array.from({ length: 6 }, (_, i) => [
          `${prefix}${i}.example.com`,
          { auth: b64(`u:${'p'.repeat(75_000)}`) },
        ]),
      ),
    });
    const registriesOf = (state: PlaceholderState) =>
      Object.keys((state.config as { auths?: Record<string, unknown> }).auths ?? {}).sort();
    const withA = [...Object.keys(bulky('a').auths), 'small.example.com'].sort();
    await share(cleanup, 'big-src', 'bulky-a', bulky('a'), { toNamespaces: ['big-p'] });
    let before = '';
    await eventually('the placeholder to hold small and bulky-a', async () => {
      const state = await readPlaceholder(env.client, 'big-p', 'pull');
      assert.equal(state.status, succeededStatus(['big-src/bulky-a', 'big-src/small']));
      assert.deepEqual(registriesOf(state), withA);
      before = state.raw;
    });
    await share(cleanup, 'big-src', 'bulky-b', bulky('b'), { toNamespaces: ['big-p'] });

    const tooLarge =
      /^merged credentials are \d+ bytes, over the 1 MiB Secret limit \(1048576 bytes\), from 3 exported Secrets; the placeholder keeps its previous data until the exports reaching namespace big-p give fewer credentials$/;
    let message = '';
    await eventually('the ReconcileFailed status annotation', async () => {
      const state = await readPlaceholder(env.client, 'big-p', 'pull');
      const status = JSON.parse(state.status ?? '{}') as {
        conditions?: Array<{ type: string; status: string; message?: string }>;
      };
      assert.equal(status.conditions?.length, 1, state.status);
      const [condition] = status.conditions;
      assert.equal(condition!.type, 'ReconcileFailed');
      assert.equal(condition!.status, 'True');
      assert.match(condition!.message ?? '', tooLarge);
      message = condition!.message!;
      assert.ok(state.raw === before, 'the data is left as it was');
    });
    await eventually('one PlaceholderTooLarge event', async () => {
      const events = await eventsAbout(env.client, 'big-p', 'Secret', 'pull');
      assert.deepEqual(
        events.filter((e) => e.reason === 'PlaceholderTooLarge').map((e) => [e.type, e.message]),
        [['Warning', message]],
      );
    });

    // Other namespaces are served while the oversized placeholder is present.
    await share(cleanup, 'big-src', 'canary', small, { toNamespaces: ['big-canary'] });
    await env.client.create(Secrets, placeholderSecret('big-canary', 'pull'));
    await expectPlaceholder(env.client, 'big-canary', 'pull', small, succeededStatus(['big-src/canary']), {
      timeoutMs: 1000,
    });

    // A permanent failure: no retries, no writes until an input changes.
    await waitForOperatorIdle(env, 1000, 10_000).catch(() => undefined);
    const settled = env.audit.offset();
    await sleep(3000);
    const writes = env.operatorWritesSince(settled).filter((e) => e.objectRef?.namespace === 'big-p');
    assert.deepEqual(writes.map(describeAudit), [], 'the operator kept writing in big-p');

    // Once the inputs fit again, the placeholder fills.
    await env.client.delete(SecretExports, 'big-src', 'bulky-b');
    await eventually(
      'the placeholder to fill once the merge fits',
      async () => {
        const state = await readPlaceholder(env.client, 'big-p', 'pull');
        assert.equal(state.status, succeededStatus(['big-src/bulky-a', 'big-src/small']));
        assert.ok(state.raw === before, 'small and bulky-a, as before bulky-b came');
      },
      { timeoutMs: AT_ONCE_MS },
    );
  });
});

describe('many problems', () => {
  test('a source with 50 unusable registries gives 10 SourceSkipped events and one that counts the rest, and the placeholder still fills', async (t) => {
    const cleanup = cleanupAfter(t);
    await createNamespace(env.client, 'many-src');
    await createNamespace(env.client, 'many-p');
    const entries: Record<string, unknown> = { 'good.example.com': { auth: b64('u:p') } };
    for (let i = 0; i < 50; i++)
      entries[`bad${String(i).padStart(2, '0')}.example.com`] = { email: 'a@example.com' };
    await share(cleanup, 'many-src', 'creds', { auths: entries }, { toNamespaces: ['many-p'] });
    await env.client.create(Secrets, placeholderSecret('many-p', 'pull'));
    await eventually('the placeholder to fill', async () => {
      const state = await readPlaceholder(env.client, 'many-p', 'pull');
      assert.deepEqual(Object.keys((state.config as { auths?: object }).auths ?? {}), ['good.example.com']);
      const status = JSON.parse(state.status ?? '{}') as { skipped?: unknown[] };
      assert.equal(status.skipped?.length, 50);
    });
    await eventually('11 SourceSkipped events', async () => {
      const skipped = (await eventsAbout(env.client, 'many-p', 'Secret', 'pull')).filter(
        (e) => e.reason === 'SourceSkipped',
      );
      assert.equal(skipped.length, 11, skipped.map((e) => e.message).join('\n'));
      assert.ok(
        skipped.some(
          (e) =>
            e.message ===
            '40 more like these are not reported as events; see the secretgen.carvel.dev/status annotation',
        ),
      );
    });
  });
});
