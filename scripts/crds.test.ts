// Checks the CustomResourceDefinitions in crds/: their names, printer columns and
// subresources, that every schema node is typed and documented, and that the seed
// examples (YAML written for upstream Carvel) fit the schemas while bad specs do not.
//
// The schema checks run a small validator over the OpenAPI keywords we use (type,
// required, enum, pattern, min/maxLength, min/maxItems, date-time, pruning of unknown
// fields). CEL rules cannot run here, so each rule has a JavaScript twin below, keyed
// by its exact text; a rule without a twin fails the tests, which keeps them in step.
// The API server remains the judge of CEL compilation and cost.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments } from 'yaml';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const crdDir = join(repoRoot, 'crds');
// The YAML examples of the Carvel docs page "Authenticating to Private Registries", verbatim.
const seedExamplesPath =
  process.env.REGCRED_SEED_EXAMPLES ??
  fileURLToPath(new URL('../e2e/fixtures/seed-examples.yaml', import.meta.url));

// ---------------------------------------------------------------------------
// Types

interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
}

interface Schema {
  type?: string;
  description?: string;
  format?: string;
  nullable?: boolean;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  minimum?: number;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
}

interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
}

interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  subresources?: { status?: Record<string, never> };
  additionalPrinterColumns?: PrinterColumn[];
  schema: { openAPIV3Schema: Schema };
}

interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: {
      kind: string;
      listKind?: string;
      plural: string;
      singular?: string;
      shortNames?: string[];
      categories?: string[];
    };
    versions: CrdVersion[];
  };
}

type Obj = Record<string, unknown>;

interface Expected {
  group: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  hasStatus: boolean;
  columns: PrinterColumn[];
  /** Our own kinds are listed by `kubectl get regcred`, upstream's by `kubectl get carvel`. */
  category?: 'regcred';
  scope?: 'Cluster';
}

// ---------------------------------------------------------------------------
// What must be there

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const description: PrinterColumn = {
  name: 'Description',
  type: 'string',
  jsonPath: '.status.friendlyDescription',
};
// Wide-only (-o wide) columns, so the default output stays upstream's.
const wide = (name: string, type: string, jsonPath: string): PrinterColumn => ({
  name,
  type,
  jsonPath,
  priority: 1,
});
const paused = wide('Paused', 'boolean', '.spec.paused');
const serviceAccount = wide('Service Account', 'string', '.spec.serviceAccountName');

const expectedCrds: Expected[] = [
  {
    group: 'secretgen.carvel.dev',
    kind: 'SecretExport',
    plural: 'secretexports',
    singular: 'secretexport',
    shortNames: ['secexp'],
    hasStatus: true,
    columns: [
      description,
      { name: 'To Namespace', type: 'string', jsonPath: '.spec.toNamespace' },
      { name: 'To Namespaces', type: 'string', jsonPath: '.spec.toNamespaces' },
      { name: 'Reached', type: 'integer', jsonPath: '.status.reachedNamespaceCount' },
      age,
    ],
  },
  {
    group: 'secretgen.carvel.dev',
    kind: 'SecretImport',
    plural: 'secretimports',
    singular: 'secretimport',
    shortNames: ['secimp'],
    hasStatus: true,
    columns: [description, { name: 'From Namespace', type: 'string', jsonPath: '.spec.fromNamespace' }, age],
  },
  {
    group: 'packaging.carvel.dev',
    kind: 'PackageRepository',
    plural: 'packagerepositories',
    singular: 'packagerepository',
    shortNames: ['pkgr'],
    hasStatus: true,
    columns: [age, description, wide('Bundle', 'string', '.spec.fetch.imgpkgBundle.image'), paused],
  },
  {
    group: 'packaging.carvel.dev',
    kind: 'PackageInstall',
    plural: 'packageinstalls',
    singular: 'packageinstall',
    shortNames: ['pkgi'],
    hasStatus: true,
    columns: [
      { name: 'Package name', type: 'string', jsonPath: '.spec.packageRef.refName' },
      { name: 'Package version', type: 'string', jsonPath: '.status.version' },
      description,
      serviceAccount,
      paused,
      age,
    ],
  },
  {
    group: 'data.packaging.carvel.dev',
    kind: 'Package',
    plural: 'packages',
    singular: 'package',
    shortNames: ['pkg'],
    hasStatus: false,
    columns: [
      { name: 'PackageMetadata Name', type: 'string', jsonPath: '.spec.refName' },
      { name: 'Version', type: 'string', jsonPath: '.spec.version' },
      age,
    ],
  },
  {
    group: 'data.packaging.carvel.dev',
    kind: 'PackageMetadata',
    plural: 'packagemetadatas',
    singular: 'packagemetadata',
    shortNames: ['pkgm'],
    hasStatus: false,
    columns: [
      { name: 'Display Name', type: 'string', jsonPath: '.spec.displayName' },
      { name: 'Categories', type: 'string', jsonPath: '.spec.categories', priority: 1 },
      { name: 'Short Description', type: 'string', jsonPath: '.spec.shortDescription' },
      age,
    ],
  },
  {
    group: 'kappctrl.k14s.io',
    kind: 'App',
    plural: 'apps',
    singular: 'app',
    // No short name: the singular "app" is already short, and upstream declares none.
    shortNames: [],
    hasStatus: true,
    columns: [
      description,
      { name: 'Since-Deploy', type: 'date', jsonPath: '.status.deploy.startedAt' },
      serviceAccount,
      paused,
      age,
    ],
  },
  {
    group: 'regcred.dev',
    kind: 'RegistryToken',
    plural: 'registrytokens',
    singular: 'registrytoken',
    shortNames: ['regtok'],
    hasStatus: true,
    category: 'regcred',
    columns: [
      { name: 'Provider', type: 'string', jsonPath: '.spec.provider' },
      { name: 'Registry', type: 'string', jsonPath: '.spec.registry' },
      { name: 'Secret', type: 'string', jsonPath: '.spec.secretName' },
      { name: 'Expires', type: 'date', jsonPath: '.status.expiresAt' },
      description,
      age,
    ],
  },
  {
    group: 'regcred.dev',
    kind: 'ImagePullSecretPolicy',
    plural: 'imagepullsecretpolicies',
    singular: 'imagepullsecretpolicy',
    shortNames: ['ipsp'],
    hasStatus: true,
    category: 'regcred',
    scope: 'Cluster',
    columns: [
      { name: 'Secret', type: 'string', jsonPath: '.spec.secretName' },
      { name: 'Namespaces', type: 'integer', jsonPath: '.status.namespaces' },
      { name: 'ServiceAccounts', type: 'integer', jsonPath: '.status.serviceAccounts' },
      description,
      age,
    ],
  },
];

const fileOf = (e: Expected): string => `${e.group}_${e.plural}.yaml`;
const ourGroups = new Set(expectedCrds.map((e) => e.group));

// ---------------------------------------------------------------------------
// Helpers

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function has(v: unknown, key: string): boolean {
  return isObj(v) && v[key] !== undefined && v[key] !== null;
}

function field(v: unknown, key: string): unknown {
  return isObj(v) ? v[key] : undefined;
}

function sizeOf(v: unknown): number {
  if (Array.isArray(v)) return v.length;
  if (typeof v === 'string') return [...v].length;
  if (isObj(v)) return Object.keys(v).length;
  return 0;
}

const loaded = new Map<string, Crd>();
function loadCrd(e: Expected): Crd {
  const file = fileOf(e);
  let crd = loaded.get(file);
  if (!crd) {
    const docs = parseAllDocuments(readFileSync(join(crdDir, file), 'utf8'));
    assert.equal(docs.length, 1, `${file} holds ${docs.length} YAML documents, expected exactly one`);
    const doc = docs[0]!;
    assert.deepEqual(doc.errors, [], `${file} does not parse`);
    crd = doc.toJS() as Crd;
    loaded.set(file, crd);
  }
  return crd;
}

function rootSchema(crd: Crd): Schema {
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}

/** Visits every schema node reachable through properties, items and additionalProperties. */
function walkSchema(schema: Schema, path: string, visit: (node: Schema, path: string) => void): void {
  visit(schema, path);
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    walkSchema(child, `${path}.properties.${name}`, visit);
  }
  if (schema.items) walkSchema(schema.items, `${path}.items`, visit);
  if (isObj(schema.additionalProperties)) {
    walkSchema(schema.additionalProperties, `${path}.additionalProperties`, visit);
  }
}

const schemaPath = 'spec.versions[0].schema.openAPIV3Schema';
// The API server forbids a description (or anything but name/generateName rules) here.
const rootMetadataPath = `${schemaPath}.properties.metadata`;

// ---------------------------------------------------------------------------
// CEL twins: the JavaScript meaning of every CEL rule in crds/, keyed by rule text
// with whitespace collapsed.

const normalizeRule = (rule: string): string => rule.replace(/\s+/g, ' ').trim();

const exactlyOne = (keys: string[]) => (self: unknown) => keys.filter((k) => has(self, k)).length === 1;
const dnsSubdomainWithThreeSegments = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?){2,}$/;

// The relative-path pattern of fetch path fields (see 'the relative-path pattern' below).
const PATH_COMPONENT = String.raw`(?:[^/\\\x00.][^/\\\x00]*|\.[^/\\\x00.][^/\\\x00]*|\.|\.\.[^/\\\x00]+)`;
const RELATIVE_PATH_PATTERN = `^(?:${PATH_COMPONENT}(?:/${PATH_COMPONENT}?)*)?$`;

const celTwins = new Map<string, (self: unknown) => boolean>([
  [
    `self.all(path, path.matches(r"${RELATIVE_PATH_PATTERN}"))`,
    (self) =>
      Object.keys(isObj(self) ? self : {}).every((key) => new RegExp(RELATIVE_PATH_PATTERN, 'u').test(key)),
  ],
  [
    '[has(self.inline), has(self.image), has(self.http), has(self.git), has(self.helmChart), has(self.imgpkgBundle)].filter(x, x).size() == 1',
    exactlyOne(['inline', 'image', 'http', 'git', 'helmChart', 'imgpkgBundle']),
  ],
  [
    '[has(self.ytt), has(self.kbld), has(self.helmTemplate), has(self.kustomize), has(self.jsonnet), has(self.sops), has(self.cue)].filter(x, x).size() == 1',
    exactlyOne(['ytt', 'kbld', 'helmTemplate', 'kustomize', 'jsonnet', 'sops', 'cue']),
  ],
  [
    '[has(self.imgpkgBundle), has(self.image), has(self.http), has(self.git), has(self.inline)].filter(x, x).size() == 1',
    exactlyOne(['imgpkgBundle', 'image', 'http', 'git', 'inline']),
  ],
  [
    "!has(self.spec) || !has(self.spec.refName) || !has(self.spec.version) || self.metadata.name == self.spec.refName + '.' + self.spec.version",
    (self) => {
      const spec = field(self, 'spec');
      if (!has(self, 'spec') || !has(spec, 'refName') || !has(spec, 'version')) return true;
      const name = field(field(self, 'metadata'), 'name');
      return name === `${String(field(spec, 'refName'))}.${String(field(spec, 'version'))}`;
    },
  ],
  [
    "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?){2,}$')",
    (self) => dnsSubdomainWithThreeSegments.test(String(field(field(self, 'metadata'), 'name'))),
  ],
  [
    "(has(self.toNamespace) && self.toNamespace != '') || (has(self.toNamespaces) && size(self.toNamespaces) > 0) || (has(self.dangerousToNamespacesSelector) && size(self.dangerousToNamespacesSelector) > 0) || has(self.toNamespacesLabelSelector)",
    (self) =>
      (has(self, 'toNamespace') && field(self, 'toNamespace') !== '') ||
      (has(self, 'toNamespaces') && sizeOf(field(self, 'toNamespaces')) > 0) ||
      (has(self, 'dangerousToNamespacesSelector') &&
        sizeOf(field(self, 'dangerousToNamespacesSelector')) > 0) ||
      has(self, 'toNamespacesLabelSelector'),
  ],
  ["self != ''", (self) => self !== ''],
  [
    "!has(self.operator) || !(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
    (self) =>
      !has(self, 'operator') ||
      !['In', 'NotIn'].includes(String(field(self, 'operator'))) ||
      (has(self, 'values') && sizeOf(field(self, 'values')) > 0),
  ],
  [
    "!has(self.operator) || !(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
    (self) =>
      !has(self, 'operator') ||
      !['Exists', 'DoesNotExist'].includes(String(field(self, 'operator'))) ||
      !has(self, 'values') ||
      sizeOf(field(self, 'values')) === 0,
  ],
  [
    '(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)',
    (self) =>
      (has(self, 'matchLabels') && sizeOf(field(self, 'matchLabels')) > 0) ||
      (has(self, 'matchExpressions') && sizeOf(field(self, 'matchExpressions')) > 0),
  ],
]);

// ---------------------------------------------------------------------------
// A small validator for the OpenAPI subset used in crds/.

interface Issue {
  path: string;
  message: string;
}

const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function typeMatches(type: string | undefined, value: unknown): boolean {
  switch (type) {
    case undefined:
      return true;
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObj(value);
    default:
      return false;
  }
}

function validate(schema: Schema, value: unknown, path: string, issues: Issue[], atRoot = false): void {
  if (value === null && schema.nullable) return;
  if (!typeMatches(schema.type, value)) {
    issues.push({ path, message: `expected type ${schema.type}, got ${JSON.stringify(value)}` });
    return;
  }
  if (schema.enum && !schema.enum.includes(value)) {
    issues.push({
      path,
      message: `Unsupported value ${JSON.stringify(value)}: one of ${JSON.stringify(schema.enum)}`,
    });
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength) {
      issues.push({ path, message: `should be at least ${schema.minLength} chars long` });
    }
    if (schema.maxLength !== undefined && length > schema.maxLength) {
      issues.push({ path, message: `may not be more than ${schema.maxLength} chars long` });
    }
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      issues.push({ path, message: `should match '${schema.pattern}'` });
    }
    if (schema.format === 'date-time' && !rfc3339.test(value)) {
      issues.push({ path, message: 'should be an RFC 3339 date-time' });
    }
  }
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum) {
    issues.push({ path, message: `should be greater than or equal to ${schema.minimum}` });
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      issues.push({ path, message: `should have at least ${schema.minItems} items` });
    }
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      issues.push({ path, message: `must have at most ${schema.maxItems} items` });
    }
    value.forEach((item, i) => {
      if (schema.items) validate(schema.items, item, `${path}[${i}]`, issues);
    });
  }
  if (isObj(value)) {
    if (schema.maxProperties !== undefined && Object.keys(value).length > schema.maxProperties) {
      issues.push({ path, message: `must have at most ${schema.maxProperties} items` });
    }
    for (const name of schema.required ?? []) {
      if (!has(value, name))
        issues.push({ path: path === '' ? name : `${path}.${name}`, message: 'Required value' });
    }
    for (const [name, child] of Object.entries(value)) {
      const childPath = path === '' ? name : `${path}.${name}`;
      // The API server validates metadata itself; the CRD schema only declares it.
      if (atRoot && name === 'metadata') continue;
      const prop = schema.properties?.[name];
      if (prop) validate(prop, child, childPath, issues);
      else if (isObj(schema.additionalProperties))
        validate(schema.additionalProperties, child, childPath, issues);
      else if (!schema['x-kubernetes-preserve-unknown-fields']) {
        issues.push({
          path: childPath,
          message: 'unknown field: not in the schema, the API server would prune it',
        });
      }
    }
  }
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    const twin = celTwins.get(normalizeRule(rule.rule));
    if (!twin) {
      issues.push({ path, message: `CEL rule without a JavaScript twin in this test: ${rule.rule}` });
    } else if (!twin(value)) {
      issues.push({ path, message: rule.message ?? rule.rule });
    }
  }
}

function validateDocument(doc: Obj): Issue[] {
  const apiVersion = String(doc.apiVersion);
  const group = apiVersion.split('/')[0];
  const expected = expectedCrds.find((e) => e.group === group && e.kind === doc.kind);
  assert.ok(expected, `no CRD for ${apiVersion} ${String(doc.kind)}`);
  const crd = loadCrd(expected);
  assert.equal(apiVersion, `${crd.spec.group}/${crd.spec.versions[0]!.name}`, 'apiVersion is not served');
  const issues: Issue[] = [];
  validate(rootSchema(crd), doc, '', issues, true);
  return issues;
}

const formatIssues = (issues: Issue[]): string => issues.map((i) => `  ${i.path}: ${i.message}`).join('\n');

// ---------------------------------------------------------------------------
// The CRD files themselves

test('crds/ holds exactly one file per expected kind, named <group>_<plural>.yaml', () => {
  const files = readdirSync(crdDir)
    .filter((f) => !f.startsWith('.'))
    .sort();
  assert.deepEqual(files, expectedCrds.map(fileOf).sort());
});

test('short names are unique and clash with no built-in kubectl resource name or short name', () => {
  // Built-in names a cluster admin types daily; a CRD short name equal to one would shadow or be shadowed.
  const builtIn = new Set(
    'cm cs csr crd ds deploy ep ev hpa ing limits netpol no ns pc pdb po pv pvc quota rc rs sa sc sts svc secret secrets app apps'.split(
      ' ',
    ),
  );
  const declared = expectedCrds.flatMap((e) => loadCrd(e).spec.names.shortNames ?? []);
  assert.deepEqual(
    declared.filter((n) => builtIn.has(n)),
    [],
  );
  assert.equal(
    new Set(declared).size,
    declared.length,
    `duplicate short names in ${JSON.stringify(declared)}`,
  );
  const kindsWithout = expectedCrds.filter((e) => (loadCrd(e).spec.names.shortNames ?? []).length === 0);
  assert.deepEqual(
    kindsWithout.map((e) => e.kind),
    ['App'],
    'every kind but App (singular "app") has a short name',
  );
});

for (const e of expectedCrds) {
  describe(`the ${e.kind} CRD (${fileOf(e)})`, () => {
    test('parses as a single apiextensions.k8s.io/v1 CustomResourceDefinition', () => {
      const crd = loadCrd(e);
      assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
      assert.equal(crd.kind, 'CustomResourceDefinition');
    });

    test('has exactly the expected name, group, kind, plural, singular, short names and categories', () => {
      const crd = loadCrd(e);
      assert.equal(crd.metadata.name, `${e.plural}.${e.group}`);
      assert.equal(crd.spec.group, e.group);
      assert.deepEqual(crd.spec.names, {
        kind: e.kind,
        listKind: `${e.kind}List`,
        plural: e.plural,
        singular: e.singular,
        ...(e.shortNames.length > 0 ? { shortNames: e.shortNames } : {}),
        categories: [e.category ?? 'carvel'],
      });
    });

    test(`is ${e.scope === 'Cluster' ? 'cluster-scoped' : 'namespaced'} and serves exactly one version, v1alpha1, as the storage version`, () => {
      const crd = loadCrd(e);
      assert.equal(crd.spec.scope, e.scope ?? 'Namespaced');
      assert.equal(crd.spec.versions.length, 1);
      const v = crd.spec.versions[0]!;
      assert.equal(v.name, 'v1alpha1');
      assert.equal(v.served, true);
      assert.equal(v.storage, true);
    });

    test(e.hasStatus ? 'has a status subresource and a status schema' : 'has no status at all', () => {
      const crd = loadCrd(e);
      const v = crd.spec.versions[0]!;
      const statusSchema = rootSchema(crd).properties?.status;
      if (e.hasStatus) {
        assert.deepEqual(v.subresources, { status: {} });
        assert.equal(statusSchema?.type, 'object');
      } else {
        assert.equal(v.subresources, undefined);
        assert.equal(statusSchema, undefined);
      }
    });

    test('has the expected printer columns, each described and pointing into the schema', () => {
      const crd = loadCrd(e);
      const columns = crd.spec.versions[0]!.additionalPrinterColumns ?? [];
      assert.deepEqual(
        columns.map(({ name, type, jsonPath, priority }) => ({
          name,
          type,
          jsonPath,
          ...(priority !== undefined ? { priority } : {}),
        })),
        e.columns,
      );
      for (const column of columns) {
        assert.ok(column.description, `column ${column.name} has no description`);
        if (column.jsonPath === '.metadata.creationTimestamp') continue;
        let node: Schema | undefined = rootSchema(crd);
        for (const step of column.jsonPath.split('.').slice(1)) node = node?.properties?.[step];
        assert.ok(node, `column ${column.name}: ${column.jsonPath} is not in the schema`);
        const expectedType = column.type === 'date' ? 'string' : column.type;
        // A string column may show a list of strings (kubectl prints it as [a b]).
        const shown = node.type === 'array' && column.type === 'string' ? node.items?.type : node.type;
        assert.equal(shown, expectedType, `column ${column.name} type`);
      }
    });

    test('shows more than the name and age at a glance: Age and at least one other default column; extra columns only in -o wide', () => {
      const columns = loadCrd(e).spec.versions[0]!.additionalPrinterColumns ?? [];
      const shown = columns.filter((c) => (c.priority ?? 0) === 0).map((c) => c.name);
      assert.ok(shown.includes('Age'), `no Age column in ${JSON.stringify(shown)}`);
      assert.ok(shown.length >= 2, `only ${JSON.stringify(shown)} in the default output`);
      for (const c of columns) assert.ok(c.priority === undefined || c.priority === 1, `${c.name} priority`);
    });

    test('gives every schema node a description, except the root metadata that the API server describes', () => {
      const offenders: string[] = [];
      walkSchema(rootSchema(loadCrd(e)), schemaPath, (node, path) => {
        if (path === rootMetadataPath) return;
        const relevant = node.type !== undefined || node.properties !== undefined || node.items !== undefined;
        if (relevant && !(typeof node.description === 'string' && node.description.trim() !== '')) {
          offenders.push(path);
        }
      });
      assert.deepEqual(offenders, [], `schema nodes without a description:\n${offenders.join('\n')}`);
    });

    test('declares the root metadata as a bare object, since the API server rejects anything more', () => {
      assert.deepEqual(rootSchema(loadCrd(e)).properties?.metadata, { type: 'object' });
    });

    test('is structural: every schema node has a type and none mixes properties with additionalProperties', () => {
      const offenders: string[] = [];
      walkSchema(rootSchema(loadCrd(e)), schemaPath, (node, path) => {
        if (node.type === undefined) offenders.push(`${path}: no type`);
        if (node.properties && node.additionalProperties !== undefined) {
          offenders.push(`${path}: both properties and additionalProperties`);
        }
        if (node['x-kubernetes-preserve-unknown-fields'] && node.type !== 'object') {
          offenders.push(`${path}: x-kubernetes-preserve-unknown-fields on a non-object`);
        }
        if (node.type === 'array' && !node.items) offenders.push(`${path}: array without items`);
        if (node['x-kubernetes-int-or-string'] !== undefined)
          offenders.push(`${path}: x-kubernetes-int-or-string`);
      });
      assert.deepEqual(offenders, [], offenders.join('\n'));
    });

    test('bounds every list and map of a .spec (maxItems / maxProperties), so no object drives unbounded work', () => {
      const offenders: string[] = [];
      walkSchema(rootSchema(loadCrd(e)), schemaPath, (node, path) => {
        if (!path.startsWith(`${schemaPath}.properties.spec`)) return;
        if (node.type === 'array' && node.maxItems === undefined) offenders.push(`${path}: no maxItems`);
        if (isObj(node.additionalProperties) && node.maxProperties === undefined) {
          offenders.push(`${path}: no maxProperties`);
        }
      });
      assert.deepEqual(offenders, [], offenders.join('\n'));
    });

    test('gives every fetch path field (path, subPath, directoryPath) the relative-path pattern and a maxLength', () => {
      const offenders: string[] = [];
      walkSchema(rootSchema(loadCrd(e)), schemaPath, (node, path) => {
        const field = path.split('.').pop() ?? '';
        const fetchPath = field === 'path' && /\.fetch\.items\.properties\.path$/.test(path);
        if (!fetchPath && field !== 'subPath' && field !== 'directoryPath') return;
        if (node.pattern !== RELATIVE_PATH_PATTERN)
          offenders.push(`${path}: pattern ${String(node.pattern)}`);
        if (node.maxLength !== 1024) offenders.push(`${path}: maxLength ${String(node.maxLength)}`);
      });
      assert.deepEqual(offenders, [], offenders.join('\n'));
    });

    test('words every CEL rule with a message and a JavaScript twin, and bounds lists whose items carry rules', () => {
      const offenders: string[] = [];
      walkSchema(rootSchema(loadCrd(e)), schemaPath, (node, path) => {
        for (const rule of node['x-kubernetes-validations'] ?? []) {
          if (!rule.message?.trim()) offenders.push(`${path}: rule without a message: ${rule.rule}`);
          if (!celTwins.has(normalizeRule(rule.rule)))
            offenders.push(`${path}: rule without a twin: ${rule.rule}`);
        }
        const itemRules = node.items?.['x-kubernetes-validations'] ?? [];
        if (node.type === 'array' && itemRules.length > 0 && node.maxItems === undefined) {
          offenders.push(`${path}: items carry CEL rules but the list has no maxItems`);
        }
      });
      assert.deepEqual(offenders, [], offenders.join('\n'));
    });
  });
}

test('the Package template.spec schema is identical to the App spec schema', () => {
  const byKind = (kind: string): Crd => loadCrd(expectedCrds.find((e) => e.kind === kind)!);
  const appSpec = rootSchema(byKind('App')).properties?.spec;
  const templateSpec = rootSchema(byKind('Package')).properties?.spec?.properties?.template?.properties?.spec;
  assert.ok(appSpec && templateSpec);
  if (!isDeepStrictEqual(appSpec, templateSpec)) {
    const differences: string[] = [];
    const index = new Map<string, Schema>();
    walkSchema(appSpec, '', (node, path) => index.set(path, node));
    walkSchema(templateSpec, '', (node, path) => {
      const other = index.get(path);
      if (!other) differences.push(`${path}: only in Package`);
      else {
        const { properties: _a, items: _b, additionalProperties: _c, ...own } = node;
        const { properties: _d, items: _e, additionalProperties: _f, ...otherOwn } = other;
        if (!isDeepStrictEqual(own, otherOwn)) differences.push(`${path}: differs`);
        index.delete(path);
      }
    });
    for (const path of index.keys()) differences.push(`${path}: only in App`);
    assert.fail(`schemas differ:\n${differences.join('\n')}`);
  }
});

// ---------------------------------------------------------------------------
// The relative-path pattern of fetch path fields: empty, or '/'-separated components,
// none of them '..', no leading '/', no NUL or backslash. Written without lookaheads
// (the API server's Go regexp has none); every alternative of a component is decided
// by its first two characters, so a backtracking engine stays linear too.

describe('the relative-path pattern', () => {
  const matches = (value: string) => new RegExp(RELATIVE_PATH_PATTERN, 'u').test(value);
  const good = [
    '',
    'config',
    'a/b',
    'a/b/',
    'a//b',
    '.',
    './config',
    '.hidden',
    '..data',
    '...',
    'a/./b',
    'x..',
    'ünï/cödé',
  ];
  const bad = ['..', '../x', '../../x', 'a/..', 'a/../b', '/etc', '/', 'a\\b', 'a\0b', '//x'];
  for (const value of good) test(`accepts ${JSON.stringify(value)}`, () => assert.ok(matches(value)));
  for (const value of bad) test(`rejects ${JSON.stringify(value)}`, () => assert.ok(!matches(value)));

  test('takes linear time on input built to make a backtracking engine stall', () => {
    for (const value of [
      'a/'.repeat(50_000) + '..',
      '.'.repeat(100_000) + '/..',
      `${'a'.repeat(100_000)}\0`,
    ]) {
      const started = performance.now();
      assert.equal(matches(value), false);
      assert.ok(performance.now() - started < 200, `${Math.round(performance.now() - started)} ms`);
    }
  });
});

// ---------------------------------------------------------------------------
// The seed examples: YAML written for upstream Carvel must fit unchanged.

describe('the seed examples', () => {
  assert.ok(
    existsSync(seedExamplesPath),
    `seed examples not found at ${seedExamplesPath} (set REGCRED_SEED_EXAMPLES to their path)`,
  );
  const docs = parseAllDocuments(readFileSync(seedExamplesPath, 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], 'seed examples do not parse');
    return d.toJS() as Obj;
  });
  const ours = docs.filter((d) => ourGroups.has(String(d.apiVersion).split('/')[0] ?? ''));

  test('include a SecretExport, a PackageRepository, a PackageInstall and a Package', () => {
    const kinds = new Set(ours.map((d) => String(d.kind)));
    for (const kind of ['SecretExport', 'PackageRepository', 'PackageInstall', 'Package']) {
      assert.ok(kinds.has(kind), `no ${kind} among the seed examples`);
    }
  });

  for (const doc of ours) {
    const meta = field(doc, 'metadata');
    const label = `${String(doc.kind)} ${String(field(meta, 'namespace'))}/${String(field(meta, 'name'))}`;
    test(`${label} has a CRD and fits its schema, every field included`, () => {
      const issues = validateDocument(doc);
      assert.deepEqual(issues, [], `\n${formatIssues(issues)}`);
    });
  }
});

// ---------------------------------------------------------------------------
// Admission: bad specs are rejected with a clear message, good ones pass.

const metaOf = (name: string): Obj => ({ name, namespace: 'default' });
const secretExport = (spec: unknown): Obj => ({
  apiVersion: 'secretgen.carvel.dev/v1alpha1',
  kind: 'SecretExport',
  metadata: metaOf('reg-creds'),
  spec,
});
const secretImport = (spec: unknown): Obj => ({
  apiVersion: 'secretgen.carvel.dev/v1alpha1',
  kind: 'SecretImport',
  metadata: metaOf('reg-creds'),
  spec,
});
const packageRepository = (spec: unknown): Obj => ({
  apiVersion: 'packaging.carvel.dev/v1alpha1',
  kind: 'PackageRepository',
  metadata: metaOf('repo'),
  spec,
});
const packageInstall = (spec: unknown): Obj => ({
  apiVersion: 'packaging.carvel.dev/v1alpha1',
  kind: 'PackageInstall',
  metadata: metaOf('pkgi'),
  spec,
});
const packageDoc = (name: string, spec: unknown): Obj => ({
  apiVersion: 'data.packaging.carvel.dev/v1alpha1',
  kind: 'Package',
  metadata: metaOf(name),
  spec,
});
const packageMetadata = (name: string, spec: unknown = {}): Obj => ({
  apiVersion: 'data.packaging.carvel.dev/v1alpha1',
  kind: 'PackageMetadata',
  metadata: metaOf(name),
  spec,
});
const app = (spec: unknown): Obj => ({
  apiVersion: 'kappctrl.k14s.io/v1alpha1',
  kind: 'App',
  metadata: metaOf('app'),
  spec,
});
const bundleFetch = { imgpkgBundle: { image: 'registry.corp.com/packages/simple-app:1.0.0' } };
const appSpec = {
  serviceAccountName: 'sa',
  fetch: [bundleFetch],
  template: [{ ytt: {} }],
  deploy: [{ kapp: {} }],
};

// path: where the API server reports the problem ('' is the object itself); the bad doc
// must have no other problem.
const rejected: Array<{ name: string; doc: Obj; path: string; message: string }> = [
  {
    name: 'a SecretExport with no target at all',
    doc: secretExport({}),
    path: 'spec',
    message: 'Expected to have at least one non-empty to namespace or to namespace annotation',
  },
  {
    name: 'a SecretExport whose only target is an empty toNamespaces list',
    doc: secretExport({ toNamespaces: [] }),
    path: 'spec',
    message: 'Expected to have at least one non-empty to namespace or to namespace annotation',
  },
  {
    name: 'a SecretExport with an empty string in toNamespaces',
    doc: secretExport({ toNamespaces: ['team-a', ''] }),
    path: 'spec.toNamespaces[1]',
    message: 'Expected to namespace to be non-empty',
  },
  {
    name: 'a SecretExport with an empty toNamespace',
    doc: secretExport({ toNamespace: '', toNamespaces: ['team-a'] }),
    path: 'spec.toNamespace',
    message: 'Expected to namespace to be non-empty',
  },
  {
    name: 'a SecretExport selector using In without values',
    doc: secretExport({
      dangerousToNamespacesSelector: [{ key: 'metadata.annotations.one', operator: 'In' }],
    }),
    path: 'spec.dangerousToNamespacesSelector[0]',
    message: "Values must be specified when `operator` is 'In' or 'NotIn'",
  },
  {
    name: 'a SecretExport selector using NotIn with an empty values list',
    doc: secretExport({
      dangerousToNamespacesSelector: [{ key: 'metadata.annotations.one', operator: 'NotIn', values: [] }],
    }),
    path: 'spec.dangerousToNamespacesSelector[0]',
    message: "Values must be specified when `operator` is 'In' or 'NotIn'",
  },
  {
    name: 'a SecretExport selector using Exists with values',
    doc: secretExport({
      dangerousToNamespacesSelector: [{ key: 'metadata.annotations.one', operator: 'Exists', values: ['x'] }],
    }),
    path: 'spec.dangerousToNamespacesSelector[0]',
    message: "Values may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
  },
  {
    name: 'a SecretExport selector with an unknown operator',
    doc: secretExport({
      dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'Equals', values: ['x'] }],
    }),
    path: 'spec.dangerousToNamespacesSelector[0].operator',
    message: 'Unsupported value',
  },
  {
    name: 'a SecretExport selector without a key',
    doc: secretExport({ dangerousToNamespacesSelector: [{ operator: 'Exists' }] }),
    path: 'spec.dangerousToNamespacesSelector[0].key',
    message: 'Required value',
  },
  {
    name: 'a SecretExport with an empty label selector',
    doc: secretExport({ toNamespacesLabelSelector: {} }),
    path: 'spec.toNamespacesLabelSelector',
    message: 'toNamespacesLabelSelector must have at least one matchLabels entry or matchExpressions item',
  },
  {
    name: 'a SecretExport label selector expression using In without values',
    doc: secretExport({ toNamespacesLabelSelector: { matchExpressions: [{ key: 'team', operator: 'In' }] } }),
    path: 'spec.toNamespacesLabelSelector.matchExpressions[0]',
    message: "Values must be specified when `operator` is 'In' or 'NotIn'",
  },
  {
    name: 'a SecretExport label selector expression using DoesNotExist with values',
    doc: secretExport({
      toNamespacesLabelSelector: {
        matchExpressions: [{ key: 'team', operator: 'DoesNotExist', values: ['a'] }],
      },
    }),
    path: 'spec.toNamespacesLabelSelector.matchExpressions[0]',
    message: "Values may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
  },
  {
    name: 'a SecretImport without fromNamespace',
    doc: secretImport({}),
    path: 'spec.fromNamespace',
    message: 'Required value',
  },
  {
    name: 'a SecretImport with an empty fromNamespace',
    doc: secretImport({ fromNamespace: '' }),
    path: 'spec.fromNamespace',
    message: "Validating 'spec.fromNamespace': Expected to be non-empty",
  },
  {
    name: 'a PackageRepository without fetch',
    doc: packageRepository({ syncPeriod: '10m' }),
    path: 'spec.fetch',
    message: 'Required value',
  },
  {
    name: 'a PackageRepository with an empty fetch',
    doc: packageRepository({ fetch: {} }),
    path: 'spec.fetch',
    message: 'Expected exactly one fetch source: imgpkgBundle, image, http, git or inline',
  },
  {
    name: 'a PackageRepository fetching from two sources',
    doc: packageRepository({ fetch: { imgpkgBundle: { image: 'a/b:1' }, image: { url: 'a/c:1' } } }),
    path: 'spec.fetch',
    message: 'Expected exactly one fetch source: imgpkgBundle, image, http, git or inline',
  },
  {
    name: 'a PackageRepository bundle without an image',
    doc: packageRepository({ fetch: { imgpkgBundle: { secretRef: { name: 'creds' } } } }),
    path: 'spec.fetch.imgpkgBundle.image',
    message: 'Required value',
  },
  {
    name: 'a PackageRepository bundle with an empty image',
    doc: packageRepository({ fetch: { imgpkgBundle: { image: '' } } }),
    path: 'spec.fetch.imgpkgBundle.image',
    message: 'should be at least 1 chars long',
  },
  {
    name: 'a PackageRepository image without a url',
    doc: packageRepository({ fetch: { image: { subPath: 'packages' } } }),
    path: 'spec.fetch.image.url',
    message: 'Required value',
  },
  {
    name: 'a PackageRepository with a syncPeriod that is not a duration',
    doc: packageRepository({ fetch: bundleFetch, syncPeriod: '10 minutes' }),
    path: 'spec.syncPeriod',
    message: 'should match',
  },
  {
    name: 'a PackageInstall without packageRef',
    doc: packageInstall({ serviceAccountName: 'sa' }),
    path: 'spec.packageRef',
    message: 'Required value',
  },
  {
    name: 'a PackageInstall with an empty refName',
    doc: packageInstall({ serviceAccountName: 'sa', packageRef: { refName: '' } }),
    path: 'spec.packageRef.refName',
    message: 'should be at least 1 chars long',
  },
  {
    name: 'a PackageInstall whose values secretRef is a string',
    doc: packageInstall({ packageRef: { refName: 'a.b.c' }, values: [{ secretRef: 'values' }] }),
    path: 'spec.values[0].secretRef',
    message: 'expected type object',
  },
  {
    name: 'a Package whose name is not <refName>.<version>',
    doc: packageDoc('simple-app.corp.com.2.0.0', { refName: 'simple-app.corp.com', version: '1.0.0' }),
    path: '',
    message: 'metadata.name must be <spec.refName>.<spec.version>',
  },
  {
    name: 'a Package whose version has a leading v',
    doc: packageDoc('simple-app.corp.com.v1.0.0', { refName: 'simple-app.corp.com', version: 'v1.0.0' }),
    path: 'spec.version',
    message: 'should match',
  },
  {
    name: 'a Package whose version is not semver',
    doc: packageDoc('simple-app.corp.com.1.0', { refName: 'simple-app.corp.com', version: '1.0' }),
    path: 'spec.version',
    message: 'should match',
  },
  {
    name: 'a Package whose refName has only two segments',
    doc: packageDoc('corp.com.1.0.0', { refName: 'corp.com', version: '1.0.0' }),
    path: 'spec.refName',
    message: 'should match',
  },
  {
    name: 'a Package without a version',
    doc: packageDoc('simple-app.corp.com', { refName: 'simple-app.corp.com' }),
    path: 'spec.version',
    message: 'Required value',
  },
  {
    name: 'a Package whose template fetch step has two sources',
    doc: packageDoc('simple-app.corp.com.1.0.0', {
      refName: 'simple-app.corp.com',
      version: '1.0.0',
      template: { spec: { fetch: [{ ...bundleFetch, git: { url: 'https://github.com/corp/app' } }] } },
    }),
    path: 'spec.template.spec.fetch[0]',
    message: 'Expected exactly one fetch source per step',
  },
  {
    name: 'a PackageMetadata whose name has fewer than three segments',
    doc: packageMetadata('simple-app', { displayName: 'Simple app' }),
    path: '',
    message: 'metadata.name must be a DNS subdomain with at least three dot-separated segments',
  },
  {
    name: 'an App fetch step with two sources',
    doc: app({
      ...appSpec,
      fetch: [{ inline: { paths: { 'a.yml': 'a: 1' } }, http: { url: 'https://x/y.tgz' } }],
    }),
    path: 'spec.fetch[0]',
    message:
      'Expected exactly one fetch source per step: inline, image, http, git, helmChart or imgpkgBundle',
  },
  {
    name: 'an App fetch step with only a path',
    doc: app({ ...appSpec, fetch: [{ path: 'config' }] }),
    path: 'spec.fetch[0]',
    message:
      'Expected exactly one fetch source per step: inline, image, http, git, helmChart or imgpkgBundle',
  },
  {
    name: 'an App template step with two tools',
    doc: app({ ...appSpec, template: [{ ytt: {}, kbld: {} }] }),
    path: 'spec.template[0]',
    message: 'Expected exactly one template tool per step',
  },
  {
    name: 'an App deploy step without kapp',
    doc: app({ ...appSpec, deploy: [{}] }),
    path: 'spec.deploy[0].kapp',
    message: 'Required value',
  },
  {
    name: 'an App fetch path that climbs out of the fetch directory',
    doc: app({ ...appSpec, fetch: [bundleFetch, { ...bundleFetch, path: '../../x' }] }),
    path: 'spec.fetch[1].path',
    message: 'should match',
  },
  {
    name: 'an App fetch path that is absolute',
    doc: app({ ...appSpec, fetch: [{ ...bundleFetch, path: '/tmp/x' }] }),
    path: 'spec.fetch[0].path',
    message: 'should match',
  },
  {
    name: 'an App image subPath with a .. component',
    doc: app({ ...appSpec, fetch: [{ image: { url: 'registry.corp.com/c:1', subPath: 'a/../../b' } }] }),
    path: 'spec.fetch[0].image.subPath',
    message: 'should match',
  },
  {
    name: 'an App inline directoryPath with a backslash',
    doc: app({
      ...appSpec,
      fetch: [{ inline: { pathsFrom: [{ secretRef: { name: 's', directoryPath: '..\\x' } }] } }],
    }),
    path: 'spec.fetch[0].inline.pathsFrom[0].secretRef.directoryPath',
    message: 'should match',
  },
  {
    name: 'a Package whose template fetch path climbs out',
    doc: packageDoc('simple-app.corp.com.1.0.0', {
      refName: 'simple-app.corp.com',
      version: '1.0.0',
      template: { spec: { ...appSpec, fetch: [bundleFetch, { ...bundleFetch, path: '..' }] } },
    }),
    path: 'spec.template.spec.fetch[1].path',
    message: 'should match',
  },
  {
    name: 'a PackageRepository image subPath that is absolute',
    doc: packageRepository({ fetch: { image: { url: 'registry.corp.com/repo:1', subPath: '/packages' } } }),
    path: 'spec.fetch.image.subPath',
    message: 'should match',
  },
  {
    name: 'an App fetch path longer than 1024 characters',
    doc: app({ ...appSpec, fetch: [bundleFetch, { ...bundleFetch, path: 'a'.repeat(1025) }] }),
    path: 'spec.fetch[1].path',
    message: 'may not be more than 1024 chars long',
  },
  {
    name: 'an App inline step naming more than 100 Secrets',
    doc: app({
      ...appSpec,
      fetch: [
        { inline: { pathsFrom: Array.from({ length: 101 }, (_, i) => ({ secretRef: { name: `s${i}` } })) } },
      ],
    }),
    path: 'spec.fetch[0].inline.pathsFrom',
    message: 'must have at most 100 items',
  },
  {
    name: 'an App inline step with more than 1000 files',
    doc: app({
      ...appSpec,
      fetch: [
        { inline: { paths: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`f${i}`, ''])) } },
      ],
    }),
    path: 'spec.fetch[0].inline.paths',
    message: 'must have at most 1000 items',
  },
  {
    name: 'an App with more than 100 fetch steps',
    doc: app({ ...appSpec, fetch: Array.from({ length: 101 }, () => bundleFetch) }),
    path: 'spec.fetch',
    message: 'must have at most 100 items',
  },
  {
    name: 'an App with more than 10 deploy steps',
    doc: app({ ...appSpec, deploy: Array.from({ length: 11 }, () => ({ kapp: {} })) }),
    path: 'spec.deploy',
    message: 'must have at most 10 items',
  },
  {
    name: 'an App whose serviceAccountName is longer than a Kubernetes name',
    doc: app({ ...appSpec, serviceAccountName: 'a'.repeat(254) }),
    path: 'spec.serviceAccountName',
    message: 'may not be more than 253 chars long',
  },
  {
    name: 'a PackageInstall with more than 100 values sources',
    doc: packageInstall({
      packageRef: { refName: 'a.b.c' },
      values: Array.from({ length: 101 }, () => ({ secretRef: { name: 'v' } })),
    }),
    path: 'spec.values',
    message: 'must have at most 100 items',
  },
  {
    name: 'a PackageRepository inline step naming more than 100 Secrets',
    doc: packageRepository({
      fetch: { inline: { pathsFrom: Array.from({ length: 101 }, () => ({ secretRef: { name: 's' } })) } },
    }),
    path: 'spec.fetch.inline.pathsFrom',
    message: 'must have at most 100 items',
  },
  {
    name: 'a SecretExport label selector with more than 100 labels',
    doc: secretExport({
      toNamespacesLabelSelector: {
        matchLabels: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`l${i}`, 'v'])),
      },
    }),
    path: 'spec.toNamespacesLabelSelector.matchLabels',
    message: 'must have at most 100 items',
  },
  {
    name: 'an App inline file path that climbs out of the fetch directory',
    doc: app({ ...appSpec, fetch: [{ inline: { paths: { 'ok.yml': 'a', '../x.yml': 'b' } } }] }),
    path: 'spec.fetch[0].inline.paths',
    message: 'Expected every inline.paths key to be a relative path inside the fetch directory',
  },
  {
    name: 'a PackageRepository inline file path that is absolute',
    doc: packageRepository({ fetch: { inline: { paths: { '/etc/x.yml': 'b' } } } }),
    path: 'spec.fetch.inline.paths',
    message: 'Expected every inline.paths key to be a relative path inside the fetch directory',
  },
  {
    name: 'an App with a misspelled spec field',
    doc: app({ ...appSpec, serviceAcountName: 'sa' }),
    path: 'spec.serviceAcountName',
    message: 'unknown field',
  },
];

const accepted: Array<{ name: string; doc: Obj }> = [
  { name: 'a SecretExport to one namespace', doc: secretExport({ toNamespace: 'team-a' }) },
  {
    name: 'a SecretExport with a JSONPath selector using Exists without values',
    doc: secretExport({
      dangerousToNamespacesSelector: [
        { key: "metadata.annotations['field\\.cattle\\.io/projectId']", operator: 'Exists' },
        { key: 'metadata.annotations.one', operator: 'In', values: ['a', 'b'] },
      ],
    }),
  },
  {
    name: 'a SecretExport with a label selector',
    doc: secretExport({
      toNamespacesLabelSelector: {
        matchLabels: { team: 'a' },
        matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }],
      },
    }),
  },
  { name: 'a SecretImport', doc: secretImport({ fromNamespace: 'secrets-ns' }) },
  {
    name: 'a PackageRepository with tag selection and a sync period',
    doc: packageRepository({
      syncPeriod: '1h30m',
      paused: false,
      fetch: {
        imgpkgBundle: {
          image: 'registry.corp.com/repo',
          tagSelection: { semver: { constraints: '>=1.0.0', prereleases: { identifiers: ['rc'] } } },
          secretRef: { name: 'creds' },
        },
      },
    }),
  },
  {
    name: 'a PackageRepository with inline content',
    doc: packageRepository({ fetch: { inline: { paths: { 'packages/a.yml': '---' } } } }),
  },
  {
    name: 'a PackageInstall with every spec field',
    doc: packageInstall({
      serviceAccountName: 'sa',
      cluster: { namespace: 'ns', kubeconfigSecretRef: { name: 'kc', key: 'value' } },
      packageRef: {
        refName: 'simple-app.corp.com',
        versionSelection: { constraints: '>=1.0.0 <2.0.0', prereleases: { identifiers: ['beta'] } },
      },
      values: [{ secretRef: { name: 'values', key: 'values.yml' } }],
      paused: false,
      canceled: false,
      syncPeriod: '10m',
      noopDelete: true,
      defaultNamespace: 'apps',
    }),
  },
  {
    name: 'a Package with a prerelease version, a values schema and metadata fields',
    doc: packageDoc('simple-app.corp.com.2.1.0-rc.1', {
      refName: 'simple-app.corp.com',
      version: '2.1.0-rc.1',
      licenses: ['Apache 2.0'],
      releasedAt: '2021-05-05T18:57:06Z',
      capacityRequirementsDescription: 'small',
      releaseNotes: 'notes',
      valuesSchema: {
        openAPIv3: { type: 'object', properties: { replicas: { type: 'integer', default: 1 } } },
      },
      includedSoftware: [{ displayName: 'app', version: '2.1.0', description: 'the app' }],
      kubernetesVersionSelection: { constraints: '>=1.25.0' },
      kappControllerVersionSelection: { constraints: '>=0.40.0' },
      template: { spec: appSpec },
    }),
  },
  {
    name: 'a PackageMetadata with every spec field',
    doc: packageMetadata('simple-app.corp.com', {
      displayName: 'Simple app',
      shortDescription: 'short',
      longDescription: 'long',
      iconSVGBase64: 'PHN2Zz4=',
      providerName: 'Corp',
      maintainers: [{ name: 'someone' }],
      categories: ['demo'],
      supportDescription: 'none',
    }),
  },
  {
    name: 'an App using every fetch source, template tool and kapp option',
    doc: app({
      serviceAccountName: 'sa',
      syncPeriod: '30s',
      defaultNamespace: 'apps',
      fetch: [
        {
          inline: {
            paths: { 'a.yml': 'a: 1' },
            pathsFrom: [{ secretRef: { name: 's', directoryPath: 'd' } }],
          },
        },
        { image: { url: 'registry.corp.com/config', tagSelection: { semver: { constraints: '>0.1.0' } } } },
        { http: { url: 'https://corp.com/c.tgz', sha256: 'abc', subPath: 'config' } },
        { git: { url: 'https://github.com/corp/config', ref: 'origin/main', depth: 1, lfsSkipSmudge: true } },
        { helmChart: { name: 'redis', version: '1.0.0', repository: { url: 'https://charts.corp.com' } } },
        { ...bundleFetch, path: 'bundle' },
      ],
      template: [
        {
          ytt: {
            paths: ['0'],
            valuesFrom: [
              { secretRef: { name: 'v' } },
              { downwardAPI: { items: [{ name: 'ns', fieldPath: 'metadata.namespace' }] } },
            ],
          },
        },
        { helmTemplate: { path: '4', kubernetesVersion: { version: '1.30.0' } } },
        { cue: { inputExpression: 'values:', outputExpression: 'out' } },
        { sops: { age: { privateKeysSecretRef: { name: 'age' } } } },
        { kustomize: {} },
        { jsonnet: {} },
        { kbld: { paths: ['-', '.imgpkg/images.yml'] } },
      ],
      deploy: [
        { kapp: { intoNs: 'apps', rawOptions: ['--wait=true'], inspect: {}, delete: { rawOptions: [] } } },
      ],
    }),
  },
];

accepted.push({
  name: 'an App whose path fields are relative paths inside the fetch directory, at the list limits',
  doc: app({
    ...appSpec,
    fetch: [
      { ...bundleFetch, path: 'config' },
      { ...bundleFetch, path: './nested/dir/' },
      { image: { url: 'registry.corp.com/c:1', subPath: '.hidden/..data/...' }, path: '.' },
      { http: { url: 'https://corp.com/c.tgz', subPath: '' } },
      {
        inline: {
          paths: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`d/.f${i}.yml`, ''])),
          pathsFrom: Array.from({ length: 100 }, (_, i) => ({
            secretRef: { name: 'a'.repeat(253), directoryPath: `values/${i}` },
          })),
        },
      },
      ...Array.from({ length: 95 }, () => bundleFetch),
    ],
    deploy: Array.from({ length: 10 }, () => ({ kapp: {} })),
  }),
});

describe('admission of bad specs', () => {
  for (const { name, doc, path, message } of rejected) {
    test(`rejects ${name}, saying "${message}"`, () => {
      const issues = validateDocument(doc);
      const got = `got:\n${formatIssues(issues) || '  (none)'}`;
      assert.ok(
        issues.some((i) => i.path === path && i.message.includes(message)),
        `expected an issue at "${path}" containing "${message}", ${got}`,
      );
      assert.ok(
        issues.every((i) => i.path === path),
        `expected no issue elsewhere than "${path}", ${got}`,
      );
    });
  }
});

describe('admission of good specs', () => {
  for (const { name, doc } of accepted) {
    test(`accepts ${name}`, () => {
      const issues = validateDocument(doc);
      assert.deepEqual(issues, [], `\n${formatIssues(issues)}`);
    });
  }
});
