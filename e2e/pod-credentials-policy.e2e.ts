// ImagePullSecretPolicy end to end: a real control plane (with the
// controller-manager, which creates each namespace's `default`
// ServiceAccount) and the operator in-process with every controller and a
// 10-minute resync (nothing here may rely on it).
//
// Each test selects namespaces by a label of its own, so policies of
// different tests never select the same namespaces.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Namespace, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import {
  ImagePullSecretPolicyApiVersion,
  ImagePullSecretPolicyKind,
  type ImagePullSecretPolicy,
  type ImagePullSecretPolicySpec,
} from '../generated/index.js';
import {
  ImagePullSecretPolicies,
  POLICY_FINALIZER,
} from '../src/pods/controllers/image-pull-secret-policy.js';
import { POLICY_LABEL } from '../src/pods/placeholder-ownership.js';
import { ADDED_ENTRIES_ANNOTATION } from '../src/pods/service-account-entries.js';
import { ServiceAccountsResource as ServiceAccounts } from '../src/shared-informers.js';
import {
  auths,
  ConfigMaps,
  createNamespace,
  DOCKER_CONFIG_JSON,
  eventsAbout,
  eventually,
  IMAGE_PULL_SECRET,
  Namespaces,
  readPlaceholder,
  Secrets,
  shareSecret,
  sleep,
  startSharingEnv,
  userPass,
  waitForOperatorIdle,
  type SharingEnv,
} from './fixtures/sharing/env.js';

let env: SharingEnv;

before(async () => {
  env = await startSharingEnv();
  // One credential exported to every namespace: it fills every placeholder the policies create.
  await createNamespace(env.client, 'creds');
  await shareSecret(
    env.client,
    'creds',
    'registry',
    auths({ 'registry.policy.test': { username: 'robot', password: 'hunter2' } }),
    { toNamespaces: ['*'] },
  );
});

after(async () => {
  await env?.stop();
});

const FILLED = { auths: { 'registry.policy.test': userPass('robot', 'hunter2') } };

function policy(name: string, spec: ImagePullSecretPolicySpec): ImagePullSecretPolicy {
  return {
    apiVersion: ImagePullSecretPolicyApiVersion,
    kind: ImagePullSecretPolicyKind,
    metadata: { name },
    spec,
  };
}

/** Creates a policy; it is deleted (and its finalizer awaited) when the test ends. */
async function createPolicy(t: TestContext, name: string, spec: ImagePullSecretPolicySpec): Promise<void> {
  await env.client.create(ImagePullSecretPolicies, policy(name, spec));
  t.after(async () => {
    await env.client.delete(ImagePullSecretPolicies, undefined, name);
    await eventually(`policy ${name} gone`, async () => {
      assert.equal(await env.client.get(ImagePullSecretPolicies, undefined, name), undefined);
    });
  });
}

async function getPolicy(name: string): Promise<ImagePullSecretPolicy> {
  const p = await env.client.get<ImagePullSecretPolicy>(ImagePullSecretPolicies, undefined, name);
  assert.ok(p, `policy ${name} does not exist`);
  return p;
}

async function serviceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined> {
  return env.client.get<V1ServiceAccount>(ServiceAccounts, namespace, name);
}

async function pullSecretsOf(namespace: string, name: string): Promise<string[] | undefined> {
  const sa = await serviceAccount(namespace, name);
  assert.ok(sa, `ServiceAccount ${namespace}/${name} does not exist`);
  return sa.imagePullSecrets?.map((e) => e.name ?? '');
}

async function createServiceAccount(
  namespace: string,
  name: string,
  imagePullSecrets?: string[],
  labels?: Record<string, string>,
): Promise<void> {
  await env.client.create<V1ServiceAccount>(ServiceAccounts, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { namespace, name, ...(labels ? { labels } : {}) },
    ...(imagePullSecrets ? { imagePullSecrets: imagePullSecrets.map((n) => ({ name: n })) } : {}),
  });
}

async function expectPullSecrets(namespace: string, name: string, want: string[] | undefined): Promise<void> {
  await eventually(
    `ServiceAccount ${namespace}/${name} imagePullSecrets = ${JSON.stringify(want)}`,
    async () => {
      assert.deepEqual(await pullSecretsOf(namespace, name), want);
    },
  );
}

async function expectNoSecret(namespace: string, name: string): Promise<void> {
  await eventually(`no Secret ${namespace}/${name}`, async () => {
    assert.equal(await env.client.get(Secrets, namespace, name), undefined);
  });
}

async function labelNamespace(name: string, labels: Record<string, string | null>): Promise<void> {
  await env.client.mergePatch<V1Namespace>(Namespaces, undefined, name, { metadata: { labels } });
}

describe('ImagePullSecretPolicy', () => {
  test('selected namespaces get a filled placeholder, and their default and later ServiceAccounts list it; others get nothing', async (t) => {
    await createNamespace(env.client, 'sel-a', { labels: { 'access-1': 'true' } });
    await createNamespace(env.client, 'sel-b');
    await createPolicy(t, 'fill', {
      secretName: 'regcred',
      namespaceSelector: { matchLabels: { 'access-1': 'true' } },
    });

    // The placeholder: its type, annotation and label, filled by the placeholder controller from the export.
    await eventually('placeholder sel-a/regcred filled', async () => {
      const state = await readPlaceholder(env.client, 'sel-a', 'regcred');
      assert.equal(state.secret.type, DOCKER_CONFIG_JSON);
      assert.equal(state.secret.metadata?.annotations?.[IMAGE_PULL_SECRET], '');
      assert.equal(state.secret.metadata?.labels?.[POLICY_LABEL], 'fill');
      assert.deepEqual(state.config, FILLED);
    });
    // The default ServiceAccount, created by the controller-manager.
    await expectPullSecrets('sel-a', 'default', ['regcred']);
    const sa = await serviceAccount('sel-a', 'default');
    assert.equal(sa?.metadata?.annotations?.[ADDED_ENTRIES_ANNOTATION], '{"fill":"regcred"}');
    // A ServiceAccount created later, with an entry of its own kept first.
    await createServiceAccount('sel-a', 'builder', ['mine']);
    await expectPullSecrets('sel-a', 'builder', ['mine', 'regcred']);
    // A namespace created (or labelled) afterwards is picked up at once.
    await createNamespace(env.client, 'sel-c', { labels: { 'access-1': 'true' } });
    await expectPullSecrets('sel-c', 'default', ['regcred']);

    await eventually('status counts', async () => {
      const p = await getPolicy('fill');
      assert.equal(p.status?.conditions?.[0]?.type, 'ReconcileSucceeded');
      assert.equal(p.status?.friendlyDescription, 'Reconcile succeeded');
      assert.equal(p.status?.observedGeneration, p.metadata?.generation);
      assert.equal(p.status?.namespaces, 2);
      assert.equal(p.status?.serviceAccounts, 3);
      assert.ok(p.metadata?.finalizers?.includes(POLICY_FINALIZER));
    });
    // Unselected: no placeholder, default ServiceAccount untouched.
    assert.equal(await env.client.get(Secrets, 'sel-b', 'regcred'), undefined);
    assert.equal(await pullSecretsOf('sel-b', 'default'), undefined);

    // Converged: no write while nothing changes.
    await waitForOperatorIdle(env, 1000);
    const offset = env.audit.offset();
    await sleep(2000);
    assert.deepEqual(env.operatorWritesSince(offset), []);
  });

  test('a Secret of that name the policy did not create is left alone and reported; other namespaces proceed', async (t) => {
    await createNamespace(env.client, 'conf-a', { labels: { 'access-2': 'true' } });
    await createNamespace(env.client, 'conf-b', { labels: { 'access-2': 'true' } });
    const foreign = await env.client.create<V1Secret>(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'conf-a', name: 'regcred' },
      type: 'Opaque',
      data: { token: Buffer.from('keep me').toString('base64') },
    });
    await createPolicy(t, 'conflicted', {
      secretName: 'regcred',
      namespaceSelector: { matchLabels: { 'access-2': 'true' } },
    });

    await expectPullSecrets('conf-b', 'default', ['regcred']);
    const message =
      'Secret regcred exists in 1 selected namespace and was not created by this policy; it is left alone there ' +
      '(no placeholder, no ServiceAccount entry): conf-a';
    await eventually('conflict status', async () => {
      const p = await getPolicy('conflicted');
      assert.equal(p.status?.conditions?.[0]?.type, 'ReconcileFailed');
      assert.equal(p.status?.conditions?.[0]?.reason, 'SecretConflict');
      assert.equal(p.status?.usefulErrorMessage, message);
      assert.equal(p.status?.namespaces, 2);
      assert.equal(p.status?.serviceAccounts, 1);
    });
    await eventually('SecretConflict event', async () => {
      const events = await eventsAbout(env.client, 'default', 'ImagePullSecretPolicy', 'conflicted');
      assert.ok(
        events.some((e) => e.type === 'Warning' && e.reason === 'SecretConflict' && e.message === message),
        JSON.stringify(events.map((e) => [e.reason, e.message])),
      );
    });
    const after = await env.client.get<V1Secret>(Secrets, 'conf-a', 'regcred');
    assert.equal(
      after?.metadata?.resourceVersion,
      foreign.metadata?.resourceVersion,
      'foreign Secret untouched',
    );
    assert.equal(await pullSecretsOf('conf-a', 'default'), undefined);

    // The conflict clears once the foreign Secret goes: the policy creates its own.
    await env.client.delete(Secrets, 'conf-a', 'regcred');
    await expectPullSecrets('conf-a', 'default', ['regcred']);
    await eventually('conflict cleared', async () => {
      const p = await getPolicy('conflicted');
      assert.equal(p.status?.conditions?.[0]?.type, 'ReconcileSucceeded');
      assert.equal(p.status?.serviceAccounts, 2);
    });
  });

  test("unselecting a namespace and deleting the policy remove exactly what it added; the user's own entries stay", async (t) => {
    await createNamespace(env.client, 'rm-a', { labels: { 'access-3': 'true' } });
    await createNamespace(env.client, 'rm-b', { labels: { 'access-3': 'true' } });
    // Listed by the user before the policy: never recorded, never removed.
    await createServiceAccount('rm-a', 'own', ['regcred', 'other']);
    await createServiceAccount('rm-a', 'mixed', ['x']);
    await createServiceAccount('rm-b', 'mixed', ['x']);
    const ownBefore = (await serviceAccount('rm-a', 'own'))!.metadata!.resourceVersion;
    const userSecret = await env.client.create<V1Secret>(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'rm-a', name: 'unrelated' },
      type: 'Opaque',
      data: {},
    });
    await createPolicy(t, 'removal', {
      secretName: 'regcred',
      namespaceSelector: { matchLabels: { 'access-3': 'true' } },
    });

    await expectPullSecrets('rm-a', 'mixed', ['x', 'regcred']);
    await expectPullSecrets('rm-a', 'default', ['regcred']);
    await expectPullSecrets('rm-b', 'mixed', ['x', 'regcred']);
    await waitForOperatorIdle(env, 1000);
    const own = await serviceAccount('rm-a', 'own');
    assert.equal(
      own?.metadata?.resourceVersion,
      ownBefore,
      'a ServiceAccount already listing the entry is not written',
    );
    assert.equal(own?.metadata?.annotations?.[ADDED_ENTRIES_ANNOTATION], undefined);

    // Unselect rm-a by relabelling it.
    await labelNamespace('rm-a', { 'access-3': null });
    await expectNoSecret('rm-a', 'regcred');
    await expectPullSecrets('rm-a', 'mixed', ['x']);
    await expectPullSecrets('rm-a', 'default', undefined);
    assert.deepEqual(await pullSecretsOf('rm-a', 'own'), ['regcred', 'other']);
    assert.equal(
      (await serviceAccount('rm-a', 'mixed'))?.metadata?.annotations?.[ADDED_ENTRIES_ANNOTATION],
      undefined,
    );
    assert.ok(await env.client.get(Secrets, 'rm-a', 'unrelated'), 'an unrelated Secret stays');
    assert.equal(
      (await env.client.get<V1Secret>(Secrets, 'rm-a', 'unrelated'))?.metadata?.resourceVersion,
      userSecret.metadata?.resourceVersion,
    );
    // rm-b is still selected.
    assert.deepEqual(await pullSecretsOf('rm-b', 'mixed'), ['x', 'regcred']);

    // Deleting the policy: its finalizer holds it until rm-b is clean too.
    await env.client.delete(ImagePullSecretPolicies, undefined, 'removal');
    await eventually('policy removal gone', async () => {
      assert.equal(await env.client.get(ImagePullSecretPolicies, undefined, 'removal'), undefined);
    });
    // Everything was removed before the finalizer went.
    assert.equal(await env.client.get(Secrets, 'rm-b', 'regcred'), undefined);
    assert.deepEqual(await pullSecretsOf('rm-b', 'mixed'), ['x']);
    assert.equal(await pullSecretsOf('rm-b', 'default'), undefined);
    assert.deepEqual(await pullSecretsOf('rm-a', 'own'), ['regcred', 'other']);
  });

  test('deleting a policy does not wait for a namespace that is being deleted', async (t) => {
    await createNamespace(env.client, 'term-a', { labels: { 'access-5': 'true' } });
    await createPolicy(t, 'terminating', {
      secretName: 'regcred',
      namespaceSelector: { matchLabels: { 'access-5': 'true' } },
    });
    await expectPullSecrets('term-a', 'default', ['regcred']);
    // A ConfigMap with a finalizer nobody removes keeps the namespace Terminating.
    await env.client.create(ConfigMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { namespace: 'term-a', name: 'hold', finalizers: ['e2e.regcred.dev/hold'] },
    });
    t.after(async () => {
      await env.client.jsonPatch(ConfigMaps, 'term-a', 'hold', [
        { op: 'remove', path: '/metadata/finalizers' },
      ]);
    });
    await env.client.delete(Namespaces, undefined, 'term-a');
    await eventually('term-a terminating', async () => {
      const ns = await env.client.get<V1Namespace>(Namespaces, undefined, 'term-a');
      assert.equal(ns?.status?.phase, 'Terminating');
    });
    await env.client.delete(ImagePullSecretPolicies, undefined, 'terminating');
    await eventually('policy terminating gone', async () => {
      assert.equal(await env.client.get(ImagePullSecretPolicies, undefined, 'terminating'), undefined);
    });
  });

  test('two policies on one namespace each manage their own entry; the same secretName conflicts with the first owner', async (t) => {
    await createNamespace(env.client, 'two', { labels: { 'access-4': 'true' } });
    await createServiceAccount('two', 'ci', undefined, { role: 'ci' });
    await createServiceAccount('two', 'ci-old', ['own'], { role: 'ci' });
    await createPolicy(t, 'first', {
      secretName: 'one',
      namespaceSelector: { matchLabels: { 'access-4': 'true' } },
    });
    await expectPullSecrets('two', 'default', ['one']);
    await createPolicy(t, 'second', {
      secretName: 'two',
      namespaceSelector: { matchLabels: { 'access-4': 'true' } },
      serviceAccountSelector: { matchLabels: { role: 'ci' } },
    });
    await expectPullSecrets('two', 'ci', ['one', 'two']);
    await expectPullSecrets('two', 'ci-old', ['own', 'one', 'two']);
    // A ServiceAccount that stops being selected loses only that policy's entry.
    await env.client.mergePatch(ServiceAccounts, 'two', 'ci-old', {
      metadata: { labels: { role: 'retired' } },
    });
    await expectPullSecrets('two', 'ci-old', ['own', 'one']);
    await createPolicy(t, 'third', {
      secretName: 'one',
      namespaceSelector: { matchLabels: { 'access-4': 'true' } },
    });
    await eventually('third reports the conflict with first', async () => {
      const p = await getPolicy('third');
      assert.equal(p.status?.conditions?.[0]?.reason, 'SecretConflict');
      assert.match(p.status?.usefulErrorMessage ?? '', /: two \(placeholder of policy first\)$/);
    });
    for (const name of ['one', 'two']) {
      const state = await readPlaceholder(env.client, 'two', name);
      assert.equal(state.secret.metadata?.labels?.[POLICY_LABEL], name === 'one' ? 'first' : 'second');
    }
    // The ServiceAccount selector: default is not a CI account.
    assert.deepEqual(await pullSecretsOf('two', 'default'), ['one']);
    assert.equal(
      (await serviceAccount('two', 'ci'))?.metadata?.annotations?.[ADDED_ENTRIES_ANNOTATION],
      '{"first":"one","second":"two"}',
    );

    // Deleting second removes only its entry and placeholder.
    await env.client.delete(ImagePullSecretPolicies, undefined, 'second');
    await expectPullSecrets('two', 'ci', ['one']);
    await expectNoSecret('two', 'two');
    assert.ok(await env.client.get(Secrets, 'two', 'one'));

    // Deleting first hands the name to third, which now owns it.
    await env.client.delete(ImagePullSecretPolicies, undefined, 'first');
    await eventually('third owns one', async () => {
      const secret = await env.client.get<V1Secret>(Secrets, 'two', 'one');
      assert.equal(secret?.metadata?.labels?.[POLICY_LABEL], 'third');
      const p = await getPolicy('third');
      assert.equal(p.status?.conditions?.[0]?.type, 'ReconcileSucceeded');
    });
    await expectPullSecrets('two', 'ci', ['one']);
    assert.equal(
      (await serviceAccount('two', 'ci'))?.metadata?.annotations?.[ADDED_ENTRIES_ANNOTATION],
      '{"third":"one"}',
    );
  });
});
