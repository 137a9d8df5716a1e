// The install profiles written by scripts/release.ts: what each installs, the
// controllers its Deployment runs, and the RBAC those controllers get.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { CONTROLLER_NAMES, parseConfig } from '../src/config.js';
import { requiredCrds } from '../src/required-crds.js';
import { profileRules, profiles, releaseFiles, releaseManifestPath, type PolicyRule } from './release.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: PolicyRule[];
  spec?: { group?: string; template?: { spec: { containers: Array<{ args: string[]; image: string }> } } };
}

const docsOf = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
const releaseDocs = (profile: string) =>
  docsOf(readFileSync(join(ROOT, releaseManifestPath(profile)), 'utf8'));

const grants = (rules: PolicyRule[], group: string, resource: string, verb: string) =>
  rules.some(
    (r) =>
      r.apiGroups.includes(group) &&
      r.resources.includes(resource) &&
      r.verbs.includes(verb) &&
      r.resourceNames === undefined,
  );

const profile = (name: string) => profiles().find((p) => p.name === name)!;

test('the committed profile manifests are what scripts/release.ts writes (npm run release)', () => {
  for (const [file, content] of releaseFiles())
    assert.equal(readFileSync(join(ROOT, file), 'utf8'), content, `${file} is stale: run npm run release`);
});

for (const name of ['full', 'secretgen']) {
  describe(`profile ${name}`, () => {
    const docs = releaseDocs(name);
    const deployment = docs.find((d) => d.kind === 'Deployment')!;
    const clusterRole = docs.find((d) => d.kind === 'ClusterRole')!;
    const crds = docs.filter((d) => d.kind === 'CustomResourceDefinition').map((d) => d.metadata.name);

    test('the Deployment runs exactly the profile controllers (--controllers parses back to them)', () => {
      const args = deployment.spec!.template!.spec.containers[0]!.args;
      const config = parseConfig(args, {});
      assert.ok(!('help' in config));
      assert.deepEqual(config.controllers, [...profile(name).controllers]);
    });

    test('every CRD its controllers need is installed and readable by its ClusterRole', () => {
      for (const crd of requiredCrds(profile(name).controllers)) {
        assert.ok(crds.includes(crd.name), `${crd.name} is in the ${name} release manifest`);
        for (const verb of ['get', 'list', 'watch'])
          assert.ok(
            grants(clusterRole.rules!, crd.resource.group, crd.resource.plural, verb),
            `${verb} ${crd.name}`,
          );
      }
    });

    test('the ClusterRole is the one profileRules computes, and grants nothing on pods', () => {
      assert.deepEqual(clusterRole.rules, profileRules(profile(name)));
      assert.ok(!clusterRole.rules.some((r) => r.resources.includes('pods') || r.resources.includes('*')));
      assert.ok(!clusterRole.rules.some((r) => r.apiGroups.includes('*') || r.verbs.includes('*')));
    });

    test('objects come in the order kubectl apply needs: Namespace, then CRDs, then the rest', () => {
      const kinds = docs.map((d) => d.kind);
      assert.equal(kinds[0], 'Namespace');
      assert.ok(kinds.lastIndexOf('CustomResourceDefinition') < kinds.indexOf('ServiceAccount'));
      const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      assert.equal(deployment.spec!.template!.spec.containers[0]!.image, `regcred-operator:${version}`);
    });
  });
}

test('secretgen installs only the SecretExport and SecretImport CRDs and never a kapp-controller one', () => {
  const crds = releaseDocs('secretgen').filter((d) => d.kind === 'CustomResourceDefinition');
  assert.deepEqual(crds.map((d) => d.metadata.name).sort(), [
    'secretexports.secretgen.carvel.dev',
    'secretimports.secretgen.carvel.dev',
  ]);
});

test('secretgen RBAC: secrets, namespaces, events and secretgen.carvel.dev only', () => {
  const rules = profileRules(profile('secretgen'));
  const groups = new Set(rules.flatMap((r) => r.apiGroups));
  assert.deepEqual([...groups].sort(), ['', 'secretgen.carvel.dev']);
  const coreResources = new Set(rules.filter((r) => r.apiGroups.includes('')).flatMap((r) => r.resources));
  assert.deepEqual([...coreResources].sort(), ['events', 'namespaces', 'secrets']);
});

test('full installs every CRD of crds/ and runs every controller', () => {
  const docs = releaseDocs('full');
  const crds = docs.filter((d) => d.kind === 'CustomResourceDefinition').map((d) => d.metadata.name);
  for (const group of ['secretgen.carvel.dev', 'packaging.carvel.dev', 'kappctrl.k14s.io', 'regcred.dev'])
    assert.ok(
      crds.some((c) => c.endsWith(`.${group}`)),
      `a ${group} CRD in ${crds.join(', ')}`,
    );
  assert.deepEqual(profile('full').controllers, CONTROLLER_NAMES);
});

test('full RBAC has what the RegistryToken and ImagePullSecretPolicy controllers need', () => {
  const rules = profileRules(profile('full'));
  for (const resource of ['registrytokens', 'imagepullsecretpolicies'])
    for (const verb of ['get', 'list', 'watch', 'update', 'patch']) {
      assert.ok(grants(rules, 'regcred.dev', resource, verb), `${verb} ${resource}`);
      if (['get', 'update', 'patch'].includes(verb))
        assert.ok(grants(rules, 'regcred.dev', `${resource}/status`, verb), `${verb} ${resource}/status`);
    }
  for (const verb of ['get', 'list', 'watch', 'patch'])
    assert.ok(grants(rules, '', 'serviceaccounts', verb), `${verb} serviceaccounts`);
  assert.ok(!grants(rules, '', 'serviceaccounts', 'create'));
  // Webhook configurations: only the operator's own by name; create cannot be limited by name.
  const webhookRules = rules.filter((r) => r.resources.includes('mutatingwebhookconfigurations'));
  assert.deepEqual(webhookRules, [
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['mutatingwebhookconfigurations'],
      verbs: ['create'],
    },
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['mutatingwebhookconfigurations'],
      resourceNames: ['regcred-operator'],
      verbs: ['get', 'list', 'watch', 'update', 'patch'],
    },
  ]);
});
