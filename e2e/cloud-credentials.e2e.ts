// Cloud registry credentials end to end: the whole operator on a real
// control plane, a REAL docker-registry (TLS + htpasswd) and, for each cloud,
// the provider's loopback fake as the identity endpoint (IMDSv2 + ECR JSON 1.1
// with a SigV4 check; the GCE metadata server; Entra ID + an HTTPS ACR front
// whose /oauth2/exchange mints refresh tokens and whose /v2/ proxies to the
// real registry). iaasKeychainHosts points each provider at the loopback
// registry; the built-in host patterns are untouched.
//
// - fetches: a PackageRepository without secretRef fails while the keychain
//   is off and succeeds once iaasKeychains enables it;
// - RegistryToken: writes a Secret the registry accepts (a manifest is pulled
//   with it), refreshes it before its short fake lifetime ends, refuses the
//   operator's identity outside registryTokenNamespaces, never overwrites a
//   Secret it does not own, and its Secret reaches placeholders through a
//   SecretExport.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CoreV1Event, V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';

import { RegistryTokens } from '../src/cloud/controllers/registry-token.js';
import { PackageRepositories } from '../src/packaging/controllers/resources.js';
import { EventsResource } from '../src/runtime/events.js';
import { metricSample } from '../src/runtime/test-clients.js';
import type { RunStatus } from '../src/packaging/run-status.js';
import { SecretsResource as Secrets } from '../src/shared-informers.js';
import { AwsFake } from './fixtures/cloud/aws-fake.js';
import { startAzureFake, type AzureFake } from './fixtures/cloud/azure-fake.js';
import { startGcpFake, type GcpFake } from './fixtures/cloud/gcp-fake.js';
import { startConnectProxy } from './fixtures/cloud/net.js';
import { startOperatorEnv, type OperatorEnv } from './harness/operator-env.js';
import { startRegistry, writeOciLayout, type RegistryUser, type TestRegistry } from './harness/registry.js';
import { waitFor } from './harness/wait.js';

const OPERATOR_NS = 'regcred-operator';
const CONFIG_SECRET = 'regcred-operator-config';
const FETCH_NS = 'cloud-fetch';
const TENANT_NS = 'cloud-tenant';
const PKG_API = 'packaging.carvel.dev/v1alpha1';
const REPO = 'cloud/repo';
/** Every fake credential lives this long, so renewals show within the test. */
const LIFETIME_S = 20;

const PUSHER: RegistryUser = { username: 'pusher', password: 'cloud-e2e-Pusher-pw' };
const ECR_PASSWORD = 'cloud-e2e-ecr-Password';
const GCP_TOKENS = ['ya29.cloud-e2e-first', 'ya29.cloud-e2e-second'];
const ACR_UPSTREAM: RegistryUser = { username: 'acr-upstream', password: 'cloud-e2e-acr-Upstream' };

/** An IAM user's keys a tenant holds in its own Secret. */
const TENANT_AWS_KEYS = {
  accessKeyId: 'AKIACLOUDE2ETENANT01',
  secretAccessKey: 'cloud-e2e-tenant-Secret-key',
};

let env: OperatorEnv;
let registry: TestRegistry;
let aws: AwsFake;
let gcp: GcpFake;
let azure: AzureFake;
let work: string;
let users: RegistryUser[];

type Provider = 'ecr' | 'gcr' | 'acr';
/** The registry host each provider is pointed at: the real registry, or (ACR) the front proxying to it. */
const hostOf = (p: Provider) => (p === 'acr' ? azure.registryHost : registry.host);
const caOf = (p: Provider) => (p === 'acr' ? azure.caCert : registry.caCert);

interface Status {
  observedGeneration?: number;
  conditions?: Array<{ type: string; reason?: string; message?: string }>;
  usefulErrorMessage?: string;
  friendlyDescription?: string;
  expiresAt?: string;
  lastRefreshTime?: string;
}
type Obj<S> = { metadata: { generation: number; uid: string }; status?: S };

async function applyConfig(values: Record<string, string>): Promise<void> {
  await env.cluster.apply(
    stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CONFIG_SECRET, namespace: OPERATOR_NS },
      // data, not stringData: kubectl apply removes a key left out only from data.
      data: Object.fromEntries(
        Object.entries({ caCerts: `${registry.caCert}\n${azure.caCert}`, ...values }).map(([k, v]) => [
          k,
          Buffer.from(v).toString('base64'),
        ]),
      ),
    }),
  );
}

async function get<T>(rt: typeof Secrets, namespace: string, name: string): Promise<T | undefined> {
  return env.client.get(rt, namespace, name) as Promise<T | undefined>;
}

async function waitForObj<T>(
  rt: typeof Secrets,
  namespace: string,
  name: string,
  what: string,
  check: (o: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  let last: T | undefined;
  try {
    return await waitFor(
      what,
      async () => {
        last = await get<T>(rt, namespace, name);
        return last && check(last) ? last : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\nlast seen: ${JSON.stringify(last, null, 1)?.slice(0, 3000)}`,
      {
        cause: err,
      },
    );
  }
}

const condition = (o: { status?: Status }) => o.status?.conditions?.[0];

/** Status of GET /v2/<repo>/manifests/<tag> with HTTP Basic credentials. */
function manifestStatus(host: string, ca: string, credential: { username: string; password: string }) {
  return new Promise<number>((resolve, reject) => {
    const authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    const req = https.request(
      `https://${host}/v2/${REPO}/manifests/1.0.0`,
      {
        ca,
        agent: false,
        headers: {
          authorization,
          accept:
            'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
        },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The single credential of a RegistryToken's Secret. */
function credentialOf(secret: V1Secret, host: string): { username: string; password: string } {
  const doc = JSON.parse(
    Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8'),
  ) as {
    auths: Record<string, { username: string; password: string }>;
  };
  assert.deepEqual(Object.keys(doc.auths), [host]);
  return doc.auths[host]!;
}

async function createNamespace(name: string): Promise<void> {
  await env.cluster.apply(stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
}

async function applyRegistryToken(
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await env.cluster.apply(
    stringify({
      apiVersion: 'regcred.dev/v1alpha1',
      kind: 'RegistryToken',
      metadata: { namespace, name },
      spec,
    }),
  );
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'regcred-cloud-e2e-'));
  aws = await AwsFake.start({
    ecrPassword: ECR_PASSWORD,
    tokenLifetimeMs: LIFETIME_S * 1000,
    staticKeys: [TENANT_AWS_KEYS],
  });
  gcp = await startGcpFake({ accessToken: GCP_TOKENS[0]!, expiresInSeconds: LIFETIME_S });
  users = [
    PUSHER,
    { username: 'AWS', password: ECR_PASSWORD },
    { username: 'oauth2accesstoken', password: GCP_TOKENS[0]! },
    ACR_UPSTREAM,
  ];
  registry = await startRegistry({ users });
  azure = await startAzureFake({
    refreshTokenLifetimeSeconds: LIFETIME_S,
    upstream: { url: `https://${registry.host}`, caCert: registry.caCert, ...ACR_UPSTREAM },
  });
  const tokenFile = join(work, 'azure-token');
  writeFileSync(tokenFile, azure.federatedToken);
  const layout = join(work, 'repo');
  await writeOciLayout(
    layout,
    {
      'packages/cloud.example.com/metadata.yml': stringify({
        apiVersion: 'data.packaging.carvel.dev/v1alpha1',
        kind: 'PackageMetadata',
        metadata: { name: 'cloud.example.com' },
        spec: { displayName: 'cloud' },
      }),
    },
    { tag: '1.0.0', bundle: true },
  );
  await registry.push(layout, '1.0.0', REPO, PUSHER);
  env = await startOperatorEnv({
    operatorUser: 'regcred-operator',
    config: {
      resyncPeriodMs: 5000,
      concurrency: 8,
      kubeApiQps: 0,
      kubeApiBurst: 1,
      cloudEnvironment: {
        // ECR: the operator's identity from IMDSv2, then GetAuthorizationToken, all at the fake.
        ...aws.endpointEnv(),
        AWS_REGION: 'eu-west-1',
        // GCR: the GCE metadata server.
        ...gcp.env,
        // ACR: workload identity (a projected token file federated at Entra ID).
        AZURE_AUTHORITY_HOST: azure.authorityHost,
        AZURE_TENANT_ID: azure.tenantId,
        AZURE_CLIENT_ID: azure.clientId,
        AZURE_FEDERATED_TOKEN_FILE: tokenFile,
        AZURE_POD_IDENTITY_AUTHORITY_HOST: azure.imdsHost,
      },
    },
  });
  await createNamespace(OPERATOR_NS);
  await createNamespace(FETCH_NS);
  await createNamespace(TENANT_NS);
  await applyConfig({});
});

after(async () => {
  await env?.stop();
  await azure?.stop();
  await gcp?.stop();
  await aws?.close();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

type Pkgr = Obj<RunStatus>;
const repoCurrent = (o: Pkgr) => o.status?.observedGeneration === o.metadata.generation;

for (const provider of ['ecr', 'gcr', 'acr'] as const) {
  describe(`${provider}: fetches with the keychain`, () => {
    test('a PackageRepository without secretRef fails while the keychain is off, and succeeds once iaasKeychains enables it', async () => {
      const host = hostOf(provider);
      await applyConfig({ iaasKeychainHosts: `${provider}=${host}` });
      const name = `repo-${provider}`;
      await env.client.create(PackageRepositories, {
        apiVersion: PKG_API,
        kind: 'PackageRepository',
        metadata: { namespace: FETCH_NS, name },
        spec: { fetch: { imgpkgBundle: { image: `${host}/${REPO}:1.0.0` } } },
      });
      const refused = await waitForObj<Pkgr>(
        PackageRepositories,
        FETCH_NS,
        name,
        'the fetch to fail without credentials',
        (o) => repoCurrent(o) && condition(o)?.type === 'ReconcileFailed',
      );
      assert.match(refused.status?.usefulErrorMessage ?? '', /UNAUTHORIZED/);
      assert.match(
        refused.status?.usefulErrorMessage ?? '',
        /\(sent no credentials: Secret repo-\w+-fetch-0 has none for 127\.0\.0\.1:\d+\)/,
      );

      // kapp-controller's names are accepted too.
      const listed = { ecr: 'ecr', gcr: 'gke', acr: 'aks' }[provider];
      await applyConfig({ iaasKeychains: listed, iaasKeychainHosts: `${provider}=${host}` });
      const fetched = await waitForObj<Pkgr>(
        PackageRepositories,
        FETCH_NS,
        name,
        'the fetch to succeed with the keychain',
        (o) => repoCurrent(o) && condition(o)?.type === 'ReconcileSucceeded',
      );
      assert.match(
        fetched.status?.fetch?.stdout ?? '',
        new RegExp(`credentials from the ${provider} keychain \\(the operator's cloud identity\\)`),
      );
      await env.client.delete(PackageRepositories, FETCH_NS, name);
      await applyConfig({});
    });
  });
}

describe('RegistryToken', () => {
  for (const provider of ['ecr', 'gcr', 'acr'] as const) {
    test(`${provider}: writes a Secret the registry accepts, and renews it before it expires`, async () => {
      const host = hostOf(provider);
      await applyConfig({ iaasKeychainHosts: `${provider}=${host}` });
      const name = `token-${provider}`;
      const secretName = `${provider}-creds`;
      await applyRegistryToken(OPERATOR_NS, name, { provider, registry: host, secretName });
      const first = await waitForObj<Obj<Status>>(
        RegistryTokens,
        OPERATOR_NS,
        name,
        'the RegistryToken to succeed',
        (o) => condition(o)?.type === 'ReconcileSucceeded' && o.status?.expiresAt !== undefined,
      );
      assert.equal(first.status?.observedGeneration, first.metadata.generation);
      assert.equal(first.status?.friendlyDescription, 'Reconcile succeeded');
      const lifetime = Date.parse(first.status.expiresAt!) - Date.parse(first.status.lastRefreshTime!);
      assert.ok(lifetime > 10_000 && lifetime <= LIFETIME_S * 1000 + 1000, `lifetime ${lifetime} ms`);
      const secret = (await get<V1Secret>(Secrets, OPERATOR_NS, secretName))!;
      assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
      assert.deepEqual(
        secret.metadata?.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
        [['RegistryToken', name, first.metadata.uid, true]],
      );
      const credential = credentialOf(secret, host);
      assert.equal(await manifestStatus(host, caOf(provider), credential), 200);

      // GCR: the metadata server hands out a new token from now on, which the registry learns.
      if (provider === 'gcr') {
        gcp.accessToken = GCP_TOKENS[1]!;
        await registry.setUsers([...users, { username: 'oauth2accesstoken', password: GCP_TOKENS[1]! }]);
      }
      // Renewed at half the 20 s lifetime (refreshBefore defaults to 1 h, capped at half).
      const renewed = await waitForObj<Obj<Status>>(
        RegistryTokens,
        OPERATOR_NS,
        name,
        'the RegistryToken to renew its credential',
        (o) =>
          condition(o)?.type === 'ReconcileSucceeded' &&
          o.status?.lastRefreshTime !== first.status?.lastRefreshTime,
        40_000,
      );
      assert.ok(Date.parse(renewed.status!.expiresAt!) > Date.parse(first.status.expiresAt!));
      assert.ok(Date.parse(renewed.status!.lastRefreshTime!) < Date.parse(first.status.expiresAt!));
      const next = (await get<V1Secret>(Secrets, OPERATOR_NS, secretName))!;
      assert.equal(next.metadata?.uid, secret.metadata?.uid);
      const nextCredential = credentialOf(next, host);
      assert.equal(await manifestStatus(host, caOf(provider), nextCredential), 200);
      if (provider === 'ecr') {
        // The fake's ECR password is fixed (the registry's htpasswd holds it); the expiry moved.
        assert.equal(nextCredential.password, credential.password);
      } else {
        assert.notEqual(nextCredential.password, credential.password);
      }
      // The previous credential stops working: GCR's token is revoked at the registry, ACR's refresh token expires.
      if (provider === 'gcr') {
        await registry.setUsers([
          ...users.filter((u) => u.username !== 'oauth2accesstoken'),
          { username: 'oauth2accesstoken', password: GCP_TOKENS[1]! },
        ]);
        assert.equal(await manifestStatus(host, caOf(provider), credential), 401);
        assert.equal(await manifestStatus(host, caOf(provider), nextCredential), 200);
      }
      if (provider === 'acr') {
        await waitFor(
          'the first ACR refresh token to expire at the front',
          async () => (await manifestStatus(host, caOf(provider), credential)) === 401,
          { timeoutMs: 30_000, intervalMs: 500 },
        );
      }
      const events = await env.client.list<CoreV1Event>(EventsResource, {
        namespace: OPERATOR_NS,
        fieldSelector: `involvedObject.name=${name}`,
      });
      assert.ok(
        events.items.filter((e) => e.type === 'Normal' && e.reason === 'CredentialRefreshed').length >= 2,
      );
      for (const e of events.items) assert.ok(!(e.message ?? '').includes(nextCredential.password));
      // /metrics: the renewals counted, this token ready, its expiry the earliest (the only token now).
      // Polled: the gauges read the operator's cache, which may be a moment behind the API server.
      let scraped = '';
      await waitFor(
        'the RegistryToken metrics to match its status',
        async () => {
          const now = (await get<Obj<Status>>(RegistryTokens, OPERATOR_NS, name))!;
          const port = env.operator.manager.healthAddress()!.port;
          scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          return (
            metricSample(scraped, 'regcred_registry_tokens{ready="true"}') === 1 &&
            metricSample(scraped, 'regcred_registry_token_earliest_expiry_timestamp_seconds') ===
              Date.parse(now.status!.expiresAt!) / 1000
          );
        },
        { timeoutMs: 10_000, intervalMs: 200 },
      );
      const mints = `regcred_cloud_credential_mints_total{provider="${provider}",purpose="registrytoken",result="succeeded"}`;
      assert.ok((metricSample(scraped, mints) ?? 0) >= 2, `${mints}: ${metricSample(scraped, mints)}`);
      await env.client.delete(RegistryTokens, OPERATOR_NS, name);
      await applyConfig({});
    });
  }

  test("refuses the operator's identity outside registryTokenNamespaces, and writes no Secret", async () => {
    await applyConfig({ iaasKeychainHosts: `ecr=${registry.host}` });
    await applyRegistryToken(TENANT_NS, 'stolen', {
      provider: 'ecr',
      registry: registry.host,
      secretName: 'stolen',
    });
    const refused = await waitForObj<Obj<Status>>(
      RegistryTokens,
      TENANT_NS,
      'stolen',
      'the RegistryToken to be refused',
      (o) => condition(o)?.type === 'ReconcileFailed',
    );
    assert.equal(condition(refused)?.reason, 'IdentityNotAllowed');
    assert.match(
      refused.status?.usefulErrorMessage ?? '',
      /namespace cloud-tenant is not listed in registryTokenNamespaces of the operator configuration Secret regcred-operator\/regcred-operator-config \(allowed: regcred-operator\)/,
    );
    assert.equal(await get(Secrets, TENANT_NS, 'stolen'), undefined);
    const ecrCalls = aws.calls.ecr;
    // Listing the namespace lets it mint.
    await applyConfig({
      iaasKeychainHosts: `ecr=${registry.host}`,
      registryTokenNamespaces: `${OPERATOR_NS},${TENANT_NS}`,
    });
    await waitForObj<Obj<Status>>(
      RegistryTokens,
      TENANT_NS,
      'stolen',
      'the RegistryToken to succeed once allowed',
      (o) => condition(o)?.type === 'ReconcileSucceeded',
    );
    assert.ok(aws.calls.ecr > ecrCalls);
    // Removing it again deletes the Secret minted with the cluster's identity.
    await applyConfig({ iaasKeychainHosts: `ecr=${registry.host}` });
    await waitFor(
      'the Secret minted with the operator identity to be deleted',
      async () => (await get(Secrets, TENANT_NS, 'stolen')) === undefined,
    );
    await env.client.delete(RegistryTokens, TENANT_NS, 'stolen');
    await applyConfig({});
  });

  test("with credentialsSecretRef a tenant mints with its own Secret's keys, outside registryTokenNamespaces", async () => {
    await applyConfig({ iaasKeychainHosts: `ecr=${registry.host}` });
    await env.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: TENANT_NS, name: 'aws-keys' },
      type: 'Opaque',
      stringData: {
        aws_access_key_id: TENANT_AWS_KEYS.accessKeyId,
        aws_secret_access_key: TENANT_AWS_KEYS.secretAccessKey,
      },
    });
    const callers = aws.ecrCallers.length;
    await applyRegistryToken(TENANT_NS, 'own-keys', {
      provider: 'ecr',
      registry: registry.host,
      secretName: 'own-keys',
      credentialsSecretRef: { name: 'aws-keys' },
    });
    await waitForObj<Obj<Status>>(
      RegistryTokens,
      TENANT_NS,
      'own-keys',
      'the RegistryToken to succeed',
      (o) => condition(o)?.type === 'ReconcileSucceeded',
    );
    // Signed with the tenant's static keys, not the operator's IMDS identity.
    assert.deepEqual([...new Set(aws.ecrCallers.slice(callers))], ['static']);
    const secret = (await get<V1Secret>(Secrets, TENANT_NS, 'own-keys'))!;
    assert.equal(
      await manifestStatus(registry.host, registry.caCert, credentialOf(secret, registry.host)),
      200,
    );
    await env.client.delete(RegistryTokens, TENANT_NS, 'own-keys');
  });

  test('never overwrites a Secret it does not own', async () => {
    await applyConfig({ iaasKeychainHosts: `ecr=${registry.host}` });
    await env.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: OPERATOR_NS, name: 'someone-elses' },
      type: 'Opaque',
      stringData: { keep: 'me' },
    });
    const before = (await get<V1Secret>(Secrets, OPERATOR_NS, 'someone-elses'))!;
    await applyRegistryToken(OPERATOR_NS, 'clash', {
      provider: 'ecr',
      registry: registry.host,
      secretName: 'someone-elses',
    });
    const refused = await waitForObj<Obj<Status>>(
      RegistryTokens,
      OPERATOR_NS,
      'clash',
      'the RegistryToken to refuse the foreign Secret',
      (o) => condition(o)?.type === 'ReconcileFailed',
    );
    assert.equal(condition(refused)?.reason, 'SecretNotOwned');
    const after = (await get<V1Secret>(Secrets, OPERATOR_NS, 'someone-elses'))!;
    assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion);
    await waitFor('a Warning Event about it', async () => {
      const { items } = await env.client.list<CoreV1Event>(EventsResource, {
        namespace: OPERATOR_NS,
        fieldSelector: 'involvedObject.name=clash',
      });
      return items.some((e) => e.type === 'Warning' && e.reason === 'SecretNotOwned');
    });
    await env.client.delete(RegistryTokens, OPERATOR_NS, 'clash');
  });

  test('its Secret, exported with a SecretExport, reaches placeholders and follows each renewal', async () => {
    await applyConfig({ iaasKeychainHosts: `acr=${azure.registryHost}` });
    await applyRegistryToken(OPERATOR_NS, 'shared', {
      provider: 'acr',
      registry: azure.registryHost,
      secretName: 'shared-creds',
    });
    await waitForObj<V1Secret>(Secrets, OPERATOR_NS, 'shared-creds', 'the RegistryToken Secret', () => true);
    await env.cluster.apply(
      stringify({
        apiVersion: 'secretgen.carvel.dev/v1alpha1',
        kind: 'SecretExport',
        metadata: { namespace: OPERATOR_NS, name: 'shared-creds' },
        spec: { toNamespaces: ['*'] },
      }),
    );
    await env.cluster.apply(
      stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          namespace: TENANT_NS,
          name: 'pull',
          annotations: { 'secretgen.carvel.dev/image-pull-secret': '' },
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
      }),
    );
    const sameAsSource = async () => {
      const source = await get<V1Secret>(Secrets, OPERATOR_NS, 'shared-creds');
      const placeholder = await get<V1Secret>(Secrets, TENANT_NS, 'pull');
      if (!source || !placeholder) return undefined;
      const want = credentialOf(source, azure.registryHost);
      try {
        const got = credentialOf(placeholder, azure.registryHost);
        return got.password === want.password ? got : undefined;
      } catch {
        return undefined;
      }
    };
    const filled = await waitFor('the placeholder to hold the RegistryToken credential', sameAsSource);
    assert.equal(await manifestStatus(azure.registryHost, azure.caCert, filled), 200);
    const renewed = await waitFor(
      'the placeholder to follow the renewal',
      async () => {
        const got = await sameAsSource();
        return got && got.password !== filled.password ? got : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 200 },
    );
    assert.equal(await manifestStatus(azure.registryHost, azure.caCert, renewed), 200);
    await env.client.delete(RegistryTokens, OPERATOR_NS, 'shared');
  });

  test('acr: httpsProxy of the operator configuration carries the token exchange; Entra ID and IMDS over plain http go directly', async () => {
    const proxy = await startConnectProxy();
    const config = {
      iaasKeychainHosts: `acr=${azure.registryHost}`,
      httpsProxy: `http://egress:cloud-e2e-Proxy-pw@${proxy.host}`,
    };
    const failedWith = (message: RegExp, what: string) =>
      waitForObj<Obj<Status>>(
        RegistryTokens,
        OPERATOR_NS,
        'via-proxy',
        what,
        (o) => condition(o)?.type === 'ReconcileFailed' && message.test(o.status?.usefulErrorMessage ?? ''),
        40_000,
      );
    try {
      await applyConfig(config);
      await applyRegistryToken(OPERATOR_NS, 'via-proxy', {
        provider: 'acr',
        registry: azure.registryHost,
        secretName: 'via-proxy-creds',
      });
      await waitForObj<Obj<Status>>(
        RegistryTokens,
        OPERATOR_NS,
        'via-proxy',
        'the RegistryToken to mint through the proxy',
        (o) => condition(o)?.type === 'ReconcileSucceeded',
      );
      const secret = (await get<V1Secret>(Secrets, OPERATOR_NS, 'via-proxy-creds'))!;
      assert.equal(
        await manifestStatus(azure.registryHost, azure.caCert, credentialOf(secret, azure.registryHost)),
        200,
      );
      // Only the exchange (https, on the registry) was tunnelled, with the proxy's credentials; TLS inside
      // the tunnel was verified with caCerts.
      assert.ok(proxy.targets.length >= 1);
      assert.deepEqual([...new Set(proxy.targets)], [azure.registryHost]);
      const basic = `Basic ${Buffer.from('egress:cloud-e2e-Proxy-pw').toString('base64')}`;
      assert.ok(proxy.authorizations.every((a) => a === basic));

      // The proxy refuses: the renewal fails naming the proxy, and the Secret minted before stays.
      proxy.refuse = true;
      await failedWith(
        new RegExp(`proxy http://${proxy.host}: refused the tunnel: HTTP/1\\.1 403 Forbidden`),
        'the renewal to fail at the refusing proxy',
      );
      assert.ok(await get(Secrets, OPERATOR_NS, 'via-proxy-creds'));

      // A proxy the operator cannot use is never bypassed: the mints go on failing, and send nothing.
      await applyConfig({ ...config, httpsProxy: `https://${proxy.host}` });
      await failedWith(
        /httpsProxy: only http:\/\/ proxies are supported; cloud token endpoints are not called until it is fixed/,
        'the RegistryToken to report the invalid httpsProxy',
      );
      const failedMints = async () => {
        const port = env.operator.manager.healthAddress()!.port;
        const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return (
          metricSample(
            scraped,
            'regcred_cloud_credential_mints_total{provider="acr",purpose="registrytoken",result="failed"}',
          ) ?? 0
        );
      };
      const tunnels = proxy.targets.length;
      const exchanges = azure.exchangeRequests;
      const failed = await failedMints();
      await waitFor(
        'another mint to fail with the invalid httpsProxy',
        async () => (await failedMints()) > failed,
        {
          timeoutMs: 40_000,
          intervalMs: 500,
        },
      );
      assert.equal(proxy.targets.length, tunnels, 'no tunnel was opened');
      assert.equal(azure.exchangeRequests, exchanges, 'the exchange was not called directly either');
    } finally {
      await env.client.delete(RegistryTokens, OPERATOR_NS, 'via-proxy');
      await applyConfig({});
      await proxy.stop();
    }
  });
});
