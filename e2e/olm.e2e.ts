// The OLM bundle against a real API server: OLM's own CRDs (ClusterServiceVersion
// and the rest, taken from the operator-framework/api module that tools/olm-validate
// is built from) are installed, then the bundle's CRDs, its ClusterServiceVersion
// and its other objects are created for real. The API server checks the CSV
// against OLM's schema; the CSV's owned CRDs must be exactly the ones applied, and
// every alm-examples object must be accepted by them. The validator itself is run
// on a broken copy of the bundle to show it fails. No OLM controllers run here.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return,
   @typescript-eslint/no-unsafe-argument --
   the manifests are untyped YAML. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { REPO_ROOT, execFileAsync, startTestCluster, type TestCluster } from './harness/cluster.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

const BUNDLE = join(REPO_ROOT, 'deploy', 'olm', 'bundle');
const MANIFESTS = join(BUNDLE, 'manifests');
const CSV_FILE = 'regcred-operator.clusterserviceversion.yaml';
const INSTALL_NAMESPACE = 'regcred-operator';

const manifests = readdirSync(MANIFESTS)
  .sort()
  .map((file) => ({ file, doc: parse(readFileSync(join(MANIFESTS, file), 'utf8')) as Doc }));
const bundleCrds = manifests.filter((m) => m.doc.kind === 'CustomResourceDefinition');
const bundleOthers = manifests.filter(
  (m) => m.doc.kind !== 'CustomResourceDefinition' && m.doc.kind !== 'ClusterServiceVersion',
);
const csv = manifests.find((m) => m.file === CSV_FILE)!.doc;

let cluster: TestCluster;
let olmTools: string;

before(async () => {
  // Built (or reused) in the same cache as the control plane; holds OLM's CRDs too.
  const { stdout } = await execFileAsync(join(REPO_ROOT, 'scripts', 'build-olm-validate.sh'), [], {
    maxBuffer: 16 * 1024 * 1024,
    timeout: 30 * 60_000,
  });
  olmTools = stdout.trim().split('\n').pop()!;
  cluster = await startTestCluster({ installCrds: false, controllerManager: false });
});

after(async () => {
  await cluster?.stop();
});

describe('OLM bundle on a real API server', () => {
  test("OLM's CRDs from operator-framework/api are accepted", async () => {
    const olmCrds = readdirSync(join(olmTools, 'crds')).filter((f) => f.endsWith('.yaml'));
    assert.ok(olmCrds.includes('operators.coreos.com_clusterserviceversions.yaml'), olmCrds.join(' '));
    // Server-side: the CSV CRD is too large for kubectl's last-applied annotation.
    await cluster.kubectl(['apply', '--server-side', '-f', join(olmTools, 'crds')]);
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/clusterserviceversions.operators.coreos.com',
      'crd/subscriptions.operators.coreos.com',
      'crd/operatorgroups.operators.coreos.com',
    ]);
  });

  test("the bundle's CRDs are accepted and established", async () => {
    assert.equal(
      bundleCrds.length,
      readdirSync(join(REPO_ROOT, 'crds')).filter((f) => f.endsWith('.yaml')).length,
    );
    for (const { file } of bundleCrds)
      await cluster.kubectl(['apply', '--server-side', '-f', join(MANIFESTS, file)]);
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...bundleCrds.map((m) => `crd/${String(m.doc.metadata.name)}`),
    ]);
  });

  test("the CSV and the bundle's other objects are accepted in the install namespace", async () => {
    await cluster.kubectl(['create', 'namespace', INSTALL_NAMESPACE]);
    const created = await cluster.kubectl(
      ['create', '-n', INSTALL_NAMESPACE, '-f', '-'],
      [csv, ...bundleOthers.map((m) => m.doc)].map((d) => JSON.stringify(d)).join('\n'),
    );
    assert.match(created, /clusterserviceversion.operators.coreos.com\/regcred-operator.v[0-9.]+ created/);
    for (const { doc } of bundleOthers)
      assert.ok(
        created.includes(`${String(doc.kind).toLowerCase()}`) &&
          created.includes(`/${String(doc.metadata.name)} created`),
        created,
      );
    // What the server stored (after pruning fields OLM's schema does not know) still
    // carries the install strategy, install modes and descriptors.
    const stored = JSON.parse(
      await cluster.kubectl(['get', 'csv', '-n', INSTALL_NAMESPACE, String(csv.metadata.name), '-o', 'json']),
    ) as Doc;
    assert.deepEqual(stored.spec.installModes, csv.spec.installModes);
    assert.deepEqual(stored.spec.install.spec.clusterPermissions, csv.spec.install.spec.clusterPermissions);
    assert.deepEqual(stored.spec.install.spec.permissions, csv.spec.install.spec.permissions);
    assert.deepEqual(stored.spec.customresourcedefinitions, csv.spec.customresourcedefinitions);
    assert.equal(stored.spec.minKubeVersion, csv.spec.minKubeVersion);
    assert.deepEqual(stored.spec.icon, csv.spec.icon);
    assert.equal(
      stored.spec.install.spec.deployments[0].spec.template.spec.containers[0].image,
      csv.spec.install.spec.deployments[0].spec.template.spec.containers[0].image,
    );
  });

  test("the CSV's owned CRDs are exactly the applied CRDs, at a served storage version", async () => {
    const applied = (
      JSON.parse(await cluster.kubectl(['get', 'crd', '-o', 'json'])) as { items: Doc[] }
    ).items.filter((c) => !String(c.spec.group).endsWith('operators.coreos.com'));
    const owned = csv.spec.customresourcedefinitions.owned as Doc[];
    assert.deepEqual(owned.map((o) => o.name).sort(), applied.map((c) => c.metadata.name).sort());
    for (const o of owned) {
      const crd = applied.find((c) => c.metadata.name === o.name)!;
      assert.equal(crd.spec.names.kind, o.kind, o.name);
      const version = (crd.spec.versions as Doc[]).find((v) => v.name === o.version);
      assert.ok(version?.served && version.storage, `${o.name} ${o.version} served and stored`);
    }
  });

  test('every alm-examples object is accepted by the applied CRDs', async () => {
    const examples = JSON.parse(csv.metadata.annotations['alm-examples'] as string) as Doc[];
    const namespaces = [...new Set(examples.map((e) => e.metadata.namespace as string | undefined))].filter(
      (ns): ns is string => ns !== undefined && ns !== 'default',
    );
    for (const ns of namespaces) await cluster.kubectl(['create', 'namespace', ns]);
    const created = await cluster.kubectl(
      ['create', '-f', '-'],
      examples.map((e) => JSON.stringify(e)).join('\n'),
    );
    assert.equal(created.trim().split('\n').length, examples.length, created);
  });

  test("the API server rejects a CSV that breaks OLM's schema (the check above is real)", async () => {
    const broken = structuredClone(csv);
    broken.metadata.name = 'regcred-operator.v0.0.0-broken';
    broken.spec.installModes = [{ type: 'AllNamespaces', supported: 'yes' }];
    const r = await cluster.kubectlResult(
      ['create', '-n', INSTALL_NAMESPACE, '-f', '-'],
      JSON.stringify(broken),
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /installModes\[0\]\.supported/);
  });
});

describe('olm-validate (operator-framework/api validators)', () => {
  const validate = (dir: string) =>
    execFileAsync(join(olmTools, 'olm-validate'), ['-k8s-version', '1.37', dir]).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (err: { code?: number; stdout?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? '' }),
    );

  test('the committed bundle passes with no error and no warning', async () => {
    const r = await validate(BUNDLE);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /: 0 errors, 0 warnings, 9 validators\n$/);
  });

  test('a bundle whose CSV owns a CRD it does not ship fails with the error printed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'olm-bundle-'));
    try {
      cpSync(BUNDLE, dir, { recursive: true });
      rmSync(join(dir, 'manifests', 'regcred.dev_registrytokens.yaml'));
      // And a CSV without an icon: a warning, printed but not fatal on its own.
      const [doc] = parseAllDocuments(readFileSync(join(dir, 'manifests', CSV_FILE), 'utf8'));
      const broken = doc!.toJS() as Doc;
      delete broken.spec.icon;
      writeFileSync(join(dir, 'manifests', CSV_FILE), stringify(broken));
      const r = await validate(dir);
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stdout,
        /^ERROR +\[bundle\] .*owned CRD "regcred\.dev\/v1alpha1, Kind=RegistryToken" not found in bundle/m,
      );
      assert.match(r.stdout, /^WARNING \[operatorhub\] .*Icon not specified/m);
      assert.match(r.stdout, /: [1-9][0-9]* errors, [1-9][0-9]* warnings/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
