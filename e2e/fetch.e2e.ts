// Fetching from a REAL private registry (CNCF distribution with htpasswd
// users and TLS from a test CA; bundles built here as OCI layouts and pushed
// with skopeo) by the whole operator on a real control plane: the seed
// document's "Bringing it all together" end to end, the manual
// configuration, failures (credentials, TLS, bundle content, unsafe layers),
// repository content (pruning, two repositories giving one Package), paused,
// syncPeriod, deletion, and the operator config Secret changing at run time.
// The seed's image names are replaced by the local registry's; every other
// field of the seed YAML is kept as the docs page writes it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';

import { SecretExportKind, SecretExportResource } from '../generated/index.js';
import {
  Apps,
  PackageInstalls,
  PackageMetadatas,
  PackageRepositories,
  Packages,
} from '../src/packaging/controllers/resources.js';
import type { RunStatus } from '../src/packaging/run-status.js';
import type { App, PackageInstall, PackageRepository } from '../src/packaging/types.js';
import {
  Secrets,
  createNamespace,
  dockerConfig,
  eventsAbout,
  sleep,
  startPackagingEnv,
  waitForGone,
  waitForObject,
  type PackagingEnv,
} from './fixtures/packaging/env.js';
import { EMPTY_IMAGES_LOCK, startRegistry, writeOciLayout, type TestRegistry } from './harness/registry.js';
import { waitFor } from './harness/wait.js';

const GLOBAL = 'kapp-controller-packaging-global';
const OPERATOR_NS = 'regcred-operator';
const CONFIG_SECRET = 'regcred-operator-config';
const REF_ANNOTATION = 'packaging.carvel.dev/package-repository-ref';
const SEE = 'Error (see .status.usefulErrorMessage for details)';
const TEMPLATE_UNSUPPORTED = 'Templating dir: template stage 0 (ytt): not supported yet';
const PKG_API = 'packaging.carvel.dev/v1alpha1';
const DATA_API = 'data.packaging.carvel.dev/v1alpha1';

const ALICE = { username: 'alice', password: 'fetch-e2e-Alice-Pa55' };
const WRONG_PASSWORD = 'not-alices-password';
const SECRET_VALUES = [ALICE.password, WRONG_PASSWORD];

type Pkgr = PackageRepository & {
  apiVersion: string;
  metadata: { name: string; namespace: string; uid: string; generation: number };
  status?: RunStatus;
};
type AppObj = App & { apiVersion: string; metadata: { generation: number }; status?: RunStatus };
type PackageObj = KubernetesObject & { spec?: Record<string, unknown> };

let env: PackagingEnv;
let registry: TestRegistry;
let work: string;
let layouts = 0;
const digests: Record<string, string> = {};
/** When the syncPeriod repository first fetched successfully. */
let periodicFirstFetchAt = 0;

// ---------------------------------------------------------------------------
// bundles

function packageDoc(refName: string, version: string, fetch: unknown[], extra: Record<string, unknown> = {}) {
  const { annotations, ...spec } = extra as { annotations?: Record<string, string> };
  return {
    apiVersion: DATA_API,
    kind: 'Package',
    metadata: { name: `${refName}.${version}`, ...(annotations ? { annotations } : {}) },
    spec: {
      refName,
      version,
      template: {
        spec: {
          fetch,
          template: [{ ytt: { paths: ['config/'] } }, { kbld: { paths: ['-', '.imgpkg/images.yml'] } }],
          deploy: [{ kapp: {} }],
        },
      },
      ...spec,
    },
  };
}

const metadataDoc = (name: string, displayName: string) => ({
  apiVersion: DATA_API,
  kind: 'PackageMetadata',
  metadata: { name },
  spec: { displayName, shortDescription: `${displayName} for the fetch e2e test` },
});

const yamlDocs = (...docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');

/** Builds an OCI layout (an imgpkg bundle unless `plain`) and pushes it with skopeo; returns its digest. */
async function push(
  repository: string,
  tag: string,
  files: Record<string, string>,
  options: { plain?: boolean; evilLayer?: boolean } = {},
): Promise<string> {
  const dir = join(work, `layout-${++layouts}`);
  await writeOciLayout(dir, files, {
    tag,
    bundle: !options.plain,
    ...(options.evilLayer ? { evilLayer: true } : {}),
  });
  const digest = await registry.push(dir, tag, repository);
  digests[`${repository}:${tag}`] = digest;
  return digest;
}

const image = (repository: string, tag: string) => `${registry.host}/${repository}:${tag}`;
const pinned = (repository: string, tag: string) =>
  `${registry.host}/${repository}@${digests[`${repository}:${tag}`]}`;

// ---------------------------------------------------------------------------
// objects

/** A dockerconfigjson Secret shaped like the seed's: username, password and an empty auth. */
function credsSecretYaml(namespace: string, name: string, password = ALICE.password): string {
  const config = {
    auths: { [registry.host]: { username: ALICE.username, password, auth: '' } },
  };
  return `apiVersion: v1
kind: Secret
metadata:
  name: ${name}
  namespace: ${namespace}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '${JSON.stringify(config)}'
`;
}

function repositoryYaml(
  namespace: string,
  name: string,
  bundle: string,
  extra: Record<string, unknown> = {},
) {
  const { secretName, ...spec } = extra as { secretName?: string };
  return stringify({
    apiVersion: PKG_API,
    kind: 'PackageRepository',
    metadata: { name, namespace },
    spec: {
      ...spec,
      fetch: { imgpkgBundle: { image: bundle, ...(secretName ? { secretRef: { name: secretName } } : {}) } },
    },
  });
}

function waitForRepo(
  ns: string,
  name: string,
  what: string,
  check: (r: Pkgr) => boolean,
  timeoutMs?: number,
) {
  return waitForObject<Pkgr>(
    env,
    PackageRepositories,
    ns,
    name,
    `PackageRepository ${ns}/${name}: ${what}`,
    check,
    timeoutMs,
  );
}

function waitForApp(
  ns: string,
  name: string,
  what: string,
  check: (a: AppObj) => boolean,
  timeoutMs?: number,
) {
  return waitForObject<AppObj>(env, Apps, ns, name, `App ${ns}/${name}: ${what}`, check, timeoutMs);
}

type WithStatus = { metadata?: { generation?: number }; status?: RunStatus };

const succeeded = (o: WithStatus) =>
  o.status?.observedGeneration === o.metadata?.generation &&
  o.status?.conditions?.[0]?.type === 'ReconcileSucceeded';

const failedWith = (pattern: RegExp) => (o: WithStatus) =>
  o.status?.observedGeneration === o.metadata?.generation &&
  o.status?.conditions?.[0]?.type === 'ReconcileFailed' &&
  pattern.test(o.status.usefulErrorMessage ?? '');

/** An App whose fetch succeeded and whose run then stopped at the template step this project cannot run. */
const fetchedThenTemplateUnsupported = (a: AppObj) =>
  a.status?.observedGeneration === a.metadata.generation &&
  a.status?.fetch?.exitCode === 0 &&
  a.status.usefulErrorMessage === TEMPLATE_UNSUPPORTED;

/** Name → package-repository-ref annotation of the Packages (or PackageMetadatas) of a namespace. */
async function repositoryRefs(ns: string, rt = Packages): Promise<Record<string, string | undefined>> {
  const { items } = await env.client.list<PackageObj>(rt, { namespace: ns });
  const entries = items.map((p): [string, string | undefined] => [
    p.metadata!.name!,
    p.metadata?.annotations?.[REF_ANNOTATION],
  ]);
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : 1)));
}

function assertNoSecretValues(what: string, value: unknown): void {
  const text = JSON.stringify(value);
  for (const secret of SECRET_VALUES) assert.ok(!text.includes(secret), `a password leaked into ${what}`);
}

async function applyConfig(data: Record<string, string>): Promise<void> {
  await env.cluster.apply(
    stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CONFIG_SECRET, namespace: OPERATOR_NS },
      stringData: data,
    }),
  );
}

// ---------------------------------------------------------------------------

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'regcred-fetch-e2e-'));
  const [started, startedRegistry] = await Promise.all([
    startPackagingEnv(),
    startRegistry({ users: [ALICE], log: (line) => console.log(`# ${line}`) }),
  ]);
  env = started;
  registry = startedRegistry;
  for (const ns of [OPERATOR_NS, GLOBAL, 'secrets-ns', 'manual', 'failures', 'content', 'apps', 'periodic']) {
    await createNamespace(env, ns);
  }

  // The seed's package content bundle and repository bundle (k14stest/private-pkg, k14stest/private-repo).
  await push('k14stest/private-pkg', '1.0.0', {
    'config/config.yml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pkg-demo}\n',
    '.imgpkg/images.yml': EMPTY_IMAGES_LOCK,
  });
  await push('k14stest/private-repo', '1.0.0', {
    'packages/pkg.test.carvel.dev/1.0.0.yml': yamlDocs(
      packageDoc('pkg.test.carvel.dev', '1.0.0', [
        { imgpkgBundle: { image: pinned('k14stest/private-pkg', '1.0.0') } },
      ]),
    ),
    'packages/pkg.test.carvel.dev/metadata.yml': yamlDocs(metadataDoc('pkg.test.carvel.dev', 'Test package')),
  });

  // The manual configuration's repository (k8slt/corp-com-pkg-repo) and package bundle (packages/simple-app).
  await push('packages/simple-app', '1.0.0', { 'config/app.yml': 'kind: ConfigMap\n' });
  await push('k8slt/corp-com-pkg-repo', '1.0.0', {
    'packages/simple-app.corp.com/1.0.0.yml': yamlDocs(
      packageDoc('simple-app.corp.com', '1.0.0', [
        { imgpkgBundle: { image: image('packages/simple-app', '1.0.0') } },
      ]),
      metadataDoc('simple-app.corp.com', 'Simple app'),
    ),
  });

  // Repository content versions: v2 drops other.test.carvel.dev and changes release notes.
  const apps = (version: string, notes: string) =>
    packageDoc(
      'apps.test.carvel.dev',
      version,
      [{ imgpkgBundle: { image: image('packages/simple-app', '1.0.0') } }],
      {
        releaseNotes: notes,
      },
    );
  await push('content/repo', '1.0.0', {
    'packages/apps.yml': yamlDocs(apps('1.0.0', 'first'), metadataDoc('apps.test.carvel.dev', 'Apps')),
    'packages/other/other.yaml': yamlDocs(
      packageDoc('other.test.carvel.dev', '1.0.0', [{ inline: { paths: { 'a.yml': 'a: 1' } } }]),
    ),
  });
  await push('content/repo', '2.0.0', {
    'packages/apps.yml': yamlDocs(apps('1.0.0', 'second'), metadataDoc('apps.test.carvel.dev', 'Apps')),
  });
  await push('content/repo', '3.0.0', {
    'packages/apps.yml': yamlDocs(
      apps('1.0.0', 'second'),
      apps('1.1.0', 'third'),
      metadataDoc('apps.test.carvel.dev', 'Apps'),
    ),
  });
  // Other repositories giving apps.test.carvel.dev.1.0.0: identically, at a higher revision, differently.
  await push('content/twin', '1.0.0', { 'packages/apps.yml': yamlDocs(apps('1.0.0', 'second')) });
  await push('content/newer', '1.0.0', {
    'packages/apps.yml': yamlDocs({
      ...apps('1.0.0', 'from the newer repository'),
      metadata: { name: 'apps.test.carvel.dev.1.0.0', annotations: { 'packaging.carvel.dev/revision': '2' } },
    }),
  });
  await push('content/rival', '1.0.0', { 'packages/apps.yml': yamlDocs(apps('1.0.0', 'a rival copy')) });

  // Bad content.
  await push('failures/no-packages', '1.0.0', { 'config/app.yml': 'kind: ConfigMap\n' });
  await push(
    'failures/evil',
    '1.0.0',
    { 'packages/ok.yml': yamlDocs(metadataDoc('evil.test.carvel.dev', 'Evil')) },
    { evilLayer: true },
  );
  await push('apps/plain-config', '1.0.0', { 'deep/config/app.yml': 'kind: ConfigMap\n' }, { plain: true });

  // A tag that moves, for syncPeriod.
  await push('periodic/repo', 'latest', {
    'packages/p.yml': yamlDocs(metadataDoc('periodic.test.carvel.dev', 'Periodic')),
  });
});

after(async () => {
  await env?.stop();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------

describe('TLS trust from the operator config Secret', () => {
  test('without caCerts the registry certificate is untrusted: ReconcileFailed with an x509 message', async () => {
    await env.cluster.apply(credsSecretYaml('periodic', 'creds'));
    await env.cluster.apply(
      repositoryYaml('periodic', 'periodic', image('periodic/repo', 'latest'), {
        secretName: 'creds',
        syncPeriod: '30s',
      }),
    );
    const repo = await waitForRepo('periodic', 'periodic', 'x509 failure', failedWith(/x509/));
    assert.match(
      repo.status!.usefulErrorMessage!,
      new RegExp(
        `^Fetching resources: fetch stage 0 \\(imgpkgBundle\\): ${escape(image('periodic/repo', 'latest'))}: X509: x509: TLS certificate of https://${escape(registry.host)} could not be verified: .*; add the CA that signed it to caCerts in the operator configuration`,
      ),
    );
    assert.equal(repo.status?.fetch?.exitCode, 1);
  });

  test('adding caCerts to the config Secret makes the failed fetch succeed, without a restart', async () => {
    await applyConfig({ caCerts: registry.caCert });
    const repo = await waitForRepo('periodic', 'periodic', 'succeeded', succeeded);
    assert.equal(repo.status?.consecutiveReconcileFailures, 0);
    periodicFirstFetchAt = Date.parse(String(repo.status?.fetch?.startedAt));
    assert.deepEqual(await repositoryRefs('periodic', PackageMetadatas), {
      'periodic.test.carvel.dev': 'periodic/periodic',
    });
    // The tag moves on; the repository should notice within its syncPeriod (last test of this file).
    await push('periodic/repo', 'latest', {
      'packages/p.yml': yamlDocs(
        metadataDoc('periodic.test.carvel.dev', 'Periodic'),
        packageDoc('periodic.test.carvel.dev', '2.0.0', [{ inline: { paths: { 'a.yml': 'a: 1' } } }]),
      ),
    });
  });
});

// ---------------------------------------------------------------------------

describe('the seed scenario ("Bringing it all together") against a private registry', () => {
  const seedYaml = () => `---
apiVersion: v1
kind: Secret
metadata:
  name: reg-creds # could be any name
  namespace: secrets-ns # could be any namespace
type: kubernetes.io/dockerconfigjson # needs to be this type
stringData:
  .dockerconfigjson: |
    {
      "auths": {
        "${registry.host}": {
          "username": "${ALICE.username}",
          "password": "${ALICE.password}",
          "auth": ""
        }
      }
    }
---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata:
  name: reg-creds # must match source secret name
  namespace: secrets-ns # must match source secret namespace
spec:
  toNamespaces:
  - "*" # star means export is available for all namespaces
---
apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageRepository
metadata:
  name: e2e-repo.test.carvel.dev
  namespace: kapp-controller-packaging-global
spec:
  fetch:
    imgpkgBundle:
      image: ${pinned('k14stest/private-repo', '1.0.0')}
---
apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageInstall
metadata:
  name: pkg-demo
  namespace: default
spec:
  serviceAccountName: default-ns-sa
  packageRef:
    refName: pkg.test.carvel.dev
    versionSelection:
      constraints: 1.0.0
`;
  const REPO = 'e2e-repo.test.carvel.dev';

  test('the PackageRepository without secretRef reaches ReconcileSucceeded with the exported credentials, and its Packages appear', async () => {
    await env.cluster.apply(seedYaml());
    const repo = await waitForRepo(GLOBAL, REPO, 'succeeded', succeeded, 30_000);
    // Its placeholder was filled from the export (auth computed from username and password).
    const placeholder = await env.client.get<V1Secret>(Secrets, GLOBAL, `${REPO}-fetch-0`);
    const auth = Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64');
    assert.deepEqual(dockerConfig(placeholder!), {
      auths: { [registry.host]: { username: ALICE.username, password: ALICE.password, auth } },
    });
    assert.deepEqual(await repositoryRefs(GLOBAL), { 'pkg.test.carvel.dev.1.0.0': `${GLOBAL}/${REPO}` });
    assert.deepEqual(await repositoryRefs(GLOBAL, PackageMetadatas), {
      'pkg.test.carvel.dev': `${GLOBAL}/${REPO}`,
    });
    const s = repo.status!;
    assert.deepEqual(s, {
      observedGeneration: 1,
      conditions: [
        {
          type: 'ReconcileSucceeded',
          status: 'True',
          lastTransitionTime: s.conditions?.[0]?.lastTransitionTime,
        },
      ],
      friendlyDescription: 'Reconcile succeeded',
      fetch: {
        startedAt: s.fetch?.startedAt,
        updatedAt: s.fetch?.updatedAt,
        exitCode: 0,
        stdout: s.fetch?.stdout,
      },
      deploy: {
        startedAt: s.deploy?.startedAt,
        updatedAt: s.deploy?.updatedAt,
        exitCode: 0,
        // A second successful sync (e.g. the placeholder filled while the first fetch ran) finds everything in place.
        stdout:
          s.consecutiveReconcileSuccesses === 1
            ? '1 Packages and 1 PackageMetadatas: 2 created, 0 updated, 0 unchanged, 0 provided by another repository, 0 deleted'
            : '1 Packages and 1 PackageMetadatas: 0 created, 0 updated, 2 unchanged, 0 provided by another repository, 0 deleted',
        finished: true,
      },
      consecutiveReconcileSuccesses: s.consecutiveReconcileSuccesses,
      consecutiveReconcileFailures: 0,
    });
    assert.match(
      String(s.fetch?.stdout),
      new RegExp(
        `^Fetched imgpkgBundle ${escape(pinned('k14stest/private-repo', '1.0.0'))} \\(3 files, \\d+ bytes\\)$`,
      ),
    );
    for (const t of [s.fetch?.startedAt, s.fetch?.updatedAt, s.deploy?.startedAt, s.deploy?.updatedAt])
      assert.match(String(t), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok((s.consecutiveReconcileSuccesses ?? 0) >= 1);
    assertNoSecretValues('the PackageRepository status', s);
  });

  test('the PackageInstall with no secret named gets its App, whose fetch succeeds with the filled placeholder', async () => {
    const app = await waitForApp('default', 'pkg-demo', 'fetched', fetchedThenTemplateUnsupported, 30_000);
    assert.deepEqual(app.spec?.fetch, [
      {
        imgpkgBundle: {
          image: pinned('k14stest/private-pkg', '1.0.0'),
          secretRef: { name: 'pkg-demo-fetch-0' },
        },
      },
    ]);
    assert.match(
      String(app.status?.fetch?.stdout),
      new RegExp(
        `^Fetched imgpkgBundle ${escape(pinned('k14stest/private-pkg', '1.0.0'))} \\(2 files, \\d+ bytes\\)$`,
      ),
    );
    assert.equal(app.status?.conditions?.[0]?.type, 'ReconcileFailed');
    assert.equal(app.status?.template?.error, 'template stage 0 (ytt): not supported yet');
    const pkgi = await waitForObject<PackageInstall>(
      env,
      PackageInstalls,
      'default',
      'pkg-demo',
      'mirrors the App',
      (p) => p.status?.usefulErrorMessage === TEMPLATE_UNSUPPORTED,
    );
    assert.equal(pkgi.status?.conditions?.[0]?.message, SEE);
    assert.equal(pkgi.status?.version, '1.0.0');
  });

  test('skopeo inspect --authfile accepts the filled placeholder, as a container runtime would', async () => {
    const placeholder = await env.client.get<V1Secret>(Secrets, 'default', 'pkg-demo-fetch-0');
    const file = join(work, 'placeholder-auth.json');
    writeFileSync(file, Buffer.from(placeholder!.data!['.dockerconfigjson']!, 'base64'));
    const inspected = await registry.inspect(image('k14stest/private-pkg', '1.0.0'), file);
    assert.equal(inspected['Digest'], digests['k14stest/private-pkg:1.0.0']);
    assert.deepEqual(inspected['Labels'], { 'dev.carvel.imgpkg.bundle': 'true' });
  });

  test('revoking the export empties the placeholder and the next fetch fails with UNAUTHORIZED; exporting again recovers', async () => {
    const SecretExports = { ...SecretExportResource, kind: SecretExportKind };
    await env.client.delete(SecretExports, 'secrets-ns', 'reg-creds');
    const failed = await waitForRepo(GLOBAL, REPO, 'UNAUTHORIZED', failedWith(/UNAUTHORIZED/));
    assert.equal(
      failed.status?.usefulErrorMessage,
      `Fetching resources: fetch stage 0 (imgpkgBundle): ${pinned('k14stest/private-repo', '1.0.0')}: UNAUTHORIZED: authentication required (HTTP 401 fetching manifest ${digests['k14stest/private-repo:1.0.0']}) (sent no credentials: Secret ${REPO}-fetch-0 has none for ${registry.host})`,
    );
    assert.equal(failed.status?.fetch?.exitCode, 1);
    // The repository's Packages stay while it fails.
    assert.deepEqual(await repositoryRefs(GLOBAL), { 'pkg.test.carvel.dev.1.0.0': `${GLOBAL}/${REPO}` });
    await env.cluster.apply(seedYaml());
    await waitForRepo(GLOBAL, REPO, 'succeeded again', succeeded);
  });
});

// ---------------------------------------------------------------------------

describe('manual configuration (without secret sharing)', () => {
  test('a PackageRepository with secretRef fetches with that Secret and gets no placeholder', async () => {
    await env.cluster.apply(credsSecretYaml('manual', 'my-registry-creds'));
    await env.cluster.apply(`---
apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageRepository
metadata:
  name: simple-package-repository
  namespace: manual
spec:
  fetch:
    imgpkgBundle:
      image: ${image('k8slt/corp-com-pkg-repo', '1.0.0')}
      secretRef:
        name: my-registry-creds
`);
    await waitForRepo('manual', 'simple-package-repository', 'succeeded', succeeded);
    assert.deepEqual(await repositoryRefs('manual'), {
      'simple-app.corp.com.1.0.0': 'manual/simple-package-repository',
    });
    assert.equal(await env.client.get(Secrets, 'manual', 'simple-package-repository-fetch-0'), undefined);
  });

  test('a PackageInstall with ext.packaging.carvel.dev/fetch-0-secret-name fetches with the named Secret as soon as it exists', async () => {
    await env.cluster.apply(`---
apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageInstall
metadata:
  name: simple-app-with-secret
  namespace: manual
  annotations:
    ext.packaging.carvel.dev/fetch-0-secret-name: simple-app-secret
spec:
  serviceAccountName: default-ns-sa
  packageRef:
    refName: simple-app.corp.com
    versionSelection:
      constraints: 1.0.0
`);
    const missing = await waitForApp(
      'manual',
      'simple-app-with-secret',
      'Secret missing',
      failedWith(/Secret simple-app-secret not found/),
    );
    assert.equal(
      missing.status?.usefulErrorMessage,
      'Fetching resources: fetch stage 0 (imgpkgBundle): Secret simple-app-secret not found in namespace manual',
    );
    assert.deepEqual(missing.spec?.fetch, [
      {
        imgpkgBundle: {
          image: image('packages/simple-app', '1.0.0'),
          secretRef: { name: 'simple-app-secret' },
        },
      },
    ]);
    // Creating the Secret fetches again at once (the failure backoff would wait longer).
    const failedAt = Date.now();
    await env.cluster.apply(credsSecretYaml('manual', 'simple-app-secret'));
    await waitForApp('manual', 'simple-app-with-secret', 'fetched', fetchedThenTemplateUnsupported, 10_000);
    assert.ok(Date.now() - failedAt < 10_000);
    assert.equal(await env.client.get(Secrets, 'manual', 'simple-app-with-secret-fetch-0'), undefined);
  });
});

// ---------------------------------------------------------------------------

describe('failures', () => {
  test('a wrong password gives ReconcileFailed with the registry UNAUTHORIZED in usefulErrorMessage; fixing the Secret fetches again at once', async () => {
    await env.cluster.apply(credsSecretYaml('failures', 'wrong-creds', WRONG_PASSWORD));
    await env.cluster.apply(
      repositoryYaml('failures', 'wrong-password', image('k8slt/corp-com-pkg-repo', '1.0.0'), {
        secretName: 'wrong-creds',
      }),
    );
    const repo = await waitForRepo('failures', 'wrong-password', 'UNAUTHORIZED', failedWith(/UNAUTHORIZED/));
    const message = `Fetching resources: fetch stage 0 (imgpkgBundle): ${image('k8slt/corp-com-pkg-repo', '1.0.0')}: UNAUTHORIZED: authentication required (HTTP 401 fetching manifest 1.0.0) (sent the credentials of entry "${registry.host}" of Secret wrong-creds)`;
    assert.equal(repo.status?.usefulErrorMessage, message);
    assert.deepEqual(
      repo.status?.conditions?.map((c) => [c.type, c.status, c.message]),
      [['ReconcileFailed', 'True', message]],
    );
    assert.equal(repo.status?.friendlyDescription, `Reconcile failed: ${message.slice(0, 80)}...`);
    assert.equal(repo.status?.fetch?.exitCode, 1);
    assert.equal(repo.status?.fetch?.error, message.replace('Fetching resources: ', ''));
    assert.deepEqual(await repositoryRefs('failures'), {});
    await waitFor('the Warning Event', async () =>
      (await eventsAbout(env, 'failures', 'wrong-password')).includes(`Warning ReconcileFailed: ${message}`),
    );
    assertNoSecretValues('the status', repo.status);
    assertNoSecretValues('the events', await eventsAbout(env, 'failures', 'wrong-password'));

    await env.cluster.apply(credsSecretYaml('failures', 'wrong-creds'));
    await waitForRepo('failures', 'wrong-password', 'succeeded after the fix', succeeded, 10_000);
  });

  test("a bundle without packages/ fails with kapp-controller's message and creates nothing", async () => {
    await env.cluster.apply(
      repositoryYaml('failures', 'no-packages', image('failures/no-packages', '1.0.0'), {
        secretName: 'wrong-creds',
      }),
    );
    const repo = await waitForRepo('failures', 'no-packages', 'failed', failedWith(/packages/));
    assert.equal(
      repo.status?.usefulErrorMessage,
      "Deploying: Invalid package repository content: must contain 'packages/' directory but did not",
    );
    assert.equal(repo.status?.fetch?.exitCode, 0);
    assert.equal(repo.status?.deploy?.exitCode, 1);
    assert.deepEqual(await repositoryRefs('failures'), {
      'simple-app.corp.com.1.0.0': 'failures/wrong-password',
    });
  });

  test('a layer with a ../ path is rejected and nothing is applied', async () => {
    await env.cluster.apply(
      repositoryYaml('failures', 'evil', image('failures/evil', '1.0.0'), { secretName: 'wrong-creds' }),
    );
    const repo = await waitForRepo('failures', 'evil', 'failed', failedWith(/UNSAFE_PATH/));
    assert.match(
      repo.status!.usefulErrorMessage!,
      new RegExp(
        `^Fetching resources: fetch stage 0 \\(imgpkgBundle\\): ${escape(image('failures/evil', '1.0.0'))}: UNSAFE_PATH: layer 2/2 \\(sha256:[0-9a-f]{64}\\): unsafe path "\\.\\./evil" in layer: '\\.\\.' path component$`,
      ),
    );
    assert.deepEqual(await repositoryRefs('failures', PackageMetadatas), {
      'simple-app.corp.com': 'failures/wrong-password',
    });
  });

  test('an operator config Secret with a broken caCerts gives a Warning Event on it and fetches fail with the reason; fixing it recovers', async () => {
    await applyConfig({
      caCerts: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n',
    });
    const reason = `operator configuration Secret ${OPERATOR_NS}/${CONFIG_SECRET} is invalid: caCerts: certificate #1 is not a valid PEM certificate`;
    await waitFor('the Warning Event on the config Secret', async () =>
      (await eventsAbout(env, OPERATOR_NS, CONFIG_SECRET)).includes(
        `Warning InvalidConfiguration: ${reason}`,
      ),
    );
    // A spec change makes the repository fetch now.
    await env.client.mergePatch(PackageRepositories, 'failures', 'wrong-password', {
      spec: { syncPeriod: '11m' },
    });
    const repo = await waitForRepo(
      'failures',
      'wrong-password',
      'config failure',
      failedWith(/operator configuration/),
    );
    assert.equal(
      repo.status?.usefulErrorMessage,
      `Fetching resources: fetch stage 0 (imgpkgBundle): ${reason}`,
    );
    await applyConfig({ caCerts: registry.caCert });
    await waitForRepo('failures', 'wrong-password', 'succeeded again', succeeded, 10_000);
  });
});

// ---------------------------------------------------------------------------

describe('repository content', () => {
  const NS = 'content';

  test('a repository creates its Packages and PackageMetadatas with the package-repository-ref annotation', async () => {
    await env.cluster.apply(credsSecretYaml(NS, 'creds'));
    await env.cluster.apply(
      repositoryYaml(NS, 'main', image('content/repo', '1.0.0'), { secretName: 'creds' }),
    );
    await waitForRepo(NS, 'main', 'succeeded', succeeded);
    assert.deepEqual(await repositoryRefs(NS), {
      'apps.test.carvel.dev.1.0.0': `${NS}/main`,
      'other.test.carvel.dev.1.0.0': `${NS}/main`,
    });
    assert.deepEqual(await repositoryRefs(NS, PackageMetadatas), { 'apps.test.carvel.dev': `${NS}/main` });
    const pkg = await env.client.get<PackageObj>(Packages, NS, 'apps.test.carvel.dev.1.0.0');
    assert.equal(pkg?.spec?.['releaseNotes'], 'first');
  });

  test('a new bundle version updates the Packages and prunes the one it no longer has', async () => {
    await env.client.mergePatch(PackageRepositories, NS, 'main', {
      spec: { fetch: { imgpkgBundle: { image: image('content/repo', '2.0.0') } } },
    });
    const repo = await waitForRepo(
      NS,
      'main',
      'synced v2',
      (r) => succeeded(r) && r.metadata.generation === 2,
    );
    await waitForGone(env, Packages, NS, 'other.test.carvel.dev.1.0.0');
    assert.deepEqual(await repositoryRefs(NS), { 'apps.test.carvel.dev.1.0.0': `${NS}/main` });
    const pkg = await env.client.get<PackageObj>(Packages, NS, 'apps.test.carvel.dev.1.0.0');
    assert.equal(pkg?.spec?.['releaseNotes'], 'second');
    assert.equal(
      repo.status?.deploy?.stdout,
      '1 Packages and 1 PackageMetadatas: 0 created, 1 updated, 1 unchanged, 0 provided by another repository, 1 deleted',
    );
  });

  test('a second repository giving an identical Package succeeds and leaves it to the first', async () => {
    await env.cluster.apply(
      repositoryYaml(NS, 'twin', image('content/twin', '1.0.0'), { secretName: 'creds' }),
    );
    const twin = await waitForRepo(NS, 'twin', 'succeeded', succeeded);
    assert.equal(
      twin.status?.deploy?.stdout,
      '1 Packages and 0 PackageMetadatas: 0 created, 0 updated, 0 unchanged, 1 provided by another repository, 0 deleted',
    );
    assert.deepEqual(await repositoryRefs(NS), { 'apps.test.carvel.dev.1.0.0': `${NS}/main` });
  });

  test('a repository giving a different Package at the same revision fails with Conflicting resources and writes nothing', async () => {
    await env.cluster.apply(
      repositoryYaml(NS, 'rival', image('content/rival', '1.0.0'), { secretName: 'creds' }),
    );
    const rival = await waitForRepo(NS, 'rival', 'conflict', failedWith(/Conflicting resources/));
    assert.equal(
      rival.status?.usefulErrorMessage,
      `Deploying: Conflicting resources: Package/apps.test.carvel.dev.1.0.0 is already provided by PackageRepository ${NS}/main and PackageRepository ${NS}/rival provides a different one (spec.releaseNotes differs); give one of them a higher packaging.carvel.dev/revision annotation`,
    );
    const pkg = await env.client.get<PackageObj>(Packages, NS, 'apps.test.carvel.dev.1.0.0');
    assert.equal(pkg?.spec?.['releaseNotes'], 'second');
    await env.client.delete(PackageRepositories, NS, 'rival');
    await waitForGone(env, PackageRepositories, NS, 'rival');
  });

  test('a repository giving the Package at a higher packaging.carvel.dev/revision takes it over', async () => {
    await env.cluster.apply(
      repositoryYaml(NS, 'newer', image('content/newer', '1.0.0'), { secretName: 'creds' }),
    );
    await waitForRepo(NS, 'newer', 'succeeded', succeeded);
    assert.deepEqual(await repositoryRefs(NS), { 'apps.test.carvel.dev.1.0.0': `${NS}/newer` });
    const pkg = await env.client.get<PackageObj>(Packages, NS, 'apps.test.carvel.dev.1.0.0');
    assert.equal(pkg?.spec?.['releaseNotes'], 'from the newer repository');
    assert.equal(pkg?.metadata?.annotations?.['packaging.carvel.dev/revision'], '2');
  });

  test('a paused repository fetches nothing until it is unpaused', async () => {
    await env.client.mergePatch(PackageRepositories, NS, 'main', {
      spec: { paused: true, fetch: { imgpkgBundle: { image: image('content/repo', '3.0.0') } } },
    });
    const paused = await waitForRepo(NS, 'main', 'Paused', (r) => r.status?.friendlyDescription === 'Paused');
    assert.equal(paused.status?.observedGeneration, paused.metadata.generation);
    assert.equal(paused.status?.conditions?.[0]?.type, 'ReconcileSucceeded');
    await sleep(2000);
    assert.equal(await env.client.get(Packages, NS, 'apps.test.carvel.dev.1.1.0'), undefined);
    await env.client.mergePatch(PackageRepositories, NS, 'main', { spec: { paused: false } });
    await waitForRepo(NS, 'main', 'synced v3', succeeded);
    assert.deepEqual(await repositoryRefs(NS), {
      'apps.test.carvel.dev.1.0.0': `${NS}/newer`,
      'apps.test.carvel.dev.1.1.0': `${NS}/main`,
    });
  });

  test('deleting a repository removes the Packages it created, and only those', async () => {
    await env.cluster.kubectl(['delete', 'pkgr', '-n', NS, 'main', '--wait=false']);
    await waitForGone(env, PackageRepositories, NS, 'main');
    assert.deepEqual(await repositoryRefs(NS), { 'apps.test.carvel.dev.1.0.0': `${NS}/newer` });
    assert.deepEqual(await repositoryRefs(NS, PackageMetadatas), {});
  });
});

// ---------------------------------------------------------------------------

describe('App fetch stages', () => {
  test('an App fetches an image with subPath and an inline stage, then fails at the template step it cannot run', async () => {
    await env.cluster.apply(credsSecretYaml('apps', 'creds'));
    await env.cluster.apply(`apiVersion: kappctrl.k14s.io/v1alpha1
kind: App
metadata: {name: two-stages, namespace: apps}
spec:
  serviceAccountName: deployer
  fetch:
  - image: {url: ${image('apps/plain-config', '1.0.0')}, subPath: deep, secretRef: {name: creds}}
    path: from-image
  - inline: {paths: {values.yml: "a: 1"}}
    path: values
  template: [{ytt: {}}]
  deploy: [{kapp: {}}]
`);
    const app = await waitForApp('apps', 'two-stages', 'fetched', fetchedThenTemplateUnsupported);
    assert.match(
      String(app.status?.fetch?.stdout),
      new RegExp(
        `^Fetched image ${escape(pinned('apps/plain-config', '1.0.0'))} \\(1 files, 16 bytes\\)\nWrote 1 inline file$`,
      ),
    );
    assert.deepEqual(
      app.status?.conditions?.map((c) => [c.type, c.message]),
      [['ReconcileFailed', TEMPLATE_UNSUPPORTED]],
    );
  });

  test('a fetch stage kind with no runner still fails naming it', async () => {
    await env.cluster.apply(`apiVersion: kappctrl.k14s.io/v1alpha1
kind: App
metadata: {name: from-git, namespace: apps}
spec:
  serviceAccountName: deployer
  fetch: [{git: {url: https://github.com/corp/config, ref: origin/main}}]
  template: [{ytt: {}}]
  deploy: [{kapp: {}}]
`);
    await waitForApp(
      'apps',
      'from-git',
      'failed',
      failedWith(/^Fetching resources: fetch stage 0 \(git\): not supported yet$/),
    );
  });
});

// ---------------------------------------------------------------------------

describe('syncPeriod', () => {
  test('a repository fetches again after its syncPeriod (30s) and picks up the bundle pushed to its tag meanwhile', async () => {
    await waitForObject(
      env,
      Packages,
      'periodic',
      'periodic.test.carvel.dev.2.0.0',
      'the new Package',
      () => true,
      60_000,
    );
    const repo = await waitForRepo('periodic', 'periodic', 'succeeded', succeeded);
    // No spec change: only the sync period made it fetch again.
    assert.equal(repo.metadata.generation, 1);
    const elapsed = Date.parse(String(repo.status?.fetch?.startedAt)) - periodicFirstFetchAt;
    assert.ok(
      elapsed >= 29_000,
      `fetched again ${elapsed} ms after the first success, before its syncPeriod`,
    );
    assert.deepEqual(await repositoryRefs('periodic'), {
      'periodic.test.carvel.dev.2.0.0': 'periodic/periodic',
    });
    // Each sync writes only what changed: the unchanged PackageMetadata was never written again.
    assert.deepEqual(
      env.operatorWritesSince(0).filter((w) => / (packages|packagemetadatas) periodic\//.test(w)),
      [
        'create packagemetadatas periodic/periodic.test.carvel.dev (201)',
        'create packages periodic/periodic.test.carvel.dev.2.0.0 (201)',
      ],
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
