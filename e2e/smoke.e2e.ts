// Smoke test of the API surface the operator serves, against a real control
// plane (etcd, kube-apiserver, kube-controller-manager): the CRDs install and
// document themselves, the Carvel docs examples apply without losing a field,
// bad specs are refused at admission with the CRDs' own messages, kubectl
// prints the declared columns, the generated TypeScript types round-trip, and
// the garbage collector, namespace and serviceaccount controllers work on our
// custom resources.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import {
  isPackageInstall,
  isSecretExport,
  PackageInstallApiVersion,
  PackageInstallKind,
  PackageInstallResource,
  SecretExportApiVersion,
  SecretExportKind,
  SecretExportResource,
  SecretImportApiVersion,
  SecretImportKind,
  SecretImportResource,
  type PackageInstall,
  type SecretExport,
  type SecretImport,
} from '../generated/index.js';
import type { ResourceType } from '../src/runtime/kube-client.js';
import { REPO_ROOT, startTestCluster, type TestCluster } from './harness/cluster.js';
import { waitFor } from './harness/wait.js';

const SEED_FIXTURE = join(REPO_ROOT, 'e2e', 'fixtures', 'seed-examples.yaml');
const CRD_DIR = join(REPO_ROOT, 'crds');

const Namespaces: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
};
const Secrets: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  namespaced: true,
};
const ServiceAccounts: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'serviceaccounts',
  kind: 'ServiceAccount',
  namespaced: true,
};
const SecretExports: ResourceType = { ...SecretExportResource, kind: SecretExportKind };
const SecretImports: ResourceType = { ...SecretImportResource, kind: SecretImportKind };
const PackageInstalls: ResourceType = { ...PackageInstallResource, kind: PackageInstallKind };

type Obj = Record<string, unknown>;

interface PrinterColumn {
  name: string;
  jsonPath: string;
  priority?: number;
}

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; plural: string; shortNames?: string[] };
    versions: { name: string; schema: unknown; additionalPrinterColumns?: PrinterColumn[] }[];
  };
}

/** The CRDs of crds/, as declared (read from the files, not from the server). */
const crds: Crd[] = readdirSync(CRD_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => parse(readFileSync(join(CRD_DIR, f), 'utf8')) as Crd);

function crdOf(kind: string): Crd {
  const crd = crds.find((c) => c.spec.names.kind === kind);
  assert.ok(crd, `no CRD for ${kind} in crds/`);
  return crd;
}

/** Header kubectl should print for `kubectl get -A`: NAMESPACE, NAME, then the priority-0 printer columns. */
function declaredHeader(kind: string): string[] {
  const columns = crdOf(kind).spec.versions[0]!.additionalPrinterColumns ?? [];
  return [
    'NAMESPACE',
    'NAME',
    ...columns.filter((c) => (c.priority ?? 0) === 0).map((c) => c.name.toUpperCase()),
  ];
}

let cluster: TestCluster;

const kubectl = (args: string[], input?: string) => cluster.kubectl(args, input);
const applyArgs = ['apply', '--server-side=false'];
const apply = (manifest: string) => kubectl([...applyArgs, '-f', '-'], manifest);

async function createNamespace(name: string): Promise<void> {
  await cluster.client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

/** Sets status fields through the status subresource, as the operator would. */
async function patchStatus(resource: string, namespace: string, name: string, status: Obj): Promise<void> {
  await kubectl([
    'patch',
    resource,
    name,
    '-n',
    namespace,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

/**
 * The part of `actual` that has the shape of `expected`: deepEqual(project(actual, expected), expected)
 * holds exactly when every field set in `expected` is in `actual` with the same value, and the
 * assertion diff then names each pruned or altered field.
 */
function project(actual: unknown, expected: unknown): unknown {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return actual;
    return actual.map((item: unknown, i) => (i < expected.length ? project(item, expected[i]) : item));
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return actual;
    const out: Obj = {};
    for (const key of Object.keys(expected)) {
      if (key in actual) out[key] = project((actual as Obj)[key], (expected as Obj)[key]);
    }
    return out;
  }
  return actual;
}

interface Table {
  header: string[];
  rows: Record<string, string>[];
}

/**
 * Parses kubectl's table output, one table per resource kind (separated by blank lines). Cells are
 * cut at the header's column offsets, so empty cells and values with spaces read correctly.
 */
function parseTables(out: string): Table[] {
  return out
    .split(/\n[ \t]*\n/)
    .map((block) => block.split('\n').filter((l) => l.trim() !== ''))
    .filter((lines) => lines.length > 0)
    .map(([head, ...lines]) => {
      const columns = [...head!.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ name: m[0], start: m.index }));
      const rows = lines.map((line) => {
        const row: Record<string, string> = {};
        columns.forEach((c, i) => {
          const end = i + 1 < columns.length ? columns[i + 1]!.start : undefined;
          row[c.name] = line.slice(c.start, end).trim();
        });
        return row;
      });
      return { header: columns.map((c) => c.name), rows };
    });
}

/** The table whose rows are objects of `resource` (kubectl prefixes names with resource.group/ when listing several kinds). */
function tableOf(tables: Table[], resource: string): Table {
  const table = tables.find((t) => t.rows.some((r) => r.NAME?.startsWith(`${resource}/`)));
  assert.ok(table, `no table of ${resource} in ${JSON.stringify(tables)}`);
  return table;
}

function rowOf(table: Table, namespace: string, name: string): Record<string, string> {
  const row = table.rows.find((r) => r.NAMESPACE === namespace && r.NAME?.endsWith(`/${name}`));
  assert.ok(row, `no row ${namespace}/${name} in ${JSON.stringify(table.rows)}`);
  return row;
}

/** The DESCRIPTION section of `kubectl explain`, whitespace-normalised. */
function explainDescription(out: string): string {
  const match = /^DESCRIPTION:\n([\s\S]*?)(?=^[A-Z]+:|$(?![\s\S]))/m.exec(out);
  assert.ok(match, `no DESCRIPTION in:\n${out}`);
  return match[1]!.replace(/\s+/g, ' ').trim();
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Line of an Invalid error: `<field>: Invalid value: [<value>: ]<message>`. */
const invalid = (field: string, message: string, value?: string) =>
  new RegExp(
    `${escapeRegExp(field)}: Invalid value: ${value === undefined ? '(?:"object": )?' : escapeRegExp(`${value}: `)}${escapeRegExp(message)}$`,
    'm',
  );

/**
 * Applies a manifest that admission must refuse: asserts kubectl fails with each expected message
 * and that no object of that resource exists in the namespace afterwards.
 */
async function assertRejected(
  manifest: string,
  resource: string,
  namespace: string,
  expected: RegExp[],
): Promise<void> {
  const result = await cluster.kubectlResult([...applyArgs, '-f', '-'], manifest);
  assert.notEqual(result.code, 0, `apply succeeded: ${result.stdout}`);
  assert.match(result.stderr, /is invalid/);
  for (const re of expected) assert.match(result.stderr, re);
  const left = await kubectl(['get', resource, '-n', namespace, '-o', 'name']);
  assert.equal(left.trim(), '', `a rejected ${resource} was created`);
}

/**
 * Resolves once the garbage collector watches SecretImports. It learns about resources by polling
 * discovery every 30 s, and kube-controller-manager starts before the CRDs are installed, so it
 * cannot act on our kinds during its first 30 s; the wait runs while the other tests do. Only the
 * garbage collector watches SecretImports here (the operator does not run), so a WATCH on them in the
 * API server's own metrics shows it has started monitoring them.
 */
let gcWatchesSecretImports: Promise<unknown>;

before(async () => {
  cluster = await startTestCluster({ installCrds: true, controllerManager: true });
  const watching =
    /^apiserver_longrunning_requests\{[^}]*resource="secretimports"[^}]*verb="WATCH"[^}]*\} [1-9]/m;
  gcWatchesSecretImports = waitFor(
    'the garbage collector to watch SecretImports',
    async () => watching.test(await kubectl(['get', '--raw', '/metrics'])),
    { timeoutMs: 90_000, intervalMs: 1000 },
  );
  // Awaited by the garbage collection test; a failure must not surface earlier as unhandled.
  gcWatchesSecretImports.catch(() => undefined);
});

after(async () => {
  await cluster?.stop();
});

describe('CRD installation', () => {
  test('every CRD of crds/ is installed with accepted names and Established', async () => {
    assert.equal(crds.length, 9);
    const list = JSON.parse(await kubectl(['get', 'crd', '-o', 'json'])) as {
      items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[];
    };
    for (const crd of crds) {
      const live = list.items.find((i) => i.metadata.name === crd.metadata.name);
      assert.ok(live, `${crd.metadata.name} not installed`);
      const conditions = Object.fromEntries((live.status.conditions ?? []).map((c) => [c.type, c.status]));
      assert.equal(conditions.Established, 'True', `${crd.metadata.name}: ${JSON.stringify(conditions)}`);
      assert.equal(conditions.NamesAccepted, 'True', `${crd.metadata.name}: ${JSON.stringify(conditions)}`);
    }
  });

  test('kubectl explain prints the descriptions of secretexport.spec.toNamespaces and packageinstall.spec.packageRef', async () => {
    const toNamespaces = explainDescription(await kubectl(['explain', 'secretexport.spec.toNamespaces']));
    assert.notEqual(toNamespaces, '');
    assert.notEqual(toNamespaces, '<empty>');
    assert.match(toNamespaces, /^Namespaces to export to; "\*" means every namespace\./);

    const packageRef = explainDescription(await kubectl(['explain', 'packageinstall.spec.packageRef']));
    assert.notEqual(packageRef, '');
    assert.notEqual(packageRef, '<empty>');
    assert.equal(packageRef, 'The package to install and how its version is chosen.');
  });
});

describe('seed examples', () => {
  test('every seed example applies unchanged with kubectl apply and reads back every field it set', async () => {
    const docs = parseAllDocuments(readFileSync(SEED_FIXTURE, 'utf8')).map((d) => d.toJS() as Obj);
    assert.ok(docs.length >= 10, `only ${docs.length} documents`);
    const applied = await kubectl([...applyArgs, '-f', SEED_FIXTURE]);
    assert.equal(applied.trim().split('\n').length, docs.length, applied);
    for (const line of applied.trim().split('\n')) assert.match(line, / created$/);

    // `kubectl get -f` reads every object of the file back, in file order.
    const live = (JSON.parse(await kubectl(['get', '-f', SEED_FIXTURE, '-o', 'json'])) as { items: Obj[] })
      .items;
    assert.equal(live.length, docs.length);
    docs.forEach((doc, i) => {
      const got = live[i]!;
      const meta = doc.metadata as { name: string; namespace?: string; annotations?: Obj };
      const what = `${doc.kind as string} ${meta.namespace ?? ''}/${meta.name}`;
      assert.equal(got.kind, doc.kind, what);
      assert.equal((got.metadata as Obj).name, meta.name, what);
      for (const field of ['spec', 'data'] as const) {
        if (doc[field] !== undefined) assert.deepEqual(project(got[field], doc[field]), doc[field], what);
      }
      if (meta.annotations) {
        const annotations = (got.metadata as Obj).annotations;
        assert.deepEqual(project(annotations, meta.annotations), meta.annotations, what);
      }
      if (doc.stringData !== undefined) {
        const data = (got.data ?? {}) as Record<string, string>;
        const decoded = Object.fromEntries(
          Object.keys(doc.stringData as Obj).map((k) => [
            k,
            data[k] === undefined ? undefined : Buffer.from(data[k], 'base64').toString('utf8'),
          ]),
        );
        assert.deepEqual(decoded, doc.stringData, what);
      }
    });

    // A client-side apply re-adds anything the server dropped, so a second apply must change nothing.
    // The exception is a Secret given as stringData: the server folds it into data, so kubectl always
    // sends it again (its decoded value was compared above).
    const again = (await kubectl([...applyArgs, '-f', SEED_FIXTURE])).trim().split('\n');
    docs.forEach((doc, i) => {
      if (doc.stringData === undefined) assert.match(again[i]!, / unchanged$/);
    });
  });
});

describe('admission', () => {
  const ns = 'admission';
  before(async () => createNamespace(ns));

  const secretExport = (spec: string) => `apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata: {name: bad, namespace: ${ns}}
spec: ${spec}
`;

  test('a SecretExport with no target namespace is rejected', async () => {
    await assertRejected(secretExport('{}'), 'secretexports', ns, [
      invalid('spec', 'Expected to have at least one non-empty to namespace or to namespace annotation'),
    ]);
  });

  test('a SecretExport with an empty name in toNamespaces is rejected', async () => {
    await assertRejected(secretExport('{toNamespaces: [""]}'), 'secretexports', ns, [
      invalid('spec.toNamespaces[0]', 'Expected to namespace to be non-empty', '""'),
    ]);
  });

  test('a dangerousToNamespacesSelector In condition without values is rejected', async () => {
    await assertRejected(
      secretExport('{dangerousToNamespacesSelector: [{key: metadata.labels.team, operator: In}]}'),
      'secretexports',
      ns,
      [
        invalid(
          'spec.dangerousToNamespacesSelector[0]',
          "Values must be specified when `operator` is 'In' or 'NotIn'",
        ),
      ],
    );
  });

  test('a dangerousToNamespacesSelector Exists condition with values is rejected', async () => {
    await assertRejected(
      secretExport(
        '{dangerousToNamespacesSelector: [{key: metadata.labels.team, operator: Exists, values: [a]}]}',
      ),
      'secretexports',
      ns,
      [
        invalid(
          'spec.dangerousToNamespacesSelector[0]',
          "Values may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
      ],
    );
  });

  test('a SecretImport without fromNamespace is rejected', async () => {
    const secretImport = (spec: string) => `apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretImport
metadata: {name: bad, namespace: ${ns}}
spec: ${spec}
`;
    await assertRejected(secretImport('{}'), 'secretimports', ns, [/spec\.fromNamespace: Required value$/m]);
    await assertRejected(secretImport('{fromNamespace: ""}'), 'secretimports', ns, [
      invalid('spec.fromNamespace', "Validating 'spec.fromNamespace': Expected to be non-empty", '""'),
    ]);
  });

  test('a Package whose name is not refName.version is rejected', async () => {
    await assertRejected(
      `apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata: {name: simple-app.corp.com.2.0.0, namespace: ${ns}}
spec: {refName: simple-app.corp.com, version: 1.0.0}
`,
      'packages.data.packaging.carvel.dev',
      ns,
      [invalid('<nil>', 'metadata.name must be <spec.refName>.<spec.version>')],
    );
  });

  test('a Package whose version is not a semantic version is rejected', async () => {
    const schema = crdOf('Package').spec.versions[0]!.schema as {
      openAPIV3Schema: { properties: { spec: { properties: { version: { pattern?: string } } } } };
    };
    const pattern = schema.openAPIV3Schema.properties.spec.properties.version.pattern;
    assert.ok(pattern, 'no spec.version pattern in the Package CRD');
    await assertRejected(
      `apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata: {name: simple-app.corp.com.v1.0, namespace: ${ns}}
spec: {refName: simple-app.corp.com, version: v1.0}
`,
      'packages.data.packaging.carvel.dev',
      ns,
      [invalid('spec.version', `spec.version in body should match '${pattern}'`, '"v1.0"')],
    );
  });

  test('a PackageRepository with two fetch sources is rejected', async () => {
    await assertRejected(
      `apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageRepository
metadata: {name: bad, namespace: ${ns}}
spec:
  fetch:
    imgpkgBundle: {image: registry.corp.com/repo:1.0.0}
    image: {url: registry.corp.com/repo:1.0.0}
`,
      'packagerepositories',
      ns,
      [invalid('spec.fetch', 'Expected exactly one fetch source: imgpkgBundle, image, http, git or inline')],
    );
  });

  test('an App fetch step with two sources is rejected', async () => {
    await assertRejected(
      `apiVersion: kappctrl.k14s.io/v1alpha1
kind: App
metadata: {name: bad, namespace: ${ns}}
spec:
  serviceAccountName: default
  fetch:
  - inline: {paths: {config.yml: "a: 1"}}
    git: {url: "https://github.com/corp/config", ref: origin/main}
  template:
  - ytt: {}
  deploy:
  - kapp: {}
`,
      'apps.kappctrl.k14s.io',
      ns,
      [
        invalid(
          'spec.fetch[0]',
          'Expected exactly one fetch source per step: inline, image, http, git, helmChart or imgpkgBundle',
        ),
      ],
    );
  });
});

describe('kubectl get', () => {
  const ns = 'columns';
  before(async () => {
    await createNamespace(ns);
    await apply(`apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata: {name: se, namespace: ${ns}}
spec: {toNamespaces: ["*"]}
---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretImport
metadata: {name: si, namespace: ${ns}}
spec: {fromNamespace: shared}
---
apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageInstall
metadata: {name: pi, namespace: ${ns}}
spec:
  serviceAccountName: default
  packageRef: {refName: simple-app.corp.com, versionSelection: {constraints: ">=1.0.0"}}
---
apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageRepository
metadata: {name: pr, namespace: ${ns}}
spec: {fetch: {imgpkgBundle: {image: registry.corp.com/repo:1.0.0}}}
---
apiVersion: kappctrl.k14s.io/v1alpha1
kind: App
metadata: {name: app, namespace: ${ns}}
spec:
  serviceAccountName: default
  fetch: [{inline: {paths: {config.yml: "a: 1"}}}]
  template: [{ytt: {}}]
  deploy: [{kapp: {}}]
---
apiVersion: data.packaging.carvel.dev/v1alpha1
kind: PackageMetadata
metadata: {name: simple-app.corp.com, namespace: ${ns}}
spec:
  displayName: Simple App
  shortDescription: A simple app
  categories: [demo, web]
---
apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata: {name: simple-app.corp.com.1.2.3, namespace: ${ns}}
spec:
  refName: simple-app.corp.com
  version: 1.2.3
  template:
    spec:
      fetch: [{imgpkgBundle: {image: registry.corp.com/packages/simple-app:1.2.3}}]
`);
  });

  test('secretexports, pkgi, pkgr and apps print their declared columns and the status values set', async () => {
    const deployStarted = new Date(Date.now() - 5 * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await patchStatus('secretexports', ns, 'se', {
      friendlyDescription: 'Reconcile succeeded',
      reachedNamespaceCount: 3,
    });
    await patchStatus('pkgi', ns, 'pi', { version: '1.2.3', friendlyDescription: 'Reconcile succeeded' });
    await patchStatus('pkgr', ns, 'pr', { friendlyDescription: 'Reconciling' });
    await patchStatus('apps.kappctrl.k14s.io', ns, 'app', {
      friendlyDescription: 'Reconcile failed: fetch error',
      deploy: { startedAt: deployStarted },
    });

    const tables = parseTables(await kubectl(['get', 'secretexports,pkgi,pkgr,apps', '-A']));
    assert.equal(tables.length, 4, JSON.stringify(tables));

    const se = tableOf(tables, 'secretexport.secretgen.carvel.dev');
    assert.deepEqual(se.header, declaredHeader('SecretExport'));
    assert.deepEqual(se.header, [
      'NAMESPACE',
      'NAME',
      'DESCRIPTION',
      'TO NAMESPACE',
      'TO NAMESPACES',
      'REACHED',
      'AGE',
    ]);
    const seRow = rowOf(se, ns, 'se');
    assert.equal(seRow.DESCRIPTION, 'Reconcile succeeded');
    assert.equal(seRow.REACHED, '3');
    assert.equal(seRow['TO NAMESPACE'], '');
    assert.equal(seRow['TO NAMESPACES'], '["*"]');
    assert.match(seRow.AGE!, /^\d+s$/);

    const [imports] = parseTables(await kubectl(['get', 'secretimports', '-n', ns]));
    assert.deepEqual(imports!.header, ['NAME', 'DESCRIPTION', 'FROM NAMESPACE', 'AGE']);
    assert.equal(imports!.rows[0]!['FROM NAMESPACE'], 'shared');

    const [wideRepos] = parseTables(await kubectl(['get', 'pkgr', '-n', ns, '-o', 'wide']));
    assert.deepEqual(wideRepos!.header, ['NAME', 'AGE', 'DESCRIPTION', 'BUNDLE', 'PAUSED']);
    assert.equal(wideRepos!.rows[0]!.BUNDLE, 'registry.corp.com/repo:1.0.0');

    const pkgi = tableOf(tables, 'packageinstall.packaging.carvel.dev');
    assert.deepEqual(pkgi.header, declaredHeader('PackageInstall'));
    assert.deepEqual(pkgi.header, [
      'NAMESPACE',
      'NAME',
      'PACKAGE NAME',
      'PACKAGE VERSION',
      'DESCRIPTION',
      'AGE',
    ]);
    const piRow = rowOf(pkgi, ns, 'pi');
    assert.equal(piRow['PACKAGE NAME'], 'simple-app.corp.com');
    assert.equal(piRow['PACKAGE VERSION'], '1.2.3');
    assert.equal(piRow.DESCRIPTION, 'Reconcile succeeded');
    assert.match(piRow.AGE!, /^\d+s$/);

    const pkgr = tableOf(tables, 'packagerepository.packaging.carvel.dev');
    assert.deepEqual(pkgr.header, declaredHeader('PackageRepository'));
    assert.deepEqual(pkgr.header, ['NAMESPACE', 'NAME', 'AGE', 'DESCRIPTION']);
    const prRow = rowOf(pkgr, ns, 'pr');
    assert.equal(prRow.DESCRIPTION, 'Reconciling');
    assert.match(prRow.AGE!, /^\d+s$/);

    const apps = tableOf(tables, 'app.kappctrl.k14s.io');
    assert.deepEqual(apps.header, declaredHeader('App'));
    assert.deepEqual(apps.header, ['NAMESPACE', 'NAME', 'DESCRIPTION', 'SINCE-DEPLOY', 'AGE']);
    const appRow = rowOf(apps, ns, 'app');
    assert.equal(appRow.DESCRIPTION, 'Reconcile failed: fetch error');
    assert.match(appRow['SINCE-DEPLOY']!, /^5m(?:\d+s)?$/);
    assert.match(appRow.AGE!, /^\d+s$/);
  });

  test('pkg and pkgm print their declared columns, and the wide output adds Categories', async () => {
    const tables = parseTables(await kubectl(['get', 'pkg,pkgm', '-A']));
    assert.equal(tables.length, 2, JSON.stringify(tables));

    const pkg = tableOf(tables, 'package.data.packaging.carvel.dev');
    assert.deepEqual(pkg.header, declaredHeader('Package'));
    assert.deepEqual(pkg.header, ['NAMESPACE', 'NAME', 'PACKAGEMETADATA NAME', 'VERSION', 'AGE']);
    const pkgRow = rowOf(pkg, ns, 'simple-app.corp.com.1.2.3');
    assert.equal(pkgRow['PACKAGEMETADATA NAME'], 'simple-app.corp.com');
    assert.equal(pkgRow.VERSION, '1.2.3');

    const pkgm = tableOf(tables, 'packagemetadata.data.packaging.carvel.dev');
    assert.deepEqual(pkgm.header, declaredHeader('PackageMetadata'));
    assert.deepEqual(pkgm.header, ['NAMESPACE', 'NAME', 'DISPLAY NAME', 'SHORT DESCRIPTION', 'AGE']);
    const pkgmRow = rowOf(pkgm, ns, 'simple-app.corp.com');
    assert.equal(pkgmRow['DISPLAY NAME'], 'Simple App');
    assert.equal(pkgmRow['SHORT DESCRIPTION'], 'A simple app');

    const [wide] = parseTables(await kubectl(['get', 'pkgm', '-n', ns, '-o', 'wide']));
    assert.deepEqual(wide!.header, ['NAME', 'DISPLAY NAME', 'CATEGORIES', 'SHORT DESCRIPTION', 'AGE']);
    assert.match(wide!.rows[0]!.CATEGORIES!, /demo.*web/);
  });

  test('the short names pkgi, pkgr, pkg, pkgm, secexp, secimp, regtok and ipsp name their kinds', async () => {
    const expected: Record<string, string> = {
      secexp: 'secretexport.secretgen.carvel.dev/se',
      secimp: 'secretimport.secretgen.carvel.dev/si',
      pkgi: 'packageinstall.packaging.carvel.dev/pi',
      pkgr: 'packagerepository.packaging.carvel.dev/pr',
      pkg: 'package.data.packaging.carvel.dev/simple-app.corp.com.1.2.3',
      pkgm: 'packagemetadata.data.packaging.carvel.dev/simple-app.corp.com',
    };
    for (const [short, name] of Object.entries(expected)) {
      assert.equal((await kubectl(['get', short, '-n', ns, '-o', 'name'])).trim(), name, short);
    }
    // Our own kinds' short names resolve too (an unknown one fails with "doesn't have a resource type").
    for (const short of ['regtok', 'ipsp']) await kubectl(['get', short, '-n', ns, '-o', 'name']);
    const declared = crds.flatMap((c) => c.spec.names.shortNames ?? []).sort();
    assert.deepEqual(declared, [...Object.keys(expected), 'regtok', 'ipsp'].sort());
  });
});

describe('generated types', () => {
  test('a SecretExport and a PackageInstall built with the generated interfaces round-trip through the API server', async () => {
    const ns = 'typed';
    await createNamespace(ns);
    const exp: SecretExport = {
      apiVersion: SecretExportApiVersion,
      kind: SecretExportKind,
      metadata: { name: 'reg-creds', namespace: ns },
      spec: {
        toNamespace: 'team-a',
        toNamespaces: ['team-b', 'team-c'],
        dangerousToNamespacesSelector: [
          { key: "metadata.annotations['field\\.cattle\\.io/projectId']", operator: 'In', values: ['p-1'] },
          { key: 'metadata.labels.team', operator: 'Exists' },
        ],
        toNamespacesLabelSelector: {
          matchLabels: { 'registry-access': 'true' },
          matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }],
        },
      },
    };
    const pkgi: PackageInstall = {
      apiVersion: PackageInstallApiVersion,
      kind: PackageInstallKind,
      metadata: { name: 'simple-app', namespace: ns },
      spec: {
        serviceAccountName: 'installer',
        packageRef: {
          refName: 'simple-app.corp.com',
          versionSelection: { constraints: '>=1.0.0 <2.0.0', prereleases: { identifiers: ['rc'] } },
        },
        values: [{ secretRef: { name: 'simple-app-values', key: 'values.yml' } }],
        paused: false,
        canceled: false,
        syncPeriod: '1h30m',
        noopDelete: true,
        defaultNamespace: 'apps',
      },
    };

    const createdExport = await cluster.client.create<SecretExport>(SecretExports, exp);
    const readExport = await cluster.client.get<SecretExport>(SecretExports, ns, 'reg-creds');
    assert.ok(isSecretExport(readExport), JSON.stringify(readExport));
    assert.equal(readExport.metadata?.uid, createdExport.metadata?.uid);
    assert.deepEqual(readExport.spec, exp.spec);

    const createdPkgi = await cluster.client.create<PackageInstall>(PackageInstalls, pkgi);
    const readPkgi = await cluster.client.get<PackageInstall>(PackageInstalls, ns, 'simple-app');
    assert.ok(isPackageInstall(readPkgi), JSON.stringify(readPkgi));
    assert.equal(readPkgi.metadata?.uid, createdPkgi.metadata?.uid);
    assert.deepEqual(readPkgi.spec, pkgi.spec);
  });
});

describe('kube-controller-manager', () => {
  test('deleting a namespace that holds custom resources completes', async () => {
    const ns = 'doomed';
    await createNamespace(ns);
    await apply(`apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata: {name: se, namespace: ${ns}}
spec: {toNamespace: other}
---
apiVersion: packaging.carvel.dev/v1alpha1
kind: PackageInstall
metadata: {name: pi, namespace: ${ns}}
spec: {serviceAccountName: default, packageRef: {refName: simple-app.corp.com}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: ${ns}}
data: {a: "1"}
`);
    await cluster.client.delete(Namespaces, undefined, ns);
    await waitFor(
      `namespace ${ns} to be removed`,
      async () => !(await cluster.client.get<KubernetesObject>(Namespaces, undefined, ns)),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  });

  test('a new namespace gets the default ServiceAccount', async () => {
    const ns = 'fresh';
    await createNamespace(ns);
    const sa = await waitFor(
      'ServiceAccount default',
      () => cluster.client.get(ServiceAccounts, ns, 'default'),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    assert.equal(sa.metadata?.namespace, ns);
  });

  test('the garbage collector deletes a Secret owned by a deleted SecretImport', async (t) => {
    const waitStarted = performance.now();
    await gcWatchesSecretImports;
    t.diagnostic(
      `waited ${Math.round(performance.now() - waitStarted)} ms for the GC to watch SecretImports`,
    );
    const ns = 'gc';
    await createNamespace(ns);
    const owner = await cluster.client.create<SecretImport>(SecretImports, {
      apiVersion: SecretImportApiVersion,
      kind: SecretImportKind,
      metadata: { name: 'reg-creds', namespace: ns },
      spec: { fromNamespace: 'secrets-ns' },
    });
    const secret: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'reg-creds',
        namespace: ns,
        ownerReferences: [
          {
            apiVersion: SecretImportApiVersion,
            kind: SecretImportKind,
            name: owner.metadata!.name!,
            uid: owner.metadata!.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
    };
    await cluster.client.create(Secrets, secret);
    assert.ok(await cluster.client.get(Secrets, ns, 'reg-creds'));
    await cluster.client.delete(SecretImports, ns, 'reg-creds');
    const deleted = performance.now();
    await waitFor(
      'the owned Secret to be garbage-collected',
      async () => !(await cluster.client.get(Secrets, ns, 'reg-creds')),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    t.diagnostic(
      `the Secret was collected ${Math.round(performance.now() - deleted)} ms after its owner was deleted`,
    );
    assert.equal(await cluster.client.get(SecretImports, ns, 'reg-creds'), undefined);
  });
});
