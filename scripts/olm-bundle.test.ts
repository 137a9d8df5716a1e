// The OLM bundle's ClusterServiceVersion as committed in deploy/olm/bundle: complete
// enough for OperatorHub-style consoles (descriptors, icon, links, maintainers,
// install modes, minimum Kubernetes version) and consistent with the rest of the
// repo (every CRD of crds/ owned, permissions and Deployment exactly those of
// deploy/plain, version from package.json). tools/olm-validate runs the Operator
// Framework's own validators on the same files (npm run bundle:validate).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment,
   @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-return --
   the manifests are untyped YAML. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { parse, parseAllDocuments } from 'yaml';
import { bundleFiles } from './bundle.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const BUNDLE = join(ROOT, 'deploy', 'olm', 'bundle');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

const readDocs = (file: string): Doc[] =>
  parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
const csv = parse(
  readFileSync(join(BUNDLE, 'manifests', 'regcred-operator.clusterserviceversion.yaml'), 'utf8'),
) as Doc;
const crds = readdirSync(join(ROOT, 'crds'))
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => readDocs(join(ROOT, 'crds', f)));
const plain = readdirSync(join(ROOT, 'deploy', 'plain'))
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => readDocs(join(ROOT, 'deploy', 'plain', f)));
const plainOf = (kind: string) => plain.find((d) => d.kind === kind)!;
const packageVersion = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;
const storageVersion = (crd: Doc) => crd.spec.versions.find((v: Doc) => v.storage) as Doc;

describe('OLM bundle ClusterServiceVersion', () => {
  test('the committed bundle is what scripts/bundle.ts writes', () => {
    for (const [file, content] of bundleFiles())
      assert.equal(readFileSync(join(BUNDLE, file), 'utf8'), content, `deploy/olm/bundle/${file}`);
  });

  test('name and version come from package.json', () => {
    assert.equal(csv.metadata.name, `regcred-operator.v${packageVersion}`);
    assert.equal(csv.spec.version, packageVersion);
  });

  test('console metadata: display name, description, icon, links, maintainers, provider, maturity, keywords', () => {
    const spec = csv.spec;
    assert.ok(spec.displayName);
    assert.ok(spec.description.length > 100, 'a real description');
    assert.equal(spec.maturity, 'alpha');
    assert.ok(spec.provider?.name);
    assert.ok(spec.keywords.length >= 3);
    assert.equal(spec.icon.length, 1);
    assert.equal(spec.icon[0].mediatype, 'image/svg+xml');
    const svg = Buffer.from(spec.icon[0].base64data, 'base64').toString('utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>[\s\S]*<\/svg>\s*$/);
    assert.ok(svg.length < 2048, 'a small icon');
    assert.ok(spec.links.length > 0);
    for (const link of spec.links) {
      assert.ok(link.name);
      assert.equal(new URL(link.url).protocol, 'https:');
    }
    assert.ok(spec.maintainers.length > 0);
    for (const m of spec.maintainers) assert.match(m.email, /^[^@\s]+@[^@\s]+\.[a-z]+$/);
    const annotations = csv.metadata.annotations;
    assert.equal(annotations.capabilities, 'Basic Install');
    assert.ok(annotations.categories.split(', ').includes('Security'));
    assert.equal(annotations.containerImage, plainOf('Deployment').spec.template.spec.containers[0].image);
    assert.equal(annotations['operatorframework.io/suggested-namespace'], plainOf('Namespace').metadata.name);
  });

  test('install modes: all four declared, AllNamespaces only (exports reach every namespace)', () => {
    const modes = Object.fromEntries(
      csv.spec.installModes.map((m: Doc) => [m.type, m.supported] as [string, boolean]),
    );
    assert.deepEqual(modes, {
      OwnNamespace: false,
      SingleNamespace: false,
      MultiNamespace: false,
      AllNamespaces: true,
    });
  });

  test('minKubeVersion: CRD validation rules always enforced, and not above the tested control plane', () => {
    const min = csv.spec.minKubeVersion as string;
    assert.ok(semver.valid(min), min);
    // x-kubernetes-validations are beta from 1.25 and cannot be switched off from 1.29 (GA).
    assert.ok(JSON.stringify(crds).includes('x-kubernetes-validations'));
    assert.ok(semver.gte(min, '1.29.0'), `${min} must be at least 1.29.0`);
    const script = readFileSync(join(ROOT, 'scripts', 'build-control-plane.sh'), 'utf8');
    const tested = /K8S_VERSION="\$\{K8S_VERSION:-v([0-9.]+)\}"/.exec(script)?.[1];
    assert.ok(tested, 'K8S_VERSION in scripts/build-control-plane.sh');
    assert.ok(semver.lte(min, tested), `${min} must not exceed the tested ${tested}`);
  });

  test('owns every CRD of crds/ at its storage version, with descriptions', () => {
    const owned = csv.spec.customresourcedefinitions.owned as Doc[];
    assert.deepEqual(
      owned.map((o) => `${o.name} ${o.version} ${o.kind}`).sort(),
      crds.map((c) => `${c.metadata.name} ${storageVersion(c).name} ${c.spec.names.kind}`).sort(),
    );
    for (const kind of ['RegistryToken', 'ImagePullSecretPolicy', 'SecretExport', 'SecretImport'])
      assert.ok(
        owned.some((o) => o.kind === kind),
        kind,
      );
    for (const o of owned) {
      assert.ok(o.displayName, `${o.kind} displayName`);
      assert.ok(o.description.length > 20, `${o.kind} description`);
    }
  });

  test('a spec descriptor for every top-level spec field, a status descriptor for every status field', () => {
    for (const crd of crds) {
      const schema = storageVersion(crd).schema.openAPIV3Schema as Doc;
      const owned = (csv.spec.customresourcedefinitions.owned as Doc[]).find(
        (o) => o.name === crd.metadata.name,
      )!;
      const kind = crd.spec.names.kind as string;
      assert.deepEqual(
        (owned.specDescriptors as Doc[]).map((d) => d.path),
        Object.keys(schema.properties.spec.properties ?? {}),
        `${kind} specDescriptors`,
      );
      assert.deepEqual(
        ((owned.statusDescriptors ?? []) as Doc[]).map((d) => d.path),
        Object.keys(schema.properties.status?.properties ?? {}),
        `${kind} statusDescriptors`,
      );
      for (const d of [...owned.specDescriptors, ...(owned.statusDescriptors ?? [])] as Doc[]) {
        assert.ok(d.displayName && d.description, `${kind} ${d.path}`);
        assert.ok(
          ((d['x-descriptors'] ?? []) as string[]).every((x) => x.startsWith('urn:alm:descriptor:')),
          `${kind} ${d.path}`,
        );
      }
      const conditions = ((owned.statusDescriptors ?? []) as Doc[]).find((d) => d.path === 'conditions');
      if (schema.properties.status?.properties?.conditions)
        assert.deepEqual(
          conditions?.['x-descriptors'],
          ['urn:alm:descriptor:io.kubernetes.conditions'],
          kind,
        );
    }
    const policy = (csv.spec.customresourcedefinitions.owned as Doc[]).find(
      (o) => o.kind === 'ImagePullSecretPolicy',
    )!;
    assert.deepEqual(policy.specDescriptors.find((d: Doc) => d.path === 'secretName')['x-descriptors'], [
      'urn:alm:descriptor:io.kubernetes:Secret',
    ]);
    const token = (csv.spec.customresourcedefinitions.owned as Doc[]).find(
      (o) => o.kind === 'RegistryToken',
    )!;
    assert.deepEqual(token.specDescriptors.find((d: Doc) => d.path === 'provider')['x-descriptors'], [
      'urn:alm:descriptor:com.tectonic.ui:select:ecr',
      'urn:alm:descriptor:com.tectonic.ui:select:gcr',
      'urn:alm:descriptor:com.tectonic.ui:select:acr',
    ]);
  });

  test('alm-examples: one example of every owned kind', () => {
    const examples = JSON.parse(csv.metadata.annotations['alm-examples'] as string) as Doc[];
    const ownedKinds = crds.map((c) => `${c.spec.group}/${storageVersion(c).name} ${c.spec.names.kind}`);
    assert.deepEqual(examples.map((e) => `${e.apiVersion} ${e.kind}`).sort(), [...ownedKinds].sort());
  });

  test('install strategy: exactly the ServiceAccount, RBAC and Deployment of deploy/plain', () => {
    const install = csv.spec.install;
    assert.equal(install.strategy, 'deployment');
    const serviceAccount = plainOf('ServiceAccount').metadata.name;
    assert.deepEqual(install.spec.clusterPermissions, [
      { serviceAccountName: serviceAccount, rules: plainOf('ClusterRole').rules },
    ]);
    assert.deepEqual(install.spec.permissions, [
      { serviceAccountName: serviceAccount, rules: plainOf('Role').rules },
    ]);
    const deployment = plainOf('Deployment');
    assert.deepEqual(install.spec.deployments, [
      { name: deployment.metadata.name, label: deployment.metadata.labels, spec: deployment.spec },
    ]);
    assert.equal(deployment.spec.template.spec.serviceAccountName, serviceAccount);
  });

  test('bundle metadata: registry+v1, package regcred-operator, a channel following the naming convention', () => {
    const annotations = (parse(readFileSync(join(BUNDLE, 'metadata', 'annotations.yaml'), 'utf8')) as Doc)
      .annotations;
    assert.equal(annotations['operators.operatorframework.io.bundle.mediatype.v1'], 'registry+v1');
    assert.equal(annotations['operators.operatorframework.io.bundle.package.v1'], 'regcred-operator');
    const channel = annotations['operators.operatorframework.io.bundle.channel.default.v1'] as string;
    assert.match(channel, /^(candidate|fast|stable)/);
    assert.equal(annotations['operators.operatorframework.io.bundle.channels.v1'], channel);
  });
});
