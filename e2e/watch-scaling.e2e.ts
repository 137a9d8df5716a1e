// What following many Secret names costs the operator: SecretExports,
// SecretImports and Apps naming N distinct Secrets must not open a watch per
// name (a tenant could otherwise open thousands of API connections and grow
// the operator's memory by ~100 KB each). The names are still followed: copies
// are made, and a change to a named Secret reaches its users at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Secret } from '@kubernetes/client-node';
import { AppApiVersion, AppKind } from '../generated/index.js';
import { Apps } from '../src/packaging/controllers/resources.js';
import {
  auths,
  createNamespace,
  dockerConfigSecret,
  eventually,
  secretExport,
  SecretExports,
  secretImport,
  SecretImports,
  Secrets,
  startSharingEnv,
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

const N = 40;
const names = Array.from({ length: N }, (_, i) => `named-${String(i).padStart(3, '0')}`);

/** Informers the operator runs now (one row each in its metrics). */
const informerNames = async () =>
  [
    ...(await env.operator.manager.metrics()).matchAll(
      /^regcred_informer_cached_objects\{informer="([^"]+)"\}/gm,
    ),
  ].map((m) => m[1]!);
const watchRequests = () => env.operator.client.counts.WATCH ?? 0;

async function pool<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

const passwordOf = (secret: V1Secret | undefined) =>
  secret?.data?.['.dockerconfigjson']
    ? (
        JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString()) as {
          auths?: Record<string, { password?: string }>;
        }
      ).auths?.['reg.scale.test']?.password
    : undefined;

describe('watch connections per referenced Secret', () => {
  test(`exports, imports and Apps naming ${N} distinct Secrets each open no watch of their own`, async () => {
    await waitForOperatorIdle(env);
    const informersBefore = await informerNames();
    const watchesBefore = watchRequests();

    await createNamespace(env.client, 'scale-src');
    await createNamespace(env.client, 'scale-dst');
    await createNamespace(env.client, 'scale-apps');
    await pool(names, async (name) => {
      await env.client.create(
        Secrets,
        dockerConfigSecret('scale-src', name, auths({ 'reg.scale.test': userPass('u', `${name}-v1`) })),
      );
      await env.client.create(SecretExports, secretExport('scale-src', name, { toNamespace: 'scale-dst' }));
      await env.client.create(SecretImports, secretImport('scale-dst', name, 'scale-src'));
      await env.client.create(Apps, {
        apiVersion: AppApiVersion,
        kind: AppKind,
        metadata: { namespace: 'scale-apps', name },
        spec: {
          serviceAccountName: 'default',
          fetch: [{ inline: { pathsFrom: [{ secretRef: { name: `files-${name}` } }] } }],
          template: [{ ytt: {} }],
          deploy: [{ kapp: {} }],
        },
      });
    });

    // The names are followed: every import gets its copy.
    await eventually(
      `all ${N} SecretImports to have their copy`,
      async () => {
        const copies = await env.client.list<V1Secret>(Secrets, { namespace: 'scale-dst' });
        const have = new Set(
          copies.items.filter((s) => passwordOf(s)?.endsWith('-v1')).map((s) => s.metadata!.name!),
        );
        assert.deepEqual(
          names.filter((n) => !have.has(n)),
          [],
        );
      },
      { timeoutMs: 60_000 },
    );
    // ...and a change to one of them reaches its import at once (event-driven, not by resync).
    const changed = names[N - 1]!;
    const start = performance.now();
    await env.client.mergePatch(Secrets, 'scale-src', changed, {
      data: {
        '.dockerconfigjson': Buffer.from(
          JSON.stringify(auths({ 'reg.scale.test': userPass('u', `${changed}-v2`) })),
        ).toString('base64'),
      },
    });
    await eventually(
      'the changed source to reach its copy',
      async () => {
        assert.equal(
          passwordOf(await env.client.get<V1Secret>(Secrets, 'scale-dst', changed)),
          `${changed}-v2`,
        );
      },
      { timeoutMs: 5000, intervalMs: 20 },
    );
    assert.ok(performance.now() - start < 5000);

    // Before: an informer and a WATCH per Secret name, 3 × N here (the export's Secret, which is also the
    // import's source; the import's copy; the App's Secret).
    const added = (await informerNames()).filter((n) => !informersBefore.includes(n));
    assert.deepEqual(added, [], `informers started for the new objects: ${added.length}`);
    const newWatches = watchRequests() - watchesBefore;
    assert.ok(
      newWatches <= 3,
      `WATCH requests made while following ${3 * N} names: ${newWatches} (want ≤ 3)`,
    );
  });
});
