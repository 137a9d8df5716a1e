// The Pod admission webhook end to end: a real control plane (Pods are
// admitted and stored without a kubelet) and the operator in-process, serving
// the webhook on loopback with --webhook-url, as outside a cluster.
//
// Tests run in order: the outage and the certificate rotation come last, as
// they stop and restart the operator.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import type { ImagePullSecretPolicy } from '../generated/index.js';
import { startOperator } from '../src/main.js';
import { ImagePullSecretPolicies } from '../src/pods/webhook/index.js';
import { MutatingWebhookConfigurations } from '../src/pods/webhook/controller.js';
import type { MutatingWebhookConfiguration } from '../src/pods/webhook/configuration.js';
import type { ResourceType } from '../src/runtime/kube-client.js';
import { createLogger } from '../src/runtime/logger.js';
import { NamespacesResource, SecretsResource } from '../src/shared-informers.js';
import { freePort } from './harness/control-plane.js';
import { startOperatorEnv, type OperatorEnv } from './harness/operator-env.js';
import { waitFor } from './harness/wait.js';

const Pods: ResourceType = { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true };
const ServiceAccounts: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'serviceaccounts',
  kind: 'ServiceAccount',
  namespaced: true,
};
const OPERATOR_USER = 'webhook-operator';
const SELECTED = { 'registry-access': 'true' };

let env: OperatorEnv;
let port: number;
let url: string;
let podCounter = 0;

const pod = (namespace: string, spec: Partial<V1Pod['spec']> = {}): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: `p${++podCounter}`, namespace },
  spec: { containers: [{ name: 'app', image: 'registry.example.invalid/app:1' }], ...spec },
});

const pullSecrets = (p: V1Pod | undefined) => (p?.spec?.imagePullSecrets ?? []).map((s) => s.name);

async function createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  await env.client.create(NamespacesResource, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels },
  });
}

/** Creates the Pod and returns it as stored (after admission). */
const createPod = (p: V1Pod) => env.client.create<V1Pod>(Pods, p);

function policy(name: string, spec: ImagePullSecretPolicy['spec']): ImagePullSecretPolicy {
  return { apiVersion: 'regcred.dev/v1alpha1', kind: 'ImagePullSecretPolicy', metadata: { name }, spec };
}

const webhookConfiguration = () =>
  env.client.get<MutatingWebhookConfiguration>(MutatingWebhookConfigurations, undefined, 'regcred-operator');

/** The certificate the webhook presents, verified against `ca`. */
function servedCertificate(ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: undefined }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (cert) resolve(cert);
      else reject(new Error('no certificate'));
    });
    socket.on('error', reject);
  });
}

const caBundleOf = (c: MutatingWebhookConfiguration | undefined) =>
  Buffer.from(c?.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString();

before(async () => {
  port = await freePort();
  url = `https://127.0.0.1:${port}/mutate-pods`;
  env = await startOperatorEnv({
    operatorUser: OPERATOR_USER,
    config: { webhookPort: port, webhookUrl: url, controllers: ['placeholder'] },
  });
  await env.client.create(
    ImagePullSecretPolicies,
    policy('teams', { secretName: 'regcred', namespaceSelector: { matchLabels: SELECTED } }),
  );
  // The policy has reached the webhook's cache once a Pod in a selected namespace gets the entry.
  await createNamespace('probe', SELECTED);
  await waitFor('default ServiceAccount in probe', () => env.client.get(ServiceAccounts, 'probe', 'default'));
  await waitFor(
    'a probe Pod gets the entry',
    async () => pullSecrets(await createPod(pod('probe'))).includes('regcred'),
    { timeoutMs: 30_000, intervalMs: 200 },
  );
});

after(async () => {
  await env?.stop();
});

describe('Pod admission webhook', () => {
  test('the operator configures the webhook with its own CA: Pods CREATE, Ignore on failure, 2 s', async () => {
    const config = await webhookConfiguration();
    const hook = config?.webhooks?.[0];
    assert.ok(hook);
    assert.equal(hook.clientConfig.url, url);
    assert.equal(hook.failurePolicy, 'Ignore');
    assert.equal(hook.timeoutSeconds, 2);
    assert.equal(hook.sideEffects, 'None');
    assert.deepEqual(hook.admissionReviewVersions, ['v1']);
    assert.deepEqual(hook.rules, [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ]);
    assert.deepEqual(hook.namespaceSelector, {
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-system', 'regcred-operator'],
        },
      ],
    });
    const secret = await env.client.get<V1Secret>(
      SecretsResource,
      'regcred-operator',
      'regcred-operator-webhook-tls',
    );
    assert.equal(secret?.type, 'kubernetes.io/tls');
    assert.deepEqual(Object.keys(secret?.data ?? {}).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    // The served certificate verifies against the caBundle, for the IP of the URL.
    const served = await servedCertificate(caBundleOf(config));
    assert.ok(served.checkIP('127.0.0.1'));
    assert.match(served.subjectAltName ?? '', /DNS:regcred-operator-webhook\.regcred-operator\.svc/);
  });

  test('race: a Pod created right after its namespace and ServiceAccount gets the entry', async () => {
    for (let i = 0; i < 5; i++) {
      const ns = `race-sa-${i}`;
      await createNamespace(ns, SELECTED);
      await env.client.create(ServiceAccounts, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'builder', namespace: ns },
      });
      const stored = await createPod(pod(ns, { serviceAccountName: 'builder' }));
      assert.deepEqual(pullSecrets(stored), ['regcred'], ns);
    }
    for (let i = 0; i < 3; i++) {
      const ns = `race-default-${i}`;
      await createNamespace(ns, SELECTED);
      // The API server refuses Pods until the default ServiceAccount exists; create one at that moment.
      const stored = await waitFor(`Pod accepted in ${ns}`, () => createPod(pod(ns)).catch(() => undefined), {
        intervalMs: 10,
      });
      assert.deepEqual(pullSecrets(stored), ['regcred'], ns);
    }
  });

  test('entries of others are kept in their order; a Pod that has the entry is not changed', async () => {
    await createNamespace('keep', SELECTED);
    await env.client.create(ServiceAccounts, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'sa', namespace: 'keep' },
    });
    const appended = await createPod(
      pod('keep', { serviceAccountName: 'sa', imagePullSecrets: [{ name: 'b' }, { name: 'a' }] }),
    );
    assert.deepEqual(pullSecrets(appended), ['b', 'a', 'regcred']);
    const present = await createPod(
      pod('keep', { serviceAccountName: 'sa', imagePullSecrets: [{ name: 'regcred' }, { name: 'z' }] }),
    );
    assert.deepEqual(pullSecrets(present), ['regcred', 'z']);
  });

  test('a Pod in a namespace no policy selects is stored untouched', async () => {
    await createNamespace('plain');
    await waitFor('default ServiceAccount in plain', () =>
      env.client.get(ServiceAccounts, 'plain', 'default'),
    );
    const stored = await createPod(pod('plain'));
    assert.equal(stored.spec?.imagePullSecrets, undefined);
  });

  test('a {} policy reaches every namespace but kube-system', async () => {
    await env.client.create(ImagePullSecretPolicies, policy('everywhere', { secretName: 'everywhere' }));
    try {
      await waitFor(
        'the {} policy reached the webhook',
        async () => pullSecrets(await createPod(pod('plain'))).includes('everywhere'),
        { intervalMs: 200 },
      );
      await waitFor('default ServiceAccount in kube-system', () =>
        env.client.get(ServiceAccounts, 'kube-system', 'default'),
      );
      const system = await createPod(pod('kube-system'));
      assert.equal(system.spec?.imagePullSecrets, undefined);
    } finally {
      await env.client.delete(ImagePullSecretPolicies, undefined, 'everywhere');
    }
  });

  test('nothing is rewritten at rest, and a manual change to the configuration is put back', async () => {
    const offset = env.audit.offset();
    await new Promise((r) => setTimeout(r, 3000));
    const writes = env
      .operatorWritesSince(offset)
      .filter((e) => ['mutatingwebhookconfigurations', 'secrets'].includes(e.objectRef?.resource ?? ''));
    assert.deepEqual(writes, [], 'no write while nothing changed');
    await env.cluster.kubectl([
      'patch',
      'mutatingwebhookconfiguration',
      'regcred-operator',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"},{"op":"replace","path":"/webhooks/0/timeoutSeconds","value":30}]',
    ]);
    const restored = await waitFor('configuration restored', async () => {
      const c = await webhookConfiguration();
      return c?.webhooks?.[0]?.failurePolicy === 'Ignore' ? c : undefined;
    });
    assert.equal(restored.webhooks?.[0]?.timeoutSeconds, 2);
  });

  test('webhook down: Pods are still created (failurePolicy Ignore), unchanged', async () => {
    await env.operator.stop();
    try {
      const started = Date.now();
      const stored = await createPod(pod('probe'));
      assert.equal(stored.spec?.imagePullSecrets, undefined);
      assert.ok(Date.now() - started < 10_000, 'within the webhook timeout, not the client one');
    } finally {
      env.operator = await startOperator(env.config, createLogger('warn'));
    }
    await waitFor(
      'the restarted webhook adds the entry again',
      async () => pullSecrets(await createPod(pod('probe'))).includes('regcred'),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  });

  test('certificate rotation: short-lived certificates are renewed, Pods admitted throughout', async () => {
    const before = await webhookConfiguration();
    const firstCa = caBundleOf(before);
    const firstServed = (await servedCertificate(firstCa)).fingerprint256;
    await env.operator.stop();
    // Serving certificates for 30 s (renewed every 20 s), the CA for 45 s (renewed after 30 s).
    env.config.webhookCertValidityMs = 30_000;
    env.config.webhookCaValidityMs = 45_000;
    env.operator = await startOperator(env.config, createLogger('warn'));
    const served = new Set<string>([firstServed]);
    const bundles = new Set<string>([firstCa]);
    const unmutated: string[] = [];
    const deadline = Date.now() + 75_000;
    let pods = 0;
    while (Date.now() < deadline) {
      const stored = await createPod(pod('probe'));
      pods++;
      if (!pullSecrets(stored).includes('regcred')) unmutated.push(stored.metadata!.name!);
      const bundle = caBundleOf(await webhookConfiguration());
      bundles.add(bundle);
      const cert = await servedCertificate(bundle).catch(() => undefined);
      if (cert) served.add(cert.fingerprint256);
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.ok(served.size >= 3, `served certificates renewed: ${served.size} seen`);
    assert.ok(bundles.size >= 3, `caBundle updated for the new CAs: ${bundles.size} seen`);
    assert.deepEqual(unmutated, [], `all ${pods} Pods admitted with the entry across the renewals`);
    const last = new X509Certificate(
      Buffer.from(
        (await env.client.get<V1Secret>(SecretsResource, 'regcred-operator', 'regcred-operator-webhook-tls'))!
          .data!['tls.crt']!,
        'base64',
      ),
    );
    assert.ok(
      Date.parse(last.validTo) - Date.now() <= 31_000,
      'the serving certificate follows the shorter lifetime',
    );
  });
});
