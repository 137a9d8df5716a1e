// npm run demo [-- --once]
// The seed's whole story on this machine: a local control plane, a private
// registry (CNCF distribution with TLS and htpasswd users), and the operator.
// The docs page "Authenticating to Private Registries" applies unchanged but
// for its registry names and credentials; its package repository is copied
// into the private registry the way `imgpkg copy` leaves it; the credential is
// exported once, placeholders fill, Packages appear and point at the mirror, a
// PackageInstall's App fetches its bundle from there; then the credential is
// rotated and everything fetches again. Each step waits a bounded time and the
// demo exits 1 naming the step that did not happen. Ctrl-C stops everything;
// --once stops after the walkthrough (exit 0 when every step happened).
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';

import { defaultConfig } from '../src/config.js';
import { startOperator, type RunningOperator } from '../src/main.js';
import {
  Apps,
  PackageMetadatas,
  PackageRepositories,
  Packages,
} from '../src/packaging/controllers/resources.js';
import type { RunStatus } from '../src/packaging/run-status.js';
import { createLogger } from '../src/runtime/logger.js';
import { SecretsResource } from '../src/shared-informers.js';
import { copyLikeImgpkg, imagesLock, type CopiedImage } from './fixtures/demo/imgpkg-copy.js';
import { REPO_ROOT, startTestCluster, type TestCluster } from './harness/cluster.js';
import { startRegistry, writeOciLayout, type RegistryUser, type TestRegistry } from './harness/registry.js';

const once = process.argv.includes('--once');
const STEP_TIMEOUT_MS = Number(process.env['REGCRED_DEMO_STEP_TIMEOUT_MS'] ?? 60_000);
if (!Number.isFinite(STEP_TIMEOUT_MS) || STEP_TIMEOUT_MS <= 0) {
  console.error('REGCRED_DEMO_STEP_TIMEOUT_MS must be a positive number of milliseconds');
  process.exit(2);
}

/** The public registry the repository was published to: it never resolves, like from an air-gapped cluster. */
const ORIGINAL_HOST = 'public-registry.invalid';
const MIRROR_REPOSITORY = 'mirror/private-repo';
const GLOBAL = 'kapp-controller-packaging-global';
const REPO = 'e2e-repo.test.carvel.dev';
const PKG = 'pkg.test.carvel.dev';
const OPERATOR_NS = 'regcred-operator';
const OPERATOR_STOP_MS = 10_000;

const say = (line = '') => console.log(line);
const indent = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

type Obj = KubernetesObject & { spec?: Record<string, unknown>; status?: RunStatus };
type FetchStage = { imgpkgBundle?: { image?: string; secretRef?: { name?: string } } };

class StepFailed extends Error {}

let stepCount = 0;
/** Runs one step of the story; a failure names the step. */
async function step<T>(title: string, run: () => Promise<T>): Promise<T> {
  const n = ++stepCount;
  say(`\n=== ${n}. ${title}`);
  try {
    return await run();
  } catch (err) {
    throw new StepFailed(`step ${n} (${title}): ${errorText(err)}`, { cause: err });
  }
}

/**
 * Polls `probe` (which returns the value when done, and what it saw) until
 * done, or fails after the step timeout with the last observation.
 */
async function until<T>(what: string, probe: () => Promise<[T | undefined, string]>): Promise<T> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let last: string;
  for (;;) {
    try {
      const [value, seen] = await probe();
      last = seen;
      if (value !== undefined) return value;
    } catch (err) {
      last = errorText(err);
    }
    if (Date.now() > deadline)
      throw new Error(`${what} did not happen within ${STEP_TIMEOUT_MS / 1000} s; last seen: ${last}`);
    await sleep(200);
  }
}

/** Whether `promise` settles (either way) within `ms`; the timer does not outlive the answer. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Registry keys and user names of a dockerconfigjson Secret; never passwords. */
function describeCredentials(secret: V1Secret | undefined): string {
  if (!secret) return 'absent';
  const raw = Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8');
  try {
    const auths = (JSON.parse(raw) as { auths?: Record<string, { username?: string }> }).auths ?? {};
    const entries = Object.entries(auths).map(([host, e]) => `${host} as ${e.username ?? '(no username)'}`);
    return entries.length > 0 ? entries.join(', ') : 'no credentials yet';
  } catch {
    return '(unparsable)';
  }
}

function describeStatus(o: Obj | undefined): string {
  if (!o) return 'absent';
  const s = o.status;
  const condition = s?.conditions?.[0]?.type ?? 'no condition yet';
  const error = s?.usefulErrorMessage ? `: ${s.usefulErrorMessage}` : '';
  const fetch = s?.fetch
    ? ` (fetch exitCode ${String(s.fetch.exitCode)} at ${String(s.fetch.startedAt)})`
    : '';
  return `${condition}${error}${fetch}`;
}

const current = (o: Obj) => o.status?.observedGeneration === o.metadata?.generation;
const fetchStages = (o: Obj | undefined): FetchStage[] =>
  (o?.spec?.['fetch'] ??
    (o?.spec?.['template'] as { spec?: { fetch?: unknown } } | undefined)?.spec?.fetch ??
    []) as FetchStage[];

/** GET /v2/ with HTTP Basic credentials: 200 when the registry accepts them, 401 when not. */
function registryAnswers(registry: TestRegistry, user: RegistryUser): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `https://${registry.host}/v2/`,
      { ca: registry.caCert, auth: `${user.username}:${user.password}`, timeout: 5000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function credentialsSecretYaml(namespace: string, name: string, host: string, user: RegistryUser): string {
  const config = { auths: { [host]: { username: user.username, password: user.password, auth: '' } } };
  return stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'kubernetes.io/dockerconfigjson',
    stringData: { '.dockerconfigjson': JSON.stringify(config) },
  });
}

/** Replaces `from` by `to` in `text`; throws when `from` is missing (the fixture changed). */
function replaceOnce(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`e2e/fixtures/seed-examples.yaml no longer contains ${from}`);
  return text.split(from).join(to);
}

interface Published {
  /** The seed's repository bundle, copied into the mirror. */
  repo: CopiedImage;
  /** The package bundle pkg-demo installs, copied with it. */
  pkg: CopiedImage;
}

/** Builds the seed's repository (repository bundle → package bundle → app image) and copies it like imgpkg. */
async function publishRelocatedRepository(registry: TestRegistry, workDir: string): Promise<Published> {
  const app = {
    repository: `${ORIGINAL_HOST}/k14stest/hello-app`,
    tag: '1.0.0',
    bundle: false,
    files: { 'hello.txt': 'hello from the seed package\n' },
  };
  const pkg = {
    repository: `${ORIGINAL_HOST}/k14stest/private-pkg`,
    tag: '1.0.0',
    bundle: true,
    images: [app],
    files: ([appCopy]: CopiedImage[]) => ({
      'config/config.yml': stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'hello' },
        spec: {
          containers: [{ name: 'hello', image: appCopy!.originalRef }],
          imagePullSecrets: [{ name: 'reg-creds' }],
        },
      }),
      // The placeholder the docs page asks package authors to ship next to their Pods.
      'config/reg-creds.yml': stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'reg-creds', annotations: { 'secretgen.carvel.dev/image-pull-secret': '' } },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': 'e30K' },
      }),
    }),
  };
  const repo = {
    repository: `${ORIGINAL_HOST}/k14stest/private-repo`,
    tag: '1.0.0',
    bundle: true,
    images: [pkg],
    files: ([pkgCopy]: CopiedImage[]) => ({
      [`packages/${PKG}/1.0.0.yml`]: stringify({
        apiVersion: 'data.packaging.carvel.dev/v1alpha1',
        kind: 'Package',
        metadata: { name: `${PKG}.1.0.0` },
        spec: {
          refName: PKG,
          version: '1.0.0',
          template: {
            spec: {
              fetch: [{ imgpkgBundle: { image: pkgCopy!.originalRef } }],
              template: [{ ytt: { paths: ['config/'] } }, { kbld: { paths: ['-', '.imgpkg/images.yml'] } }],
              deploy: [{ kapp: {} }],
            },
          },
        },
      }),
      [`packages/${PKG}/metadata.yml`]: stringify({
        apiVersion: 'data.packaging.carvel.dev/v1alpha1',
        kind: 'PackageMetadata',
        metadata: { name: PKG },
        spec: { displayName: 'Seed test package', shortDescription: 'The package of the seed scenario' },
      }),
    }),
  };
  const repoCopy = await copyLikeImgpkg(registry, workDir, MIRROR_REPOSITORY, repo, {
    locationsImage: true,
    rootTag: '1.0.0',
  });
  return { repo: repoCopy, pkg: repoCopy.images[0]! };
}

/** The manual configuration's repository and package bundle (pushed as they are, not copied). */
async function publishManualConfiguration(registry: TestRegistry, workDir: string): Promise<void> {
  const simpleApp = await writeOciLayout(
    join(workDir, 'simple-app'),
    {
      'config/app.yml': stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'simple-app' } }),
    },
    { tag: '1.0.0', bundle: true },
  );
  await registry.push(simpleApp.dir, '1.0.0', 'packages/simple-app');
  // The page applies Package simple-app.corp.com.1.0.0 itself; the repository brings its metadata.
  const corpRepo = await writeOciLayout(
    join(workDir, 'corp-com-pkg-repo'),
    {
      'packages/simple-app.corp.com/metadata.yml': stringify({
        apiVersion: 'data.packaging.carvel.dev/v1alpha1',
        kind: 'PackageMetadata',
        metadata: { name: 'simple-app.corp.com' },
        spec: { displayName: 'Simple app', shortDescription: "The docs page's manual configuration" },
      }),
      '.imgpkg/images.yml': imagesLock([]),
    },
    { tag: '1.0.0', bundle: true },
  );
  await registry.push(corpRepo.dir, '1.0.0', 'k8slt/corp-com-pkg-repo');
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'regcred-demo-'));
  const logFile = join(workDir, 'operator.log');
  const logStream = createWriteStream(logFile);
  const password = () => randomBytes(12).toString('hex');
  // The exported credential, before and after rotation, and the manual configuration's own one.
  const shared: RegistryUser = { username: 'pull-robot-1', password: password() };
  const rotated: RegistryUser = { username: 'pull-robot-2', password: password() };
  const corp: RegistryUser = { username: 'corp-reader', password: password() };

  let cluster: TestCluster | undefined;
  let registry: TestRegistry | undefined;
  let operator: RunningOperator | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      say('\n=== Stopping');
      // Ctrl-C reaches etcd and kube-apiserver too; the operator's drain could then wait for request timeouts.
      if (operator && !(await settlesWithin(operator.stop(), OPERATOR_STOP_MS)))
        say(
          `the operator did not drain within ${OPERATOR_STOP_MS / 1000} s (the control plane is going away)`,
        );
      await Promise.all([cluster?.stop(), registry?.stop()]);
      logStream.end();
      rmSync(workDir, { recursive: true, force: true });
      say('operator, control plane, registry and temporary files are gone');
    })());
  process.on('SIGINT', () => void stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(0)));

  try {
    await step('Starting a local control plane and a private registry (TLS + htpasswd)', async () => {
      [cluster, registry] = await Promise.all([
        startTestCluster({ auditLog: false }),
        startRegistry({ users: [shared, corp] }),
      ]);
      say(`kube-apiserver ready at ${cluster.cp.server}; CRDs of crds/ installed`);
      say(
        `private registry at https://${registry.host}: TLS from a throwaway CA, users ${shared.username} and ${corp.username}`,
      );
    });
    const c = cluster!;
    const r = registry!;
    const get = (rt: Parameters<typeof c.client.get>[0], ns: string, name: string) =>
      c.client.get<Obj>(rt, ns, name);
    const getSecret = (ns: string, name: string) => c.client.get<V1Secret>(SecretsResource, ns, name);

    const published = await step(
      `Copying the seed's package repository into the private registry, the way imgpkg copy leaves it`,
      async () => {
        const result = await publishRelocatedRepository(r, workDir);
        await publishManualConfiguration(r, workDir);
        const { repo, pkg } = result;
        const [app] = pkg.images;
        say(
          `It was published at ${ORIGINAL_HOST}, a host that never resolves here (as from an air-gapped cluster).`,
        );
        say(
          `Everything now lives in ONE repository of the private registry, ${r.host}/${MIRROR_REPOSITORY}:`,
        );
        const tags = (digest: string) => `${digest.replace(':', '-')}.imgpkg`;
        const locations = (digest: string) => `${digest.replace(':', '-')}.image-locations.imgpkg`;
        say(`  @${repo.digest}  the repository bundle, tags 1.0.0 and ${tags(repo.digest)}`);
        say(`  @${pkg.digest}  the package bundle, tag ${tags(pkg.digest)}`);
        say(`  @${app!.digest}  the app image, tag ${tags(app!.digest)}`);
        say(`  :${locations(repo.digest)}  locations image of the repository bundle`);
        say(`  :${locations(pkg.digest)}  locations image of the package bundle`);
        say(`The bundles' .imgpkg/images.yml and the Package inside still name the original host:`);
        say(`  ${pkg.originalRef}`);
        say(
          `The manual configuration's bundles: ${r.host}/k8slt/corp-com-pkg-repo:1.0.0, ${r.host}/packages/simple-app:1.0.0`,
        );
        return result;
      },
    );

    await step('Starting the operator (all controllers, one process), trusting the registry CA', async () => {
      await c.apply(
        stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NS } }) +
          '---\n' +
          stringify({
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: 'regcred-operator-config', namespace: OPERATOR_NS },
            stringData: { caCerts: r.caCert },
          }),
      );
      const config = defaultConfig({
        kubeconfig: c.cp.kubeconfig,
        healthPort: 0,
        healthHost: '127.0.0.1',
        webhookPort: 0,
      });
      operator = await startOperator(config, createLogger('info', logStream));
      say(`operator ready; health on http://127.0.0.1:${operator.manager.healthAddress()?.port}/readyz`);
      say(`JSON logs in ${logFile}`);
      say(`Secret ${OPERATOR_NS}/regcred-operator-config holds the registry's CA in caCerts.`);
    });

    await step(
      "Applying the docs page's examples, with its registry names replaced by the local registry",
      async () => {
        let yaml = readFileSync(join(REPO_ROOT, 'e2e', 'fixtures', 'seed-examples.yaml'), 'utf8');
        // [in the page, here, as printed]
        const replacements: Array<[string, string, string]> = [
          ['"index.docker.io"', `"${r.host}"`, `"${r.host}"  (the registry of the exported credential)`],
          ['"user..."', `"${shared.username}"`, `"${shared.username}"`],
          ['"password..."', `"${shared.password}"`, '(its password, not shown)'],
          [
            'k14stest/private-repo@sha256:ddd93b0000000000000000000000000000000000000000000000000000000000',
            published.repo.relocatedRef,
            `${published.repo.relocatedRef}  (the copy of the repository bundle)`,
          ],
          [
            'k8slt/corp-com-pkg-repo:1.0.0',
            `${r.host}/k8slt/corp-com-pkg-repo:1.0.0`,
            `${r.host}/k8slt/corp-com-pkg-repo:1.0.0`,
          ],
          [
            'registry.corp.com/packages/simple-app:1.0.0',
            `${r.host}/packages/simple-app:1.0.0`,
            `${r.host}/packages/simple-app:1.0.0`,
          ],
        ];
        for (const [from, to, shown] of replacements) {
          yaml = replaceOnce(yaml, from, to);
          say(`  ${from} -> ${shown}`);
        }
        say(indent(await c.apply(yaml)));
        say(
          "The manual configuration's Secrets, which the page asks you to create (their own user, not exported):",
        );
        say(
          indent(
            await c.apply(
              credentialsSecretYaml('default', 'my-registry-creds', r.host, corp) +
                '---\n' +
                credentialsSecretYaml('default', 'simple-app-secret', r.host, corp),
            ),
          ),
        );
      },
    );

    await step('The credential, exported once, fills the placeholders', async () => {
      for (const [ns, name] of [
        ['default', 'reg-creds'],
        [GLOBAL, `${REPO}-fetch-0`],
      ] as const) {
        const filled = await until(`placeholder ${ns}/${name} filled`, async () => {
          const s = await getSecret(ns, name);
          const seen = describeCredentials(s);
          return [seen === `${r.host} as ${shared.username}` ? seen : undefined, seen];
        });
        say(`  ${ns}/${name}: ${filled}`);
      }
      await c.apply(`apiVersion: v1
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
      const teamA = await until('placeholder team-a/pull-creds filled', async () => {
        const seen = describeCredentials(await getSecret('team-a', 'pull-creds'));
        return [seen.startsWith(r.host) ? seen : undefined, seen];
      });
      say(`  team-a/pull-creds (a namespace created afterwards): ${teamA}`);
    });

    await step(
      `PackageRepository ${REPO} fetches the relocated bundle with its placeholder; Packages appear`,
      async () => {
        const repo = await until(`PackageRepository ${GLOBAL}/${REPO} to succeed`, async () => {
          const o = await get(PackageRepositories, GLOBAL, REPO);
          const ok = o && current(o) && o.status?.conditions?.[0]?.type === 'ReconcileSucceeded';
          return [ok ? o : undefined, describeStatus(o)];
        });
        say(`  ${repo.status?.fetch?.stdout ?? ''}`);
        say(`  ${repo.status?.deploy?.stdout ?? ''}`);
        await until(`Package ${PKG}.1.0.0 and PackageMetadata ${PKG} to appear in ${GLOBAL}`, async () => {
          const [p, m] = await Promise.all([
            get(Packages, GLOBAL, `${PKG}.1.0.0`),
            get(PackageMetadatas, GLOBAL, PKG),
          ]);
          return [
            p && m ? true : undefined,
            `Package ${p ? 'present' : 'absent'}, PackageMetadata ${m ? 'present' : 'absent'}`,
          ];
        });
        say(`  Package ${PKG}.1.0.0 and PackageMetadata ${PKG} are in ${GLOBAL}, visible to every namespace`);
      },
    );

    await step(`The Package's fetch reference points at the mirror, not at ${ORIGINAL_HOST}`, async () => {
      await until(`Package ${PKG}.1.0.0 to name ${published.pkg.relocatedRef}`, async () => {
        const image = fetchStages(await get(Packages, GLOBAL, `${PKG}.1.0.0`))[0]?.imgpkgBundle?.image;
        return [
          image === published.pkg.relocatedRef ? true : undefined,
          `imgpkgBundle.image ${image ?? 'absent'}`,
        ];
      });
      say(`  in the bundle:   ${published.pkg.originalRef}`);
      say(`  in the cluster:  ${published.pkg.relocatedRef}`);
      say("  (resolved against the repository bundle's images.yml, relocated with the locations image)");
    });

    const appFetchedWith = async (user: RegistryUser, since?: number) => {
      const app = await until(`App default/pkg-demo to fetch ${published.pkg.relocatedRef}`, async () => {
        const o = await get(Apps, 'default', 'pkg-demo');
        const stage = fetchStages(o)[0]?.imgpkgBundle;
        const fetch = o?.status?.fetch;
        const ok =
          o &&
          current(o) &&
          stage?.image === published.pkg.relocatedRef &&
          stage.secretRef?.name === 'pkg-demo-fetch-0' &&
          fetch?.exitCode === 0 &&
          (since === undefined || Date.parse(String(fetch.startedAt)) >= since);
        return [ok ? o : undefined, `${JSON.stringify(stage ?? null)}; ${describeStatus(o)}`];
      });
      const placeholder = describeCredentials(await getSecret('default', 'pkg-demo-fetch-0'));
      if (placeholder !== `${r.host} as ${user.username}`)
        throw new Error(
          `placeholder default/pkg-demo-fetch-0 holds ${placeholder}, expected ${user.username}`,
        );
      return { app, placeholder };
    };

    await step(
      'PackageInstall pkg-demo: its App fetches the package bundle from the mirror with placeholder pkg-demo-fetch-0',
      async () => {
        const { app, placeholder } = await appFetchedWith(shared);
        say(
          `  placeholder default/pkg-demo-fetch-0 (made by the PackageInstall, filled from the export): ${placeholder}`,
        );
        say(`  ${app.status?.fetch?.stdout ?? ''}`);
        say(`  then: ${app.status?.usefulErrorMessage ?? 'no error'}`);
        say('  (rendering and deploying are not part of this operator: kapp-controller ships ytt and kapp)');
      },
    );

    await step(
      'The manual configuration (secretRef and fetch-0-secret-name) fetches with its own Secrets',
      async () => {
        const repo = await until(
          'PackageRepository default/simple-package-repository to succeed',
          async () => {
            const o = await get(PackageRepositories, 'default', 'simple-package-repository');
            const ok = o && current(o) && o.status?.conditions?.[0]?.type === 'ReconcileSucceeded';
            return [ok ? o : undefined, describeStatus(o)];
          },
        );
        say(`  simple-package-repository: ${repo.status?.fetch?.stdout ?? ''}`);
        const app = await until('App default/simple-app-with-secret to fetch', async () => {
          const o = await get(Apps, 'default', 'simple-app-with-secret');
          const ok = o && current(o) && o.status?.fetch?.exitCode === 0;
          return [ok ? o : undefined, describeStatus(o)];
        });
        say(`  simple-app-with-secret: ${app.status?.fetch?.stdout ?? ''}`);
      },
    );

    await step(
      `Rotating the credential: ${shared.username} is revoked at the registry, ${rotated.username} replaces it in secrets-ns/reg-creds only`,
      async () => {
        const before = await get(PackageRepositories, GLOBAL, REPO);
        await r.setUsers([rotated, corp]);
        await until(`the registry to refuse ${shared.username} and accept ${rotated.username}`, async () => {
          const [old, renewed] = await Promise.all([registryAnswers(r, shared), registryAnswers(r, rotated)]);
          return [old === 401 && renewed === 200 ? true : undefined, `old ${old}, new ${renewed}`];
        });
        // Fetch times have whole seconds: anything starting from the next second started after the revocation.
        const rotatedAt = Math.ceil(Date.now() / 1000) * 1000;
        await sleep(rotatedAt - Date.now());
        await c.apply(credentialsSecretYaml('secrets-ns', 'reg-creds', r.host, rotated));
        say(`  the registry now refuses ${shared.username}; secrets-ns/reg-creds holds ${rotated.username}`);

        for (const [ns, name] of [
          ['default', 'reg-creds'],
          ['team-a', 'pull-creds'],
          [GLOBAL, `${REPO}-fetch-0`],
          ['default', 'pkg-demo-fetch-0'],
        ] as const) {
          const seen = await until(`placeholder ${ns}/${name} to hold ${rotated.username}`, async () => {
            const s = describeCredentials(await getSecret(ns, name));
            return [s === `${r.host} as ${rotated.username}` ? s : undefined, s];
          });
          say(`  ${ns}/${name}: ${seen}`);
        }
        const repo = await until(
          `PackageRepository ${GLOBAL}/${REPO} to fetch again and succeed`,
          async () => {
            const o = await get(PackageRepositories, GLOBAL, REPO);
            const ok =
              o &&
              current(o) &&
              o.status?.conditions?.[0]?.type === 'ReconcileSucceeded' &&
              Date.parse(String(o.status.fetch?.startedAt)) >= rotatedAt;
            return [ok ? o : undefined, describeStatus(o)];
          },
        );
        say(
          `  PackageRepository ${REPO}: fetched again at ${String(repo.status?.fetch?.startedAt)} (before: ${String(before?.status?.fetch?.startedAt)}), succeeded`,
        );
        const { app } = await appFetchedWith(rotated, rotatedAt);
        say(
          `  App pkg-demo: fetched again at ${String(app.status?.fetch?.startedAt)}: ${app.status?.fetch?.stdout ?? ''}`,
        );
        say(
          `  Both could only have used ${rotated.username}: the registry refuses ${shared.username} since before they started.`,
        );
      },
    );

    say('\n=== Where things are');
    say(indent(await c.kubectl(['get', 'secretexports,pkgr,pkgi,apps', '-A'])));
    say(
      indent(
        await c.kubectl([
          'get',
          'pkg',
          '-A',
          '-o',
          'custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,FETCH:.spec.template.spec.fetch[0].imgpkgBundle.image',
        ]),
      ),
    );
    say(
      indent(
        await c.kubectl([
          'get',
          'secrets',
          '-A',
          '-o',
          'custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,TYPE:.type,STATUS:.metadata.annotations.secretgen\\.carvel\\.dev/status',
        ]),
      ),
    );

    say('\n=== Look for yourself (another shell)');
    say(`  export KUBECONFIG=${c.cp.kubeconfig} PATH=${dirname(c.cp.kubectlPath)}:$PATH`);
    say('  kubectl get secretexports,pkgr,pkg,pkgi,apps -A');
    say(`  kubectl get pkg -n ${GLOBAL} ${PKG}.1.0.0 -o jsonpath='{.spec.template.spec.fetch}'`);
    say('  kubectl get app -n default pkg-demo -o jsonpath=\'{.spec.fetch}{"\\n"}{.status.fetch.stdout}\'');
    say(`  kubectl get pkgr -n ${GLOBAL} ${REPO} -o yaml`);
    say(
      "  kubectl get secret -n default pkg-demo-fetch-0 -o jsonpath='{.data.\\.dockerconfigjson}' | base64 -d",
    );
    say(
      `  kubectl get secret -n default pkg-demo-fetch-0 -o jsonpath='{.data.\\.dockerconfigjson}' | base64 -d > /tmp/auth.json`,
    );
    say(
      `  skopeo list-tags --cert-dir ${r.caDir} --authfile /tmp/auth.json docker://${r.host}/${MIRROR_REPOSITORY}`,
    );

    say('\nEvery step happened.');
    if (once) {
      await stop();
      return;
    }
    say('Press Ctrl-C to stop the operator, the control plane and the registry.');
    await new Promise(() => undefined);
  } catch (err) {
    // Ctrl-C while a step waits: the step fails because everything is stopping, not because it did not happen.
    if (stopping) {
      await stopping;
      return;
    }
    console.error(`\nDEMO FAILED at ${errorText(err)}`);
    if (existsSync(logFile)) {
      const tail = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
      console.error(`--- last operator log lines\n${tail}`);
    }
    if (!(err instanceof StepFailed)) console.error(err);
    await stop();
    process.exit(1);
  }
}

await main();
