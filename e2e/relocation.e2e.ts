// Relocated repositories: the seed's consumer copies a package repository
// with `imgpkg copy` into a private registry (CNCF distribution with TLS and
// htpasswd) and installs from there. There is no imgpkg binary here, so the
// registry is laid out the way `imgpkg copy -b <original>/repo:1.0.0
// --to-repo <mirror>/<repo>` leaves it, with OCI layouts built on disk and
// pushed with skopeo:
//   - every image of every bundle lands in the one destination repository,
//     by digest, tagged `sha256-<hex>.imgpkg`; the repository bundle also
//     keeps its tag;
//   - each bundle's `.imgpkg/images.yml` and the Packages still name the
//     original locations;
//   - for every bundle, a locations image tagged
//     `sha256-<bundle hex>.image-locations.imgpkg` holds `image-locations.yml`
//     (mirror A); mirror B is the same copy without the locations images (as
//     copies by older imgpkg versions, or registries that refused the tag).
// The original hosts never answer: `original.invalid` does not resolve, and
// the other original is a loopback port that counts and drops connections.
// The seed flow then runs end to end: credentials exported to "*", the
// PackageRepository from the mirror without secretRef, Packages with
// relocated references, and the PackageInstall's App fetching its bundle
// from the mirror with its placeholder.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';

import { Apps, PackageRepositories, Packages } from '../src/packaging/controllers/resources.js';
import type { RunStatus } from '../src/packaging/run-status.js';
import type { App, PackageRepository } from '../src/packaging/types.js';
import {
  Secrets,
  createNamespace,
  dockerConfig,
  startPackagingEnv,
  waitForObject,
  type PackagingEnv,
} from './fixtures/packaging/env.js';
import { startRegistry, writeOciLayout, type TestRegistry } from './harness/registry.js';

const GLOBAL = 'kapp-controller-packaging-global';
const OPERATOR_NS = 'regcred-operator';
const CONFIG_SECRET = 'regcred-operator-config';
const DATA_API = 'data.packaging.carvel.dev/v1alpha1';
const PKG_API = 'packaging.carvel.dev/v1alpha1';
const ALICE = { username: 'alice', password: 'relocation-e2e-Alice-Pa55' };
const UNRESOLVABLE = 'original.invalid';

type Pkgr = PackageRepository & { metadata: { generation: number }; status?: RunStatus };
type AppObj = App & { metadata: { generation: number }; status?: RunStatus };
type PackageObj = KubernetesObject & {
  spec?: { template?: { spec?: { fetch?: Array<{ imgpkgBundle?: { image?: string } }> } } };
};

let env: PackagingEnv;
let registry: TestRegistry;
let work: string;
let layouts = 0;
/** The "original registry" on loopback: accepts and drops every connection, counting them. */
let original: Server;
let originalHost = '';
let originalConnections = 0;

/** Digests of what each mirror holds. */
interface Mirror {
  repository: string;
  repoBundle: string;
  pkgBundle: string;
  image: string;
}
const mirrors: Record<'A' | 'B' | 'C', Mirror> = {} as Record<'A' | 'B' | 'C', Mirror>;

const ref = (repository: string, digest: string) => `${registry.host}/${repository}@${digest}`;
const hex = (digest: string) => digest.replace(/^sha256:/, '');

function packageDoc(refName: string, version: string, bundleImage: string) {
  return {
    apiVersion: DATA_API,
    kind: 'Package',
    metadata: { name: `${refName}.${version}` },
    spec: {
      refName,
      version,
      template: {
        spec: {
          fetch: [{ imgpkgBundle: { image: bundleImage } }],
          template: [{ ytt: { paths: ['config/'] } }, { kbld: { paths: ['-', '.imgpkg/images.yml'] } }],
          deploy: [{ kapp: {} }],
        },
      },
    },
  };
}

const imagesLock = (images: Array<{ image: string; id?: string }>) =>
  `---\n${stringify({
    apiVersion: 'imgpkg.carvel.dev/v1alpha1',
    kind: 'ImagesLock',
    images: images.map(({ image, id }) => ({
      image,
      ...(id ? { annotations: { 'kbld.carvel.dev/id': id } } : {}),
    })),
  })}`;

/** What imgpkg copy writes into a locations image: the original references and whether each is a bundle. */
const imageLocations = (images: Array<{ image: string; isBundle: boolean }>) =>
  `---\n${stringify({ apiVersion: 'imgpkg.carvel.dev/v1alpha1', images, kind: 'ImageLocations' })}`;

/** Builds an OCI layout; returns its directory and manifest digest (which skopeo keeps on push). */
async function layout(files: Record<string, string>, options: { bundle: boolean; docker?: boolean }) {
  const dir = join(work, `layout-${++layouts}`);
  const built = await writeOciLayout(dir, files, {
    tag: 'build',
    bundle: options.bundle,
    ...(options.docker ? { dockerMediaTypes: true } : {}),
  });
  return { dir, digest: built.manifestDigest };
}

/** Gives the layout's image more tags (index.json entries), so skopeo can push it under each. */
function tagLayout(dir: string, tags: string[]): void {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
    manifests: Array<{ annotations?: Record<string, string> }>;
  };
  const [first] = index.manifests;
  for (const tag of tags) {
    index.manifests.push({ ...first, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
}

/** Pushes a built layout under each tag, checking the registry kept its digest (as imgpkg copy does). */
async function pushAs(built: { dir: string; digest: string }, repository: string, tags: string[]) {
  tagLayout(built.dir, tags);
  for (const tag of tags) {
    const pushed = await registry.push(built.dir, tag, repository);
    assert.equal(pushed, built.digest, `skopeo kept the digest of ${repository}:${tag}`);
  }
}

/**
 * Lays out `repository` as `imgpkg copy` of a repository bundle whose one
 * package bundle lists one container image, all originally on `host`.
 * `locations`: also push the locations images. `complete`: false leaves the
 * container image out (a bundle that was not copied with its images).
 */
async function copyRepository(
  repository: string,
  host: string,
  refName: string,
  options: { locations: boolean; complete?: boolean },
): Promise<Mirror> {
  const complete = options.complete ?? true;
  const image = await layout({ 'app/run.sh': `echo ${repository}\n` }, { bundle: false });
  const originalImage = `${host}/images/app@${image.digest}`;
  const pkgBundle = await layout(
    {
      'config/config.yml': `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${refName.split('.')[0]}}\n`,
      '.imgpkg/images.yml': imagesLock([{ image: originalImage, id: `${host}/images/app:1.0.0` }]),
    },
    { bundle: true },
  );
  const originalPkg = `${host}/pkgs/app@${pkgBundle.digest}`;
  const repoBundle = await layout(
    {
      // 1.0.0 names the package bundle by digest, 2.0.0 by the tag kbld resolved (its kbld.carvel.dev/id).
      'packages/app/1.0.0.yml': stringify(packageDoc(refName, '1.0.0', originalPkg)),
      'packages/app/2.0.0.yml': stringify(packageDoc(refName, '2.0.0', `${host}/pkgs/app:1.0.0`)),
      'packages/app/metadata.yml': stringify({
        apiVersion: DATA_API,
        kind: 'PackageMetadata',
        metadata: { name: refName },
        spec: { displayName: refName },
      }),
      '.imgpkg/images.yml': imagesLock([{ image: originalPkg, id: `${host}/pkgs/app:1.0.0` }]),
    },
    { bundle: true },
  );
  const copyTag = (digest: string) => `sha256-${hex(digest)}.imgpkg`;
  if (complete) await pushAs(image, repository, [copyTag(image.digest)]);
  await pushAs(pkgBundle, repository, [copyTag(pkgBundle.digest)]);
  await pushAs(repoBundle, repository, ['1.0.0', copyTag(repoBundle.digest)]);
  if (options.locations) {
    for (const [bundle, listed] of [
      [repoBundle, [{ image: originalPkg, isBundle: true }]],
      [pkgBundle, [{ image: originalImage, isBundle: false }]],
    ] as const) {
      // A plain image with one Docker layer holding image-locations.yml, as imgpkg pushes it.
      const record = await layout(
        { 'image-locations.yml': imageLocations([...listed]) },
        { bundle: false, docker: true },
      );
      await pushAs(record, repository, [`sha256-${hex(bundle.digest)}.image-locations.imgpkg`]);
    }
  }
  return { repository, repoBundle: repoBundle.digest, pkgBundle: pkgBundle.digest, image: image.digest };
}

const succeeded = (o: { metadata: { generation: number }; status?: RunStatus }) =>
  o.status?.observedGeneration === o.metadata.generation &&
  o.status?.conditions?.[0]?.type === 'ReconcileSucceeded';

async function bundleImages(namespace: string, refName: string): Promise<Record<string, string | undefined>> {
  const { items } = await env.client.list<PackageObj>(Packages, { namespace });
  return Object.fromEntries(
    items
      .filter((p) => p.metadata?.name?.startsWith(`${refName}.`))
      .map((p) => [p.metadata!.name!, p.spec?.template?.spec?.fetch?.[0]?.imgpkgBundle?.image]),
  );
}

const seedYaml = (mirror: Mirror, repoName: string, pkgiName: string, refName: string) => `---
apiVersion: v1
kind: Secret
metadata:
  name: reg-creds
  namespace: secrets-ns
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '${JSON.stringify({ auths: { [registry.host]: { username: ALICE.username, password: ALICE.password } } })}'
---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata:
  name: reg-creds
  namespace: secrets-ns
spec:
  toNamespaces:
  - "*"
---
apiVersion: ${PKG_API}
kind: PackageRepository
metadata:
  name: ${repoName}
  namespace: ${GLOBAL}
spec:
  fetch:
    imgpkgBundle:
      image: ${registry.host}/${mirror.repository}:1.0.0
---
apiVersion: ${PKG_API}
kind: PackageInstall
metadata:
  name: ${pkgiName}
  namespace: default
spec:
  serviceAccountName: default-ns-sa
  packageRef:
    refName: ${refName}
    versionSelection:
      constraints: 1.0.0
`;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'regcred-relocation-e2e-'));
  original = createServer((socket) => {
    originalConnections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => original.listen(0, '127.0.0.1', resolve));
  originalHost = `127.0.0.1:${(original.address() as { port: number }).port}`;

  const [started, startedRegistry] = await Promise.all([
    startPackagingEnv(),
    startRegistry({ users: [ALICE], log: (line) => console.log(`# ${line}`) }),
  ]);
  env = started;
  registry = startedRegistry;
  for (const ns of [OPERATOR_NS, GLOBAL, 'secrets-ns']) await createNamespace(env, ns);
  await env.cluster.apply(
    stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CONFIG_SECRET, namespace: OPERATOR_NS },
      stringData: { caCerts: registry.caCert },
    }),
  );
  mirrors.A = await copyRepository('mirror/with-locations', UNRESOLVABLE, 'a.relocated.test.carvel.dev', {
    locations: true,
  });
  mirrors.B = await copyRepository('mirror/without-locations', originalHost, 'b.relocated.test.carvel.dev', {
    locations: false,
  });
  mirrors.C = await copyRepository('mirror/incomplete', UNRESOLVABLE, 'c.relocated.test.carvel.dev', {
    locations: false,
    complete: false,
  });
});

after(async () => {
  await env?.stop();
  await registry?.stop();
  await new Promise<void>((resolve) => (original ? original.close(() => resolve()) : resolve()));
  if (work) rmSync(work, { recursive: true, force: true });
});

const cases = [
  {
    mirror: 'A' as const,
    title: 'copied WITH locations images (original host does not resolve)',
    refName: 'a.relocated.test.carvel.dev',
    how: 'as its locations image records',
  },
  {
    mirror: 'B' as const,
    title: 'copied WITHOUT locations images (original host is a closed loopback port)',
    refName: 'b.relocated.test.carvel.dev',
    how: 'each found there by digest',
  },
];

for (const c of cases) {
  describe(`a repository ${c.title}`, () => {
    const repoName = `repo-${c.mirror.toLowerCase()}.test.carvel.dev`;
    const pkgiName = `pkg-${c.mirror.toLowerCase()}`;

    test('the PackageRepository from the mirror (no secretRef) succeeds and its Packages name the mirror', async () => {
      const m = mirrors[c.mirror];
      await env.cluster.apply(seedYaml(m, repoName, pkgiName, c.refName));
      const repo = await waitForObject<Pkgr>(
        env,
        PackageRepositories,
        GLOBAL,
        repoName,
        `PackageRepository ${repoName} succeeded`,
        succeeded,
        45_000,
      );
      const mirrorRepo = `${registry.host}/${m.repository}`;
      assert.equal(
        repo.status?.fetch?.stdout?.replace(/ \(\d+ files, \d+ bytes\)/, ''),
        `Fetched imgpkgBundle ${ref(m.repository, m.repoBundle)}; .imgpkg/images.yml: 1 image relocated to ${mirrorRepo} (${c.how})`,
      );
      assert.match(
        String(repo.status?.deploy?.stdout),
        /; 2 image references resolved from \.imgpkg\/images\.yml$/,
      );
      // Both Packages: by digest and by the kbld id (a tag on the original host) → the mirror, by digest.
      assert.deepEqual(await bundleImages(GLOBAL, c.refName), {
        [`${c.refName}.1.0.0`]: ref(m.repository, m.pkgBundle),
        [`${c.refName}.2.0.0`]: ref(m.repository, m.pkgBundle),
      });
      const placeholder = await env.client.get<V1Secret>(Secrets, GLOBAL, `${repoName}-fetch-0`);
      assert.deepEqual(Object.keys((dockerConfig(placeholder!) as { auths: object }).auths), [registry.host]);
    });

    test("the PackageInstall's App fetches its bundle from the mirror with the placeholder, relocating the bundle's images too", async () => {
      const m = mirrors[c.mirror];
      const app = await waitForObject<AppObj>(
        env,
        Apps,
        'default',
        pkgiName,
        `App ${pkgiName} fetched`,
        (a) => a.status?.observedGeneration === a.metadata.generation && a.status?.fetch?.exitCode === 0,
        45_000,
      );
      assert.deepEqual(app.spec?.fetch, [
        {
          imgpkgBundle: { image: ref(m.repository, m.pkgBundle), secretRef: { name: `${pkgiName}-fetch-0` } },
        },
      ]);
      assert.equal(
        app.status?.fetch?.stdout?.replace(/ \(\d+ files, \d+ bytes\)/, ''),
        `Fetched imgpkgBundle ${ref(m.repository, m.pkgBundle)}; .imgpkg/images.yml: 1 image relocated to ${registry.host}/${m.repository} (${c.how})`,
      );
      const placeholder = await env.client.get<V1Secret>(Secrets, 'default', `${pkgiName}-fetch-0`);
      assert.deepEqual(Object.keys((dockerConfig(placeholder!) as { auths: object }).auths), [registry.host]);
    });
  });
}

describe('a bundle whose images were not copied along', () => {
  test('keeps the original location of an image that was not copied along, and names the one missing', async () => {
    const m = mirrors.C;
    const refName = 'c.relocated.test.carvel.dev';
    await env.cluster.apply(seedYaml(m, 'repo-c.test.carvel.dev', 'pkg-c', refName));
    const repo = await waitForObject<Pkgr>(
      env,
      PackageRepositories,
      GLOBAL,
      'repo-c.test.carvel.dev',
      'succeeded',
      succeeded,
      45_000,
    );
    // The repository bundle's one image (the package bundle) was copied: it relocates.
    assert.match(String(repo.status?.fetch?.stdout), /; \.imgpkg\/images\.yml: 1 image relocated to /);
    const app = await waitForObject<AppObj>(
      env,
      Apps,
      'default',
      'pkg-c',
      'App pkg-c fetched',
      (a) => a.status?.observedGeneration === a.metadata.generation && a.status?.fetch?.exitCode === 0,
      45_000,
    );
    // The package bundle's container image was not: its images.yml keeps the original.
    assert.equal(
      app.status?.fetch?.stdout?.replace(/ \(\d+ files, \d+ bytes\)/, ''),
      `Fetched imgpkgBundle ${ref(m.repository, m.pkgBundle)}; .imgpkg/images.yml: kept the original image locations (${ref(m.repository, m.image)} does not exist)`,
    );
  });
});

describe('the original registry', () => {
  test('was never contacted', () => {
    assert.equal(originalConnections, 0);
  });
});
