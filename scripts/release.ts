// npm run release [-- --check]
// Writes the install profiles from crds/ and deploy/base/:
//   deploy/plain/      the `full` profile: every CRD of crds/, every controller
//   deploy/secretgen/  the `secretgen` profile: SecretExport/SecretImport only,
//                      for clusters that already run kapp-controller
//   deploy/release/regcred-operator-<profile>.yaml  each profile in one file
// Each profile's Deployment passes its --controllers explicitly and its
// ClusterRole grants the rules of exactly those controllers.
// --check exits 1 when a committed file differs from what would be written.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, parseAllDocuments, type Document } from 'yaml';
import { CONTROLLER_NAMES, type ControllerName } from '../src/config.js';
import { requiredCrds } from '../src/required-crds.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const READ = ['get', 'list', 'watch'];
const RECONCILE = [...READ, 'update', 'patch'];
const OWN = [...READ, 'create', 'update', 'patch', 'delete'];
const STATUS = ['get', 'update', 'patch'];

/** What every profile needs: Events on reconciled objects, and namespaces (export targets, fetch namespaces). */
const COMMON_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['namespaces'], verbs: READ },
];

/** Rules by feature; a profile grants the features of its controllers. */
export const FEATURE_RULES = {
  // SecretExport, SecretImport, placeholder Secrets: imports create and delete their copies.
  sharing: [
    { apiGroups: [''], resources: ['secrets'], verbs: OWN },
    { apiGroups: ['secretgen.carvel.dev'], resources: ['secretexports', 'secretimports'], verbs: RECONCILE },
    {
      apiGroups: ['secretgen.carvel.dev'],
      resources: ['secretexports/status', 'secretimports/status'],
      verbs: STATUS,
    },
  ],
  // PackageRepository, PackageInstall, App: fetch-secret placeholders, Packages and Apps they own.
  packaging: [
    { apiGroups: [''], resources: ['secrets'], verbs: OWN },
    {
      apiGroups: ['packaging.carvel.dev'],
      resources: ['packagerepositories', 'packageinstalls'],
      verbs: RECONCILE,
    },
    {
      apiGroups: ['packaging.carvel.dev'],
      resources: [
        'packagerepositories/status',
        'packageinstalls/status',
        'packagerepositories/finalizers',
        'packageinstalls/finalizers',
      ],
      verbs: STATUS,
    },
    { apiGroups: ['data.packaging.carvel.dev'], resources: ['packages', 'packagemetadatas'], verbs: OWN },
    { apiGroups: ['kappctrl.k14s.io'], resources: ['apps'], verbs: OWN },
    { apiGroups: ['kappctrl.k14s.io'], resources: ['apps/status', 'apps/finalizers'], verbs: STATUS },
  ],
  // RegistryToken and ImagePullSecretPolicy: minted Secrets, ServiceAccounts'
  // imagePullSecrets, and the operator's own MutatingWebhookConfiguration. RBAC
  // cannot limit create to a name (the name is unknown when it is authorized),
  // so create is granted on its own; every other verb only on regcred-operator.
  regcred: [
    { apiGroups: [''], resources: ['secrets'], verbs: OWN },
    { apiGroups: [''], resources: ['serviceaccounts'], verbs: [...READ, 'patch'] },
    {
      apiGroups: ['regcred.dev'],
      resources: ['registrytokens', 'imagepullsecretpolicies'],
      verbs: RECONCILE,
    },
    {
      apiGroups: ['regcred.dev'],
      resources: ['registrytokens/status', 'imagepullsecretpolicies/status'],
      verbs: STATUS,
    },
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['mutatingwebhookconfigurations'],
      verbs: ['create'],
    },
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['mutatingwebhookconfigurations'],
      resourceNames: ['regcred-operator'],
      verbs: [...READ, 'update', 'patch'],
    },
  ],
} satisfies Record<string, PolicyRule[]>;

export type Feature = keyof typeof FEATURE_RULES;

export interface Profile {
  name: string;
  /** What --controllers says in the profile's Deployment. */
  controllers: readonly ControllerName[];
  features: readonly Feature[];
  /** metadata.name of the CRDs the profile installs. */
  crds: readonly string[];
}

const crdFiles = () =>
  readdirSync(join(ROOT, 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
const crdNameOfFile = (file: string) => file.replace(/^([^_]+)_(.+)\.yaml$/, '$2.$1');

export const SECRETGEN_CONTROLLERS = ['secretexport', 'secretimport', 'placeholder'] as const;

export function profiles(): Profile[] {
  return [
    {
      name: 'full',
      controllers: CONTROLLER_NAMES,
      features: Object.keys(FEATURE_RULES) as Feature[],
      crds: crdFiles().map(crdNameOfFile),
    },
    {
      name: 'secretgen',
      controllers: SECRETGEN_CONTROLLERS,
      features: ['sharing'],
      // Exactly what its controllers need: never kapp-controller's own CRDs.
      crds: requiredCrds(SECRETGEN_CONTROLLERS).map((c) => c.name),
    },
  ];
}

/** The ClusterRole rules of a profile: common ones, then its features', each rule once. */
export function profileRules(profile: Profile): PolicyRule[] {
  const seen = new Set<string>();
  const rules: PolicyRule[] = [];
  for (const rule of [...COMMON_RULES, ...profile.features.flatMap((f) => FEATURE_RULES[f])]) {
    const key = JSON.stringify(rule);
    if (seen.has(key)) continue;
    seen.add(key);
    rules.push(rule);
  }
  return rules;
}

const OUTPUT_DIR: Record<string, string> = { full: 'deploy/plain', secretgen: 'deploy/secretgen' };
export const releaseManifestPath = (profile: string) => `deploy/release/regcred-operator-${profile}.yaml`;

function header(profile: Profile, version: string): string {
  return (
    `# regcred-operator ${version}, profile ${profile.name} (--controllers=${profile.controllers.join(',')}).\n` +
    '# Generated by scripts/release.ts from crds/ and deploy/base/ — DO NOT EDIT.\n'
  );
}

const stringifyDocs = (docs: Document[]) =>
  docs
    .map((d) =>
      d.toString({ lineWidth: 0, indentSeq: false, flowCollectionPadding: false }).replace(/^---\n/, ''),
    )
    .join('---\n');

/** Whether the profile runs the Pod webhook (it has the ImagePullSecretPolicy rules and CRD). */
export const servesPodWebhook = (profile: Profile): boolean => profile.features.includes('regcred');

/** Base files only a profile with the Pod webhook installs. */
const WEBHOOK_FILES = new Set(['25-webhook-service.yaml']);

/** The base manifests with the profile's ClusterRole rules, --controllers and image tag. */
function profileDocs(profile: Profile, version: string, file: string): Document[] {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'base', file), 'utf8')) as Document[];
  for (const doc of docs) {
    const kind = doc.get('kind');
    if (kind === 'ClusterRole') {
      const rules = doc.createNode(profileRules(profile), { aliasDuplicateObjects: false });
      // The style kubectl users read: one rule a block, its lists inline.
      for (const rule of rules.items)
        if (isMap(rule)) for (const pair of rule.items) if (isSeq(pair.value)) pair.value.flow = true;
      doc.set('rules', rules);
    }
    if (kind === 'Deployment') {
      const container = ['spec', 'template', 'spec', 'containers', 0];
      doc.setIn([...container, 'image'], `regcred-operator:${version}`);
      const args = doc.getIn([...container, 'args']);
      if (!isSeq(args)) throw new Error(`deploy/base/${file}: the Deployment's container has no args`);
      args.items.unshift(doc.createNode(`--controllers=${profile.controllers.join(',')}`));
      if (!servesPodWebhook(profile)) {
        // No ImagePullSecretPolicy CRD nor rules for it: the webhook stays off.
        const at = args.items.findIndex(
          (item) => isScalar(item) && String(item.value).startsWith('--webhook-port='),
        );
        if (at >= 0) args.items[at] = doc.createNode('--webhook-port=0');
        const ports = doc.getIn([...container, 'ports']);
        if (isSeq(ports))
          ports.items = ports.items.filter((port) => !(isMap(port) && port.get('name') === 'webhook'));
      }
    }
  }
  return docs;
}

/** Every file `npm run release` writes, by path from the repository root. */
export function releaseFiles(): Map<string, string> {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
    .version;
  const files = new Map<string, string>();
  const crdText = new Map(
    crdFiles().map((f) => [crdNameOfFile(f), readFileSync(join(ROOT, 'crds', f), 'utf8')]),
  );
  for (const profile of profiles()) {
    const head = header(profile, version);
    const parts: Array<[string, string]> = [];
    for (const file of readdirSync(join(ROOT, 'deploy', 'base')).sort()) {
      if (WEBHOOK_FILES.has(file) && !servesPodWebhook(profile)) continue;
      if (!file.endsWith('.yaml')) continue;
      parts.push([file, stringifyDocs(profileDocs(profile, version, file))]);
      if (file.startsWith('00-')) {
        const crds = profile.crds.map((name) => {
          const text = crdText.get(name);
          if (!text) throw new Error(`profile ${profile.name}: CRD ${name} is not in crds/`);
          return text.replace(/^---\n/, '');
        });
        parts.push(['05-crds.yaml', crds.join('---\n')]);
      }
    }
    for (const [file, text] of parts) files.set(join(OUTPUT_DIR[profile.name]!, file), head + text);
    files.set(releaseManifestPath(profile.name), head + parts.map(([, text]) => text).join('---\n'));
  }
  return files;
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)],
  );
}

function main(): void {
  const check = process.argv.includes('--check');
  const wanted = releaseFiles();
  const problems: string[] = [];
  for (const [file, content] of wanted) {
    const path = join(ROOT, file);
    const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    if (current === content) continue;
    problems.push(`${current === undefined ? 'missing' : 'stale'}: ${file}`);
    if (!check) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
    }
  }
  const outputDirs = [...Object.values(OUTPUT_DIR), 'deploy/release'];
  for (const path of outputDirs.flatMap((d) => listFiles(join(ROOT, d)))) {
    const file = relative(ROOT, path);
    if (wanted.has(file)) continue;
    problems.push(`extra: ${file}`);
    if (!check) rmSync(path);
  }
  if (check && problems.length > 0) {
    console.error(`Install profiles are out of date (run npm run release):\n${problems.join('\n')}`);
    process.exit(1);
  }
  if (!check) console.error(problems.length ? problems.join('\n') : 'release manifests up to date');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
