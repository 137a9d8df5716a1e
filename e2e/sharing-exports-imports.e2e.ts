// SecretExport status and SecretImport copies end to end: a real control
// plane and the operator, in-process, with every controller and a 10-minute
// resync. The behaviour asserted is the one the README describes.
//
// Tests run one after another, each in its own namespaces; exports reaching
// every namespace are deleted when their test ends.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import type { SecretExport, SecretImport } from '../generated/index.js';
import type { ResourceType } from '../src/runtime/kube-client.js';
import { startOperator } from '../src/main.js';
import { createLogger } from '../src/runtime/logger.js';
import {
  auths,
  b64,
  createNamespace,
  deleteAll,
  describeAudit,
  DOCKER_CONFIG_JSON,
  dockerConfigSecret,
  eventsAbout,
  eventually,
  EXCLUDED,
  expectPlaceholder,
  friendlyFailure,
  IMAGE_PULL_SECRET,
  Namespaces,
  placeholderSecret,
  secretExport,
  SecretExports,
  secretImport,
  SecretImports,
  Secrets,
  sleep,
  startSharingEnv,
  succeededStatus,
  userPass,
  waitForOperatorIdle,
  type SharingEnv,
} from './fixtures/sharing/env.js';

let env: SharingEnv;

before(async () => {
  env = await startSharingEnv();
});

after(async () => {
  await env?.stop();
});

const NO_MATCH = 'No matching export/secret';
const AT_ONCE_MS = 5000;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;

function cleanupAfter(t: TestContext): Array<[ResourceType, string, string]> {
  const objects: Array<[ResourceType, string, string]> = [];
  t.after(() => deleteAll(env.client, objects));
  return objects;
}

function opaqueSecret(
  namespace: string,
  name: string,
  data: Record<string, string>,
  meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
  type = 'Opaque',
): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { namespace, name, ...meta },
    type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

const encoded = (data: Record<string, string>) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]));

async function getExport(namespace: string, name: string): Promise<SecretExport> {
  const exp = await env.client.get<SecretExport>(SecretExports, namespace, name);
  assert.ok(exp, `SecretExport ${namespace}/${name} does not exist`);
  return exp;
}

async function getImport(namespace: string, name: string): Promise<SecretImport> {
  const imp = await env.client.get<SecretImport>(SecretImports, namespace, name);
  assert.ok(imp, `SecretImport ${namespace}/${name} does not exist`);
  return imp;
}

type Outcome = { type: 'ReconcileSucceeded' } | { type: 'ReconcileFailed'; message: string };

/**
 * Asserts the upstream status shape: observedGeneration = generation, exactly
 * one condition of the outcome's type with status "True", the error as its
 * message, a lastTransitionTime, and the friendlyDescription.
 */
function assertStatus(
  obj: SecretExport | SecretImport,
  outcome: Outcome,
): { lastTransitionTime: string; status: NonNullable<SecretExport['status']> } {
  const status = obj.status;
  assert.ok(status, `${obj.metadata?.namespace}/${obj.metadata?.name} has no status`);
  assert.equal(status.observedGeneration, obj.metadata?.generation, 'observedGeneration');
  assert.equal(status.conditions?.length, 1, `one condition: ${JSON.stringify(status.conditions)}`);
  const c = status.conditions[0]!;
  assert.equal(c.type, outcome.type);
  assert.equal(c.status, 'True');
  assert.equal(c.message, outcome.type === 'ReconcileFailed' ? outcome.message : undefined);
  assert.match(c.lastTransitionTime ?? '', RFC3339);
  assert.equal(
    status.friendlyDescription,
    outcome.type === 'ReconcileFailed' ? friendlyFailure(outcome.message) : 'Reconcile succeeded',
  );
  return { lastTransitionTime: c.lastTransitionTime!, status };
}

async function expectExportStatus(namespace: string, name: string, outcome: Outcome, timeoutMs?: number) {
  let result: ReturnType<typeof assertStatus> | undefined;
  let exp: SecretExport | undefined;
  await eventually(
    `status of SecretExport ${namespace}/${name}`,
    async () => {
      exp = await getExport(namespace, name);
      result = assertStatus(exp, outcome);
    },
    { timeoutMs },
  );
  return { ...result!, object: exp! };
}

async function expectImportStatus(namespace: string, name: string, outcome: Outcome, timeoutMs?: number) {
  let result: ReturnType<typeof assertStatus> | undefined;
  let imp: SecretImport | undefined;
  await eventually(
    `status of SecretImport ${namespace}/${name}`,
    async () => {
      imp = await getImport(namespace, name);
      result = assertStatus(imp, outcome);
    },
    { timeoutMs },
  );
  return { ...result!, object: imp! };
}

/** Waits until the copy exists with exactly this type, data, labels and annotations, owned by the import. */
async function expectCopy(
  namespace: string,
  name: string,
  want: {
    type: string;
    data: Record<string, string>;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  },
  timeoutMs?: number,
): Promise<V1Secret> {
  let copy: V1Secret | undefined;
  await eventually(
    `copy ${namespace}/${name}`,
    async () => {
      const imp = await getImport(namespace, name);
      copy = await env.client.get<V1Secret>(Secrets, namespace, name);
      assert.ok(copy, `no Secret ${namespace}/${name}`);
      assert.equal(copy.type, want.type);
      assert.deepEqual(copy.data ?? {}, want.data);
      assert.deepEqual(copy.metadata?.labels ?? {}, want.labels ?? {});
      assert.deepEqual(copy.metadata?.annotations ?? {}, want.annotations ?? {});
      assert.deepEqual(copy.metadata?.ownerReferences, [
        {
          apiVersion: 'secretgen.carvel.dev/v1alpha1',
          kind: 'SecretImport',
          name,
          uid: imp.metadata!.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    },
    { timeoutMs },
  );
  return copy!;
}

async function expectNoCopy(namespace: string, name: string, timeoutMs?: number): Promise<void> {
  await eventually(
    `Secret ${namespace}/${name} to be gone`,
    async () => {
      const s = await env.client.get<V1Secret>(Secrets, namespace, name);
      assert.equal(s, undefined, `Secret ${namespace}/${name} still exists`);
    },
    { timeoutMs },
  );
}

/** Rows of `kubectl get` table output, cells cut at the header's column offsets. */
function parseTable(out: string): Array<Record<string, string>> {
  const [head, ...lines] = out.split('\n').filter((l) => l.trim() !== '');
  assert.ok(head, `no table in ${JSON.stringify(out)}`);
  const columns = [...head.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ name: m[0], start: m.index }));
  return lines.map((line) => {
    const row: Record<string, string> = {};
    columns.forEach((c, i) => {
      const end = i + 1 < columns.length ? columns[i + 1]!.start : undefined;
      row[c.name] = line.slice(c.start, end).trim();
    });
    return row;
  });
}

async function kubectlRow(namespace: string, name: string): Promise<Record<string, string>> {
  const rows = parseTable(await env.cluster.kubectl(['get', 'secretexports', '-n', namespace]));
  const row = rows.find((r) => r.NAME === name);
  assert.ok(row, `no row ${name} in ${JSON.stringify(rows)}`);
  assert.deepEqual(Object.keys(row), [
    'NAME',
    'DESCRIPTION',
    'TO NAMESPACE',
    'TO NAMESPACES',
    'REACHED',
    'AGE',
  ]);
  return row;
}

describe('SecretExport status', () => {
  test('the status reports the source Secret, the generation and a single condition, and follows every update', async () => {
    await createNamespace(env.client, 'st-src');
    await createNamespace(env.client, 'st-a');
    await createNamespace(env.client, 'st-b');
    await env.client.create(
      SecretExports,
      secretExport('st-src', 'creds', { toNamespaces: ['st-a', 'st-b'] }),
    );

    const missing = await expectExportStatus('st-src', 'creds', {
      type: 'ReconcileFailed',
      message: 'Missing exported secret',
    });
    assert.equal(missing.status.friendlyDescription, 'Reconcile failed: Missing exported secret');
    assert.equal(missing.status.observedGeneration, 1);
    assert.equal(missing.status.observedSecretResourceVersion, undefined);
    assert.equal(missing.status.reachedNamespaceCount, 2);

    // Any type may be exported; an Opaque Secret is not parsed as registry credentials.
    const source = await env.client.create(Secrets, opaqueSecret('st-src', 'creds', { token: 'one' }));
    const ok = await expectExportStatus('st-src', 'creds', { type: 'ReconcileSucceeded' });
    assert.equal(ok.status.friendlyDescription, 'Reconcile succeeded');
    assert.equal(ok.status.observedSecretResourceVersion, source.metadata!.resourceVersion);
    assert.equal(ok.status.reachedNamespaceCount, 2);
    assert.ok(ok.lastTransitionTime >= missing.lastTransitionTime, 'lastTransitionTime went back');

    // The observed resourceVersion follows the source's updates.
    const updated = await env.client.mergePatch<V1Secret>(Secrets, 'st-src', 'creds', {
      data: { token: b64('two') },
    });
    await eventually('observedSecretResourceVersion to follow the source', async () => {
      const exp = await getExport('st-src', 'creds');
      assert.equal(exp.status?.observedSecretResourceVersion, updated.metadata!.resourceVersion);
      // Same outcome: the transition time stays.
      assert.equal(
        assertStatus(exp, { type: 'ReconcileSucceeded' }).lastTransitionTime,
        ok.lastTransitionTime,
      );
    });

    // A spec change moves observedGeneration; st-c does not exist yet, so two namespaces are reached.
    await env.client.mergePatch(SecretExports, 'st-src', 'creds', {
      spec: { toNamespaces: ['st-a', 'st-b', 'st-c'] },
    });
    await eventually('observedGeneration 2', async () => {
      const exp = await getExport('st-src', 'creds');
      assert.equal(exp.metadata?.generation, 2);
      assertStatus(exp, { type: 'ReconcileSucceeded' });
      assert.equal(exp.status?.reachedNamespaceCount, 2);
    });

    // The source goes away: Missing exported secret again.
    await env.client.delete(Secrets, 'st-src', 'creds');
    const gone = await expectExportStatus('st-src', 'creds', {
      type: 'ReconcileFailed',
      message: 'Missing exported secret',
    });
    assert.equal(gone.status.observedGeneration, 2);
    assert.equal(gone.status.friendlyDescription, 'Reconcile failed: Missing exported secret');
  });

  test('the SecretExport condition carries a reason (Beyond)', async () => {
    await createNamespace(env.client, 'reason-src');
    await env.client.create(
      SecretExports,
      secretExport('reason-src', 'creds', { toNamespaces: ['reason-src'] }),
    );
    const missing = await expectExportStatus('reason-src', 'creds', {
      type: 'ReconcileFailed',
      message: 'Missing exported secret',
    });
    const failedReason = missing.status.conditions?.[0]?.reason;
    assert.equal(typeof failedReason, 'string', `no reason in ${JSON.stringify(missing.status.conditions)}`);
    assert.notEqual(failedReason, '');
    await env.client.create(Secrets, opaqueSecret('reason-src', 'creds', { token: 't' }));
    const ok = await expectExportStatus('reason-src', 'creds', { type: 'ReconcileSucceeded' });
    const okReason = ok.status.conditions?.[0]?.reason;
    assert.equal(typeof okReason, 'string', `no reason in ${JSON.stringify(ok.status.conditions)}`);
    assert.notEqual(okReason, '');
  });

  test('kubectl get secretexports shows how many namespaces an export reaches in the REACHED column, following namespaces added and removed', async (t) => {
    const cleanup = cleanupAfter(t);
    await createNamespace(env.client, 'cnt-src');
    await createNamespace(env.client, 'cnt-a');
    await env.client.create(Secrets, opaqueSecret('cnt-src', 'creds', { token: 't' }));
    await env.client.create(
      SecretExports,
      secretExport('cnt-src', 'creds', { toNamespaces: ['cnt-a', 'cnt-b', 'cnt-c'] }),
    );
    const expectCount = async (name: string, count: number, timeoutMs?: number) => {
      await eventually(
        `${name} to reach ${count} namespaces`,
        async () => {
          const exp = await getExport('cnt-src', name);
          assert.equal(exp.status?.reachedNamespaceCount, count);
          const row = await kubectlRow('cnt-src', name);
          assert.equal(row.REACHED, String(count));
          assert.equal(row.DESCRIPTION, 'Reconcile succeeded');
        },
        { timeoutMs },
      );
    };
    await expectCount('creds', 1);
    await createNamespace(env.client, 'cnt-b');
    await expectCount('creds', 2, AT_ONCE_MS);
    await createNamespace(env.client, 'cnt-c');
    await expectCount('creds', 3, AT_ONCE_MS);
    // A deleted namespace stops counting once the namespace controller has removed it.
    await env.client.delete(Namespaces, undefined, 'cnt-a');
    await expectCount('creds', 2, 60_000);

    // "*" counts every namespace that is not excluded from wildcard matching.
    await env.client.create(Secrets, opaqueSecret('cnt-src', 'wild', { token: 't' }));
    await env.client.create(SecretExports, secretExport('cnt-src', 'wild', { toNamespaces: ['*'] }));
    cleanup.push([SecretExports, 'cnt-src', 'wild']);
    const reachableNow = async () =>
      (await env.client.list(Namespaces)).items.filter(
        (ns) => !Object.hasOwn(ns.metadata?.annotations ?? {}, EXCLUDED),
      ).length;
    const expectWildCount = async () => {
      await eventually(
        'the wildcard export to count every non-excluded namespace',
        async () => {
          const count = await reachableNow();
          const exp = await getExport('cnt-src', 'wild');
          assert.equal(exp.status?.reachedNamespaceCount, count);
          assert.equal((await kubectlRow('cnt-src', 'wild')).REACHED, String(count));
        },
        { timeoutMs: AT_ONCE_MS },
      );
      return reachableNow();
    };
    const before = await expectWildCount();
    await createNamespace(env.client, 'cnt-excluded', { annotations: { [EXCLUDED]: '' } });
    assert.equal(await expectWildCount(), before);
    await createNamespace(env.client, 'cnt-d');
    assert.equal(await expectWildCount(), before + 1);

    // A selector export counts the namespaces matching it, following label changes.
    await env.client.create(Secrets, opaqueSecret('cnt-src', 'picky', { token: 't' }));
    await env.client.create(
      SecretExports,
      secretExport('cnt-src', 'picky', {
        dangerousToNamespacesSelector: [{ key: 'metadata.labels.cnt-pick', operator: 'Exists' }],
      }),
    );
    cleanup.push([SecretExports, 'cnt-src', 'picky']);
    await expectCount('picky', 0);
    await env.client.mergePatch(Namespaces, undefined, 'cnt-b', {
      metadata: { labels: { 'cnt-pick': 'yes' } },
    });
    await expectCount('picky', 1, AT_ONCE_MS);
    await env.client.mergePatch(Namespaces, undefined, 'cnt-d', {
      metadata: { labels: { 'cnt-pick': 'yes' } },
    });
    await expectCount('picky', 2, AT_ONCE_MS);
    await env.client.mergePatch(Namespaces, undefined, 'cnt-b', {
      metadata: { labels: { 'cnt-pick': null } },
    });
    await expectCount('picky', 1, AT_ONCE_MS);
  });
});

describe('SecretExport validation', () => {
  const invalid = (field: string, message: string, value?: string) => {
    const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return new RegExp(
      `${escape(field)}: Invalid value: ${value === undefined ? '(?:"object": )?' : escape(`${value}: `)}${escape(message)}$`,
      'm',
    );
  };
  const manifest = (name: string, spec: string) => `apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata: {name: ${name}, namespace: val}
spec: ${spec}
`;
  const NO_TARGET = 'Expected to have at least one non-empty to namespace or to namespace annotation';
  const EMPTY_NS = 'Expected to namespace to be non-empty';
  const VALUES_REQUIRED = "Values must be specified when `operator` is 'In' or 'NotIn'";
  const VALUES_FORBIDDEN = "Values may not be specified when `operator` is 'Exists' or 'DoesNotExist'";

  test('invalid SecretExport specs are rejected at admission with the CRD messages', async () => {
    await createNamespace(env.client, 'val');
    const cases: Array<[string, string, RegExp[]]> = [
      ['no-target', '{}', [invalid('spec', NO_TARGET)]],
      ['empty-list-entry', '{toNamespaces: [a, ""]}', [invalid('spec.toNamespaces[1]', EMPTY_NS, '""')]],
      [
        'empty-to-namespace',
        '{toNamespace: ""}',
        [invalid('spec.toNamespace', EMPTY_NS, '""'), invalid('spec', NO_TARGET)],
      ],
      [
        'in-without-values',
        '{dangerousToNamespacesSelector: [{key: metadata.labels.team, operator: In}]}',
        [invalid('spec.dangerousToNamespacesSelector[0]', VALUES_REQUIRED)],
      ],
      [
        'notin-empty-values',
        '{dangerousToNamespacesSelector: [{key: metadata.labels.team, operator: NotIn, values: []}]}',
        [invalid('spec.dangerousToNamespacesSelector[0]', VALUES_REQUIRED)],
      ],
      [
        'exists-with-values',
        '{dangerousToNamespacesSelector: [{key: metadata.labels.team, operator: Exists, values: [a]}]}',
        [invalid('spec.dangerousToNamespacesSelector[0]', VALUES_FORBIDDEN)],
      ],
      [
        'dne-with-values',
        '{toNamespaces: [x], dangerousToNamespacesSelector: [{key: metadata.labels.a, operator: Exists}, {key: metadata.labels.team, operator: DoesNotExist, values: [a]}]}',
        [invalid('spec.dangerousToNamespacesSelector[1]', VALUES_FORBIDDEN)],
      ],
    ];
    for (const [name, spec, expected] of cases) {
      const result = await env.cluster.kubectlResult(['apply', '-f', '-'], manifest(name, spec));
      assert.notEqual(result.code, 0, `${name}: apply succeeded: ${result.stdout}`);
      assert.match(result.stderr, /is invalid/, name);
      for (const re of expected) assert.match(result.stderr, re, name);
    }
    const left = await env.cluster.kubectl(['get', 'secretexports', '-n', 'val', '-o', 'name']);
    assert.equal(left.trim(), '', 'a rejected SecretExport was created');
  });

  test('a selector key only the operator can judge (an unparsable JSONPath) fails the export with a clear message and reaches nothing', async (t) => {
    const cleanup = cleanupAfter(t);
    await createNamespace(env.client, 'bk-src');
    await createNamespace(env.client, 'bk-team', { labels: { team: 't' } });
    await env.client.create(
      Secrets,
      dockerConfigSecret('bk-src', 'bad', { auths: { 'bk.example.com': { username: 'u', password: 'p' } } }),
    );
    // Admission accepts it: the key is a non-empty string.
    await env.cluster.apply(
      manifest('bad', '{}')
        .replace('namespace: val', 'namespace: bk-src')
        .replace(
          'spec: {}',
          `spec:
  dangerousToNamespacesSelector:
  - {key: metadata.labels.team, operator: Exists}
  - {key: "metadata.annotations[", operator: Exists}`,
        ),
    );
    cleanup.push([SecretExports, 'bk-src', 'bad']);
    await env.client.create(Secrets, placeholderSecret('bk-team', 'creds'));

    const message =
      'Validation errors:\n- Invalid dangerousToNamespacesSelector[1].key: JSONPath "metadata.annotations[": unterminated [ at character 21';
    const failed = await expectExportStatus('bk-src', 'bad', { type: 'ReconcileFailed', message });
    assert.equal(failed.status.friendlyDescription, 'Reconcile failed: Validation errors:...');
    assert.equal(failed.status.reachedNamespaceCount, 0);
    // The matching first entry does not make an invalid export reach anything.
    await expectPlaceholder(env.client, 'bk-team', 'creds', { auths: {} }, succeededStatus([]));
    // Beyond: a Warning Event on the export.
    await eventually('a ReconcileFailed event on the export', async () => {
      const events = await eventsAbout(env.client, 'bk-src', 'SecretExport', 'bad');
      assert.ok(
        events.some((e) => e.type === 'Warning' && e.reason === 'ReconcileFailed' && e.message === message),
        JSON.stringify(events.map((e) => [e.type, e.reason, e.message])),
      );
    });

    // Fixing the key makes it succeed and reach the namespace.
    await env.client.mergePatch(SecretExports, 'bk-src', 'bad', {
      spec: { dangerousToNamespacesSelector: [{ key: 'metadata.labels.team', operator: 'Exists' }] },
    });
    await expectExportStatus('bk-src', 'bad', { type: 'ReconcileSucceeded' });
    await expectPlaceholder(
      env.client,
      'bk-team',
      'creds',
      auths({ 'bk.example.com': userPass('u', 'p') }),
      succeededStatus(['bk-src/bad']),
    );
  });
});

describe('SecretImport', () => {
  test('the copy gets type and data from the source and labels and annotations from the import, and is kept in sync, reverted and recreated', async () => {
    await createNamespace(env.client, 'im-src');
    await createNamespace(env.client, 'im-dst');
    await env.client.create(
      Secrets,
      opaqueSecret(
        'im-src',
        'app-creds',
        { a: '1', b: '2' },
        { labels: { from: 'source' }, annotations: { 'source-note': 'not copied' } },
      ),
    );
    await env.client.create(SecretExports, secretExport('im-src', 'app-creds', { toNamespaces: ['im-dst'] }));
    await env.client.create(
      SecretImports,
      secretImport('im-dst', 'app-creds', 'im-src', {
        labels: { team: 'a' },
        annotations: { note: 'imported' },
      }),
    );
    const meta = { labels: { team: 'a' }, annotations: { note: 'imported' } };
    const first = await expectCopy('im-dst', 'app-creds', {
      type: 'Opaque',
      data: encoded({ a: '1', b: '2' }),
      ...meta,
    });
    const ok = await expectImportStatus('im-dst', 'app-creds', { type: 'ReconcileSucceeded' });
    assert.equal(ok.status.observedGeneration, 1);

    // Full replace: a key removed at the source disappears from the copy.
    await env.client.mergePatch(Secrets, 'im-src', 'app-creds', {
      data: { a: b64('1b'), b: null, c: b64('3') },
    });
    await expectCopy('im-dst', 'app-creds', { type: 'Opaque', data: encoded({ a: '1b', c: '3' }), ...meta });

    // Edits to the copy are reverted: data and labels.
    await env.client.mergePatch(Secrets, 'im-dst', 'app-creds', {
      metadata: { labels: { rogue: 'yes' } },
      data: { a: b64('tampered'), x: b64('extra') },
    });
    await expectCopy('im-dst', 'app-creds', { type: 'Opaque', data: encoded({ a: '1b', c: '3' }), ...meta });

    // A deleted copy is recreated.
    await env.client.delete(Secrets, 'im-dst', 'app-creds');
    const recreated = await expectCopy('im-dst', 'app-creds', {
      type: 'Opaque',
      data: encoded({ a: '1b', c: '3' }),
      ...meta,
    });
    assert.notEqual(recreated.metadata?.uid, first.metadata?.uid);

    // The import's own labels and annotations are what the copy carries.
    await env.client.mergePatch(SecretImports, 'im-dst', 'app-creds', {
      metadata: { labels: { team: 'b' }, annotations: { note: null, other: 'x' } },
    });
    await expectCopy('im-dst', 'app-creds', {
      type: 'Opaque',
      data: encoded({ a: '1b', c: '3' }),
      labels: { team: 'b' },
      annotations: { other: 'x' },
    });
  });

  test('the copy is deleted with status No matching export/secret when the export stops allowing the namespace, the source or the export is deleted, or fromNamespace has no export', async () => {
    await createNamespace(env.client, 'nm-src');
    await createNamespace(env.client, 'nm-dst');
    await createNamespace(env.client, 'nm-other');
    await env.client.create(Secrets, opaqueSecret('nm-src', 'creds', { k: 'v' }));
    await env.client.create(SecretExports, secretExport('nm-src', 'creds', { toNamespaces: ['nm-dst'] }));
    await env.client.create(SecretImports, secretImport('nm-dst', 'creds', 'nm-src'));
    const data = encoded({ k: 'v' });
    await expectCopy('nm-dst', 'creds', { type: 'Opaque', data });
    await expectImportStatus('nm-dst', 'creds', { type: 'ReconcileSucceeded' });

    const noMatch = async () => {
      await expectNoCopy('nm-dst', 'creds');
      const failed = await expectImportStatus('nm-dst', 'creds', {
        type: 'ReconcileFailed',
        message: NO_MATCH,
      });
      assert.equal(failed.status.friendlyDescription, 'Reconcile failed: No matching export/secret');
    };
    const match = async () => {
      await expectCopy('nm-dst', 'creds', { type: 'Opaque', data });
      await expectImportStatus('nm-dst', 'creds', { type: 'ReconcileSucceeded' });
    };

    await env.client.mergePatch(SecretExports, 'nm-src', 'creds', { spec: { toNamespaces: ['nm-other'] } });
    await noMatch();
    await env.client.mergePatch(SecretExports, 'nm-src', 'creds', {
      spec: { toNamespaces: ['nm-other', 'nm-dst'] },
    });
    await match();
    await env.client.delete(Secrets, 'nm-src', 'creds');
    await noMatch();
    await env.client.create(Secrets, opaqueSecret('nm-src', 'creds', { k: 'v' }));
    await match();
    await env.client.delete(SecretExports, 'nm-src', 'creds');
    await noMatch();

    // fromNamespace naming a namespace whose Secret is not exported: nothing is ever created.
    await env.client.create(Secrets, opaqueSecret('nm-other', 'unexported', { k: 'v' }));
    await env.client.create(SecretImports, secretImport('nm-dst', 'unexported', 'nm-other'));
    await expectImportStatus('nm-dst', 'unexported', { type: 'ReconcileFailed', message: NO_MATCH });
    assert.equal(await env.client.get(Secrets, 'nm-dst', 'unexported'), undefined);
    // Exporting it later (import first, export after) creates the copy at once.
    await env.client.create(
      SecretExports,
      secretExport('nm-other', 'unexported', { toNamespaces: ['nm-dst'] }),
    );
    await expectCopy('nm-dst', 'unexported', { type: 'Opaque', data }, AT_ONCE_MS);
    await expectImportStatus('nm-dst', 'unexported', { type: 'ReconcileSucceeded' }, AT_ONCE_MS);
  });

  test('a pre-existing Secret the SecretImport does not own is never modified or deleted, and the status says so', async () => {
    await createNamespace(env.client, 'own-src');
    await createNamespace(env.client, 'own-dst');
    const started = env.audit.offset();
    const theirs = await env.client.create(
      Secrets,
      opaqueSecret('own-dst', 'shared', { mine: 'x' }, { labels: { owner: 'someone-else' } }),
    );
    await env.client.create(Secrets, opaqueSecret('own-src', 'shared', { theirs: 'y' }));
    await env.client.create(SecretExports, secretExport('own-src', 'shared', { toNamespaces: ['own-dst'] }));
    await env.client.create(SecretImports, secretImport('own-dst', 'shared', 'own-src'));

    const notOwned =
      'Secret own-dst/shared already exists and is not controlled by this SecretImport; it is left untouched';
    await expectImportStatus('own-dst', 'shared', { type: 'ReconcileFailed', message: notOwned });
    const untouched = async (what: string) => {
      const s = await env.client.get<V1Secret>(Secrets, 'own-dst', 'shared');
      assert.ok(s, `${what}: the Secret was deleted`);
      assert.equal(
        s.metadata?.resourceVersion,
        theirs.metadata?.resourceVersion,
        `${what}: the Secret was modified`,
      );
      assert.deepEqual(s.data, encoded({ mine: 'x' }));
    };
    await untouched('after the import was created');

    // A source change, then the export no longer allowing the namespace (upstream would delete it).
    await env.client.mergePatch(Secrets, 'own-src', 'shared', { data: { theirs: b64('z') } });
    await env.client.mergePatch(SecretExports, 'own-src', 'shared', { spec: { toNamespaces: ['own-src'] } });
    await expectImportStatus('own-dst', 'shared', { type: 'ReconcileFailed', message: NO_MATCH });
    await untouched('after the export stopped allowing the namespace');
    await env.client.mergePatch(SecretExports, 'own-src', 'shared', { spec: { toNamespaces: ['own-dst'] } });
    await expectImportStatus('own-dst', 'shared', { type: 'ReconcileFailed', message: notOwned });
    await untouched('after the export allowed the namespace again');

    await env.client.delete(SecretImports, 'own-dst', 'shared');
    await eventually('the import to be gone', async () => {
      assert.equal(await env.client.get(SecretImports, 'own-dst', 'shared'), undefined);
    });
    await untouched('after the import was deleted');
    const writes = env
      .operatorWritesSince(started)
      .filter((e) => e.objectRef?.resource === 'secrets' && e.objectRef.namespace === 'own-dst');
    assert.deepEqual(writes.map(describeAudit), [], 'the operator wrote to Secrets in own-dst');
  });

  test('wildcard exclusion applies to imports, and an explicit name still reaches an excluded namespace', async (t) => {
    const cleanup = cleanupAfter(t);
    await createNamespace(env.client, 'wx-src');
    await createNamespace(env.client, 'wx-dst', { annotations: { [EXCLUDED]: '' } });
    await env.client.create(Secrets, opaqueSecret('wx-src', 'creds', { k: 'v' }));
    await env.client.create(SecretExports, secretExport('wx-src', 'creds', { toNamespaces: ['*'] }));
    cleanup.push([SecretExports, 'wx-src', 'creds']);
    await env.client.create(SecretImports, secretImport('wx-dst', 'creds', 'wx-src'));
    const data = encoded({ k: 'v' });

    await expectImportStatus('wx-dst', 'creds', { type: 'ReconcileFailed', message: NO_MATCH });
    assert.equal(await env.client.get(Secrets, 'wx-dst', 'creds'), undefined);

    await env.client.mergePatch(Namespaces, undefined, 'wx-dst', {
      metadata: { annotations: { [EXCLUDED]: null } },
    });
    await expectCopy('wx-dst', 'creds', { type: 'Opaque', data }, AT_ONCE_MS);
    await expectImportStatus('wx-dst', 'creds', { type: 'ReconcileSucceeded' }, AT_ONCE_MS);

    await env.client.mergePatch(Namespaces, undefined, 'wx-dst', {
      metadata: { annotations: { [EXCLUDED]: 'true' } },
    });
    await expectNoCopy('wx-dst', 'creds', AT_ONCE_MS);
    await expectImportStatus('wx-dst', 'creds', { type: 'ReconcileFailed', message: NO_MATCH }, AT_ONCE_MS);

    await env.client.mergePatch(SecretExports, 'wx-src', 'creds', {
      spec: { toNamespaces: ['*', 'wx-dst'] },
    });
    await expectCopy('wx-dst', 'creds', { type: 'Opaque', data });
    await expectImportStatus('wx-dst', 'creds', { type: 'ReconcileSucceeded' });
  });

  test('a source recreated with another type is copied with the new type', async () => {
    await createNamespace(env.client, 'tc-src');
    await createNamespace(env.client, 'tc-dst');
    await env.client.create(Secrets, opaqueSecret('tc-src', 'creds', { token: 't' }));
    await env.client.create(SecretExports, secretExport('tc-src', 'creds', { toNamespaces: ['tc-dst'] }));
    await env.client.create(SecretImports, secretImport('tc-dst', 'creds', 'tc-src'));
    await expectCopy('tc-dst', 'creds', { type: 'Opaque', data: encoded({ token: 't' }) });

    // Type is immutable on a Secret: the source is deleted and created again with another type.
    await env.client.delete(Secrets, 'tc-src', 'creds');
    await env.client.create(
      Secrets,
      opaqueSecret('tc-src', 'creds', { username: 'u', password: 'p' }, {}, 'kubernetes.io/basic-auth'),
    );
    await expectCopy('tc-dst', 'creds', {
      type: 'kubernetes.io/basic-auth',
      data: encoded({ username: 'u', password: 'p' }),
    });
    await expectImportStatus('tc-dst', 'creds', { type: 'ReconcileSucceeded' });

    const docker = dockerConfigSecret('tc-src', 'creds', {
      auths: { 'tc.example.com': { auth: b64('u:p') } },
    });
    await env.client.delete(Secrets, 'tc-src', 'creds');
    await env.client.create(Secrets, docker);
    await expectCopy('tc-dst', 'creds', { type: 'kubernetes.io/dockerconfigjson', data: docker.data! });
    await expectImportStatus('tc-dst', 'creds', { type: 'ReconcileSucceeded' });
  });

  test('changing fromNamespace switches the copy to the other namespace, and the copy is still kept in sync', async () => {
    for (const ns of ['fn-x', 'fn-y', 'fn-dst']) await createNamespace(env.client, ns);
    await env.client.create(Secrets, opaqueSecret('fn-x', 'creds', { from: 'x' }));
    await env.client.create(Secrets, opaqueSecret('fn-y', 'creds', { from: 'y' }));
    await env.client.create(SecretExports, secretExport('fn-x', 'creds', { toNamespaces: ['fn-dst'] }));
    await env.client.create(SecretExports, secretExport('fn-y', 'creds', { toNamespaces: ['fn-dst'] }));
    await env.client.create(SecretImports, secretImport('fn-dst', 'creds', 'fn-x'));
    await expectCopy('fn-dst', 'creds', { type: 'Opaque', data: encoded({ from: 'x' }) });

    await env.client.mergePatch(SecretImports, 'fn-dst', 'creds', { spec: { fromNamespace: 'fn-y' } });
    await expectCopy('fn-dst', 'creds', { type: 'Opaque', data: encoded({ from: 'y' }) });
    const switched = await expectImportStatus('fn-dst', 'creds', { type: 'ReconcileSucceeded' });
    assert.equal(switched.status.observedGeneration, 2);

    // The copy is still watched: an edit is reverted, a change at the new source followed.
    await env.client.mergePatch(Secrets, 'fn-dst', 'creds', { data: { from: b64('tampered') } });
    await expectCopy('fn-dst', 'creds', { type: 'Opaque', data: encoded({ from: 'y' }) }, AT_ONCE_MS);
    await env.client.mergePatch(Secrets, 'fn-y', 'creds', { data: { from: b64('y2') } });
    await expectCopy('fn-dst', 'creds', { type: 'Opaque', data: encoded({ from: 'y2' }) }, AT_ONCE_MS);
  });
  test('with --controllers=secretimport alone, changing fromNamespace to another valid source keeps the copy (never deleted) and reports no failure', async (t) => {
    // Alone, this controller is the only one following the new source Secret: its reconcile must
    // not start before its own handler of the same SecretImport event has started following it.
    await env.operator.stop();
    env.operator = await startOperator(
      { ...env.config, controllers: ['secretimport'] },
      createLogger('debug', createWriteStream(join(env.cluster.cp.dir, 'operator-secretimport-only.log'))),
    );
    t.after(() => env.restartOperator());
    for (const ns of ['so-x', 'so-y', 'so-dst']) await createNamespace(env.client, ns);
    await env.client.create(Secrets, opaqueSecret('so-x', 'creds', { from: 'x' }));
    await env.client.create(Secrets, opaqueSecret('so-y', 'creds', { from: 'y' }));
    await env.client.create(SecretExports, secretExport('so-x', 'creds', { toNamespaces: ['so-dst'] }));
    await env.client.create(SecretExports, secretExport('so-y', 'creds', { toNamespaces: ['so-dst'] }));
    await env.client.create(SecretImports, secretImport('so-dst', 'creds', 'so-x'));
    const first = await expectCopy('so-dst', 'creds', { type: 'Opaque', data: encoded({ from: 'x' }) });
    await expectImportStatus('so-dst', 'creds', { type: 'ReconcileSucceeded' });
    await waitForOperatorIdle(env, 1000, 10_000).catch(() => undefined);
    const before = env.audit.offset();

    await env.client.mergePatch(SecretImports, 'so-dst', 'creds', { spec: { fromNamespace: 'so-y' } });
    const switched = await expectCopy('so-dst', 'creds', { type: 'Opaque', data: encoded({ from: 'y' }) });
    const status = await expectImportStatus('so-dst', 'creds', { type: 'ReconcileSucceeded' });
    assert.equal(status.object.status?.observedGeneration, 2);
    assert.equal(switched.metadata?.uid, first.metadata?.uid, 'the copy was deleted and created again');
    await waitForOperatorIdle(env, 1000, 10_000).catch(() => undefined);
    const writes = env
      .operatorWritesSince(before)
      .filter((e) => e.objectRef?.namespace === 'so-dst' && e.objectRef.resource !== 'events')
      .map(describeAudit);
    assert.deepEqual(
      writes.filter((w) => !w.startsWith('patch secretimports/status') && !w.startsWith('update secrets ')),
      [],
      'only the copy update and the import status were expected',
    );
    const failures = (await eventsAbout(env.client, 'so-dst', 'SecretImport', 'creds')).filter(
      (e) => e.reason === 'ReconcileFailed',
    );
    assert.deepEqual(
      failures.map((e) => e.message),
      [],
      'a false ReconcileFailed was reported while switching sources',
    );
  });
  test('a SecretImport carrying the placeholder annotation owns its copy: it settles with the source data and 0 writes, and a Warning event says the annotation is ignored', async (t) => {
    const cleanup = cleanupAfter(t);
    for (const ns of ['wf-src', 'wf-other', 'wf-dst']) await createNamespace(env.client, ns);
    const source = dockerConfigSecret('wf-src', 'creds', auths({ 'src.example.com': userPass('s', 'p') }));
    await env.client.create(Secrets, source);
    await env.client.create(SecretExports, secretExport('wf-src', 'creds', { toNamespaces: ['wf-dst'] }));
    // A second export reaching wf-dst, so filling the copy as a placeholder would change its data.
    await env.client.create(
      Secrets,
      dockerConfigSecret('wf-other', 'other', auths({ 'other.example.com': userPass('o', 'q') })),
    );
    await env.client.create(SecretExports, secretExport('wf-other', 'other', { toNamespaces: ['wf-dst'] }));
    cleanup.push([SecretExports, 'wf-src', 'creds'], [SecretExports, 'wf-other', 'other']);
    await env.client.create(
      SecretImports,
      secretImport('wf-dst', 'creds', 'wf-src', { annotations: { [IMAGE_PULL_SECRET]: '' } }),
    );

    await expectImportStatus('wf-dst', 'creds', { type: 'ReconcileSucceeded' });
    const ignored =
      "Secret wf-dst/creds is this SecretImport's copy of wf-src/creds; its secretgen.carvel.dev/image-pull-secret " +
      "annotation is ignored and the copy holds the source's data. To merge exported credentials, annotate a " +
      'Secret of another name instead';
    await eventually('the PlaceholderAnnotationIgnored event', async () => {
      const events = await eventsAbout(env.client, 'wf-dst', 'SecretImport', 'creds');
      assert.deepEqual(
        events.filter((e) => e.reason === 'PlaceholderAnnotationIgnored').map((e) => [e.type, e.message]),
        [['Warning', ignored]],
      );
    });
    await waitForOperatorIdle(env, 1000, 10_000).catch(() => undefined);
    const settled = env.audit.offset();
    await sleep(3000);
    const writes = env
      .operatorWritesSince(settled)
      .filter((e) => e.objectRef?.namespace === 'wf-dst' && e.objectRef.resource !== 'events');
    assert.deepEqual(
      writes.map(describeAudit),
      [],
      'the operator kept writing in wf-dst after the import settled',
    );
    // The import decided the content: the source's data and the import's annotations, no placeholder status.
    await expectCopy('wf-dst', 'creds', {
      type: DOCKER_CONFIG_JSON,
      data: source.data!,
      annotations: { [IMAGE_PULL_SECRET]: '' },
    });
  });
});
