// The install manifests against a real API server: the plain manifests and the
// OLM bundle's CRDs are accepted, and the operator runs with exactly the RBAC
// of deploy/plain (its ServiceAccount's token, RBAC authorization on).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { join } from 'node:path';
import type { KubernetesObject, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import { defaultConfig } from '../src/config.js';
import { startOperator, type RunningOperator } from '../src/main.js';
import { LeasesResource } from '../src/runtime/leader-election.js';
import { createLogger } from '../src/runtime/logger.js';
import type { ImagePullSecretPolicy } from '../generated/index.js';
import { ImagePullSecretPolicies } from '../src/pods/controllers/image-pull-secret-policy.js';
import { SecretsResource, ServiceAccountsResource } from '../src/shared-informers.js';
import { REPO_ROOT, startTestCluster, type TestCluster } from './harness/cluster.js';
import { freePort } from './harness/control-plane.js';
import { waitFor } from './harness/wait.js';

let cluster: TestCluster;
let operator: RunningOperator | undefined;
let operatorLog = '';

before(async () => {
  cluster = await startTestCluster({ installCrds: false });
});

after(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('install manifests', () => {
  test('the OLM bundle CRDs, the objects embedded in its CSV, and the plain manifests are accepted', async () => {
    const manifests = join(REPO_ROOT, 'deploy', 'olm', 'bundle', 'manifests');
    // The bundle holds every CRD of crds/ under the same file name, beside the CSV and other objects.
    const crdFiles = readdirSync(join(REPO_ROOT, 'crds'));
    assert.deepEqual(
      crdFiles.filter((f) => !readdirSync(manifests).includes(f)),
      [],
      'CRDs of crds/ missing from the bundle',
    );
    for (const f of crdFiles) await cluster.kubectl(['apply', '-f', join(manifests, f)]);
    await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
    // No OLM here: check what OLM would create from the CSV with a server-side dry run.
    const csv = parse(
      readFileSync(join(manifests, 'regcred-operator.clusterserviceversion.yaml'), 'utf8'),
    ) as {
      spec: {
        install: {
          spec: {
            deployments: Array<{ name: string; spec: unknown }>;
            clusterPermissions: Array<{ rules: unknown }>;
            permissions: Array<{ rules: unknown }>;
          };
        };
      };
    };
    const install = csv.spec.install.spec;
    const embedded = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'olm-dry-run' } },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: install.deployments[0]!.name, namespace: 'default' },
        spec: install.deployments[0]!.spec,
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'olm-dry-run' },
        rules: install.clusterPermissions[0]!.rules,
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'olm-dry-run', namespace: 'default' },
        rules: install.permissions[0]!.rules,
      },
      {
        ...(parse(
          readFileSync(join(manifests, 'regcred-operator_policy_v1_poddisruptionbudget.yaml'), 'utf8'),
        ) as { metadata: Record<string, unknown> }),
        metadata: { name: 'regcred-operator', namespace: 'default' },
      },
    ];
    const dryRun = await cluster.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      embedded.map((o) => JSON.stringify(o)).join('\n'),
    );
    assert.match(dryRun, /deployment.apps\/regcred-operator created \(server dry run\)/);
    assert.match(dryRun, /clusterrole.rbac.authorization.k8s.io\/olm-dry-run created \(server dry run\)/);
    assert.match(dryRun, /role.rbac.authorization.k8s.io\/olm-dry-run created \(server dry run\)/);
    assert.match(dryRun, /poddisruptionbudget.policy\/regcred-operator created \(server dry run\)/);
    const plain = await cluster.kubectl(['apply', '-f', join(REPO_ROOT, 'deploy', 'plain')]);
    for (const expected of [
      'namespace/regcred-operator created',
      'serviceaccount/regcred-operator created',
      'clusterrole.rbac.authorization.k8s.io/regcred-operator created',
      'clusterrolebinding.rbac.authorization.k8s.io/regcred-operator created',
      'role.rbac.authorization.k8s.io/regcred-operator created',
      'rolebinding.rbac.authorization.k8s.io/regcred-operator created',
      'poddisruptionbudget.policy/regcred-operator created',
      'deployment.apps/regcred-operator created',
    ]) {
      assert.ok(plain.includes(expected), `${expected} in:\n${plain}`);
    }
  });

  test('the operator works with only the ServiceAccount, ClusterRole and Role of deploy/plain, leader election on', async () => {
    const token = (
      await cluster.kubectl(['create', 'token', 'regcred-operator', '-n', 'regcred-operator'])
    ).trim();
    const kubeconfig = join(cluster.cp.dir, 'serviceaccount.kubeconfig');
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
    assert.equal(whoami, 'system:serviceaccount:regcred-operator:regcred-operator');

    // The Pod webhook too, called on loopback, so its Secret, MutatingWebhookConfiguration and
    // ServiceAccount watch run under the same RBAC.
    const webhookPort = await freePort();
    const config = defaultConfig({
      kubeconfig,
      webhookPort,
      webhookUrl: `https://127.0.0.1:${webhookPort}/mutate-pods`,
      logLevel: 'warn',
      healthPort: 0,
      healthHost: '127.0.0.1',
      concurrency: 8,
      kubeApiQps: 0,
      kubeApiBurst: 1,
      // As the Deployment runs it: the Lease in the operator's namespace, granted by the Role.
      namespace: 'regcred-operator',
      leaderElect: true,
    });
    const { Writable } = await import('node:stream');
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        operatorLog += chunk.toString();
        cb();
      },
    });
    operator = await startOperator(config, createLogger('warn', sink));
    await cluster.apply(readFileSync(join(REPO_ROOT, 'e2e', 'fixtures', 'seed-examples.yaml'), 'utf8'));
    const filled = await waitFor('placeholder filled under the ServiceAccount', async () => {
      const s = await cluster.client.get<V1Secret>(SecretsResource, 'default', 'reg-creds');
      return s?.metadata?.annotations?.['secretgen.carvel.dev/status']?.includes('secrets-ns/reg-creds')
        ? s
        : undefined;
    });
    const auths = JSON.parse(Buffer.from(filled.data!['.dockerconfigjson']!, 'base64').toString()) as {
      auths: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(auths.auths), ['index.docker.io']);
    const exportStatus = await waitFor('export status written', async () => {
      const out = await cluster.kubectl([
        'get',
        'secretexport',
        '-n',
        'secrets-ns',
        'reg-creds',
        '-o',
        'jsonpath={.status.friendlyDescription}',
      ]);
      return out || undefined;
    });
    assert.equal(exportStatus, 'Reconcile succeeded');
    await waitFor('PackageRepository placeholder created', async () =>
      cluster.client.get<V1Secret>(
        SecretsResource,
        'kapp-controller-packaging-global',
        'e2e-repo.test.carvel.dev-fetch-0',
      ),
    );
    await waitFor('App created for the PackageInstall', async () => {
      const out = await cluster.kubectlResult([
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
    // ImagePullSecretPolicy under the same RBAC: placeholder, ServiceAccount patch, status and finalizer.
    await cluster.client.create<V1ServiceAccount>(ServiceAccountsResource, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { namespace: 'default', name: 'policy-sa' },
    });
    await cluster.client.create<ImagePullSecretPolicy>(ImagePullSecretPolicies, {
      apiVersion: 'regcred.dev/v1alpha1',
      kind: 'ImagePullSecretPolicy',
      metadata: { name: 'deploy-policy' },
      spec: {
        secretName: 'policy-pull',
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'default' } },
      },
    });
    const listsEntry = async () =>
      (
        await cluster.client.get<V1ServiceAccount>(ServiceAccountsResource, 'default', 'policy-sa')
      )?.imagePullSecrets?.some((e) => e.name === 'policy-pull') === true;
    await waitFor('the policy adds its entry to the ServiceAccount', listsEntry);
    await waitFor('policy status written', async () => {
      const p = await cluster.client.get<ImagePullSecretPolicy>(
        ImagePullSecretPolicies,
        undefined,
        'deploy-policy',
      );
      return p?.status?.friendlyDescription === 'Reconcile succeeded' && p.metadata?.finalizers?.length === 1;
    });
    await cluster.client.delete(ImagePullSecretPolicies, undefined, 'deploy-policy');
    await waitFor('the policy removed (finalizer done)', async () =>
      (await cluster.client.get(ImagePullSecretPolicies, undefined, 'deploy-policy')) === undefined
        ? true
        : undefined,
    );
    assert.equal(await listsEntry(), false);
    assert.equal(await cluster.client.get(SecretsResource, 'default', 'policy-pull'), undefined);
    const lease = await cluster.client.get<KubernetesObject & { spec?: { holderIdentity?: string } }>(
      LeasesResource,
      'regcred-operator',
      'regcred-operator',
    );
    assert.ok(lease?.spec?.holderIdentity, 'the operator holds the Lease');
    await waitFor('Pod webhook configured with its own CA', async () => {
      const out = await cluster.kubectlResult([
        'get',
        'mutatingwebhookconfiguration',
        'regcred-operator',
        '-o',
        'jsonpath={.webhooks[0].clientConfig.caBundle}',
      ]);
      return out.code === 0 && out.stdout ? out.stdout : undefined;
    });
    // Anything the ClusterRole or Role forgot shows up as a "forbidden" error in the operator's log.
    assert.doesNotMatch(operatorLog, /forbidden/i, operatorLog);
  });
});
