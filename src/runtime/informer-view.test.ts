// Views over one informer's watch (a second cache with its own transform and
// filter, no connection of its own) and the union of views over disjoint
// parts of a resource, against a fake API server (node:http).
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import { Informer, ViewUnion, type InformerHealth, type ViewOf } from './informer.js';
import type { KubeClient } from './kube-client.js';
import { silentLogger } from './logger.js';
import { ObjectStore, objectKey } from './object-store.js';
import { plainHttpClient, ConfigMaps } from './test-clients.js';

const cm = (name: string, resourceVersion: string, labels?: Record<string, string>): V1ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { namespace: 'ns', name, resourceVersion, ...(labels ? { labels } : {}) },
  data: { big: 'x'.repeat(50) },
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Answers lists and watches from the scripts given, in order; the last one repeats. */
async function scriptedApi(
  lists: V1ConfigMap[][],
  watches: Array<(res: ServerResponse) => void>,
): Promise<{ client: KubeClient; counts: { lists: number; watches: number } }> {
  const counts = { lists: 0, watches: 0 };
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    open.add(res);
    res.on('close', () => open.delete(res));
    if (url.searchParams.get('watch') !== 'true') {
      const items = lists[Math.min(counts.lists++, lists.length - 1)]!;
      res.end(
        JSON.stringify({
          kind: 'ConfigMapList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '10' },
          items,
        }),
      );
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    watches[Math.min(counts.watches++, watches.length - 1)]!(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = await plainHttpClient(`http://127.0.0.1:${port}`);
  cleanups.push(async () => {
    client.close();
    for (const res of open) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { client, counts };
}

const send = (res: ServerResponse, type: string, object: unknown) =>
  res.write(JSON.stringify({ type, object }) + '\n');

async function waitUntil(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

interface Stub extends KubernetesObject {
  metadata: { namespace: string; name: string; resourceVersion: string };
}
const stubOf = (o: V1ConfigMap): Stub => ({
  metadata: {
    namespace: o.metadata!.namespace!,
    name: o.metadata!.name!,
    resourceVersion: o.metadata!.resourceVersion!,
  },
});
const wanted = (o: V1ConfigMap) => o.metadata?.labels?.wanted === 'yes';

/** An informer keeping the wanted ConfigMaps, and a view of slim records of all; stopped after the test. */
function wantedWithStubView(client: KubeClient) {
  const informer = new Informer<V1ConfigMap>(client, {
    resource: ConfigMaps,
    filter: wanted,
    logger: silentLogger,
  });
  cleanups.push(() => informer.stop());
  return { informer, view: informer.view<Stub>({ transform: stubOf }) };
}

test('a view keeps what the informer filters out, in its own shape, and follows changes and deletes', async () => {
  let watch!: ServerResponse;
  const { client, counts } = await scriptedApi(
    [[cm('kept', '1', { wanted: 'yes' }), cm('other', '2')]],
    [(res) => (watch = res)],
  );
  const { informer, view } = wantedWithStubView(client);
  const seen: string[] = [];
  view.addHandlers({
    onAdd: (o) => seen.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`),
    onUpdate: (_old, o) => seen.push(`update ${o.metadata.name}@${o.metadata.resourceVersion}`),
    onDelete: (o) => seen.push(`delete ${o.metadata.name}`),
  });
  informer.start();
  await view.synced;
  assert.ok(view.hasSynced());
  assert.deepEqual(
    informer.list().map((o) => o.metadata!.name),
    ['kept'],
  );
  assert.deepEqual(view.get('ns', 'other'), {
    metadata: { namespace: 'ns', name: 'other', resourceVersion: '2' },
  });
  assert.equal(view.size, 2);
  // The informer's own objects are not the view's: the view's transform made new ones.
  assert.equal(informer.get('ns', 'kept')!.data?.big?.length, 50);

  await waitUntil('the watch', () => watch !== undefined);
  send(watch, 'MODIFIED', cm('other', '11'));
  send(watch, 'ADDED', cm('new', '12', { wanted: 'yes' }));
  send(watch, 'DELETED', cm('kept', '13', { wanted: 'yes' }));
  await waitUntil('three view events after the list', () => seen.length >= 5);
  assert.deepEqual(seen, ['add kept@1', 'add other@2', 'update other@11', 'add new@12', 'delete kept']);
  assert.deepEqual(
    informer.list().map((o) => o.metadata!.name),
    ['new'],
  );
  assert.equal(counts.watches, 1, 'one watch feeds both');
  await informer.stop();
});

test('after a 410 the relist also tells the view of the deletes it missed', async () => {
  const { client } = await scriptedApi(
    [[cm('stays', '1'), cm('goes', '2')], [cm('stays', '1')]],
    [
      (res) => send(res, 'ERROR', { kind: 'Status', code: 410, message: 'too old resource version' }),
      () => {},
    ],
  );
  const { informer, view } = wantedWithStubView(client);
  const deleted: string[] = [];
  view.addHandlers({ onDelete: (o) => deleted.push(o.metadata.name) });
  informer.start();
  await waitUntil('the relist', () => informer.stats.relistsAfterGone === 1 && informer.stats.lists === 2);
  assert.deepEqual(deleted, ['goes']);
  assert.deepEqual(
    view.list().map((o) => o.metadata.name),
    ['stays'],
  );
  await informer.stop();
});

test('a view filter drops objects as the informer filter does (an update that fails it reads as a delete)', async () => {
  let watch!: ServerResponse;
  const { client } = await scriptedApi([[cm('a', '1', { wanted: 'yes' })]], [(res) => (watch = res)]);
  const informer = new Informer<V1ConfigMap>(client, { resource: ConfigMaps, logger: silentLogger });
  cleanups.push(() => informer.stop());
  const view = informer.view<V1ConfigMap>({ transform: (o) => o, filter: wanted });
  informer.start();
  await view.synced;
  assert.equal(view.size, 1);
  await waitUntil('the watch', () => watch !== undefined);
  send(watch, 'MODIFIED', cm('a', '2'));
  await waitUntil('the view to drop it', () => view.size === 0);
  assert.equal(informer.size, 1);
  await informer.stop();
});

test('a view cannot be added to an informer that has started (it would miss what was listed)', async () => {
  const { client } = await scriptedApi([[]], [() => {}]);
  const informer = new Informer<V1ConfigMap>(client, { resource: ConfigMaps, logger: silentLogger });
  cleanups.push(() => informer.stop());
  informer.start();
  assert.throws(() => informer.view({ transform: stubOf }), /must be added before it starts/);
  await informer.stop();
});

/** A union part driven by hand: the two watches of a union deliver in any order. */
function part(name: string, health: Partial<InformerHealth> = {}) {
  const store = new ObjectStore<Stub>(() => {});
  const view: ViewOf<Stub> = {
    description: name,
    synced: Promise.resolve(),
    hasSynced: () => true,
    health: () => ({
      started: true,
      synced: true,
      lastProgressAt: 100,
      failingSince: undefined,
      lastError: undefined,
      ...health,
    }),
    addHandlers: (h) => store.addHandlers(h),
    addIndex: (n, fn) => store.addIndex(n, fn),
    hasIndex: (n) => store.hasIndex(n),
    get: (ns, n) => store.get(ns, n),
    getByKey: (key) => store.getByKey(key),
    list: () => store.list(),
    keys: () => store.keys(),
    get size() {
      return store.size;
    },
    byIndex: (n, v) => store.byIndex(n, v),
  };
  const put = (n: string, rv: string) =>
    store.upsert(`ns/${n}`, { metadata: { namespace: 'ns', name: n, resourceVersion: rv } });
  return { view, put, remove: (n: string) => store.remove(`ns/${n}`) };
}

test('a union reads across its parts; an object recreated in the other part is found whatever order the watches deliver', async () => {
  const a = part('dockerconfigjson');
  const b = part('other types');
  const union = new ViewUnion<Stub>([a.view, b.view]);
  union.addIndex('by-ns', (o) => [o.metadata.namespace]);
  const events: string[] = [];
  union.addHandlers({
    onAdd: (o) => events.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`),
    onDelete: (o) => events.push(`delete ${o.metadata.name}`),
  });
  a.put('s', '5');
  b.put('opaque', '6');
  assert.equal(union.get('ns', 's')!.metadata.resourceVersion, '5');
  assert.equal(union.get('ns', 'opaque')!.metadata.resourceVersion, '6');
  assert.equal(union.get('ns', 'missing'), undefined);
  assert.equal(union.size, 2);

  // Deleted and created again with the other type: the new part's watch is ahead of the old one's.
  b.put('s', '8');
  assert.deepEqual(
    union.byIndex('by-ns', 'ns').map(objectKey).sort(),
    ['ns/opaque', 'ns/s'],
    'listed once while both parts hold it',
  );
  a.remove('s');
  assert.equal(union.get('ns', 's')!.metadata.resourceVersion, '8', 'the late delete leaves the new object');
  assert.deepEqual(events, ['add s@5', 'add opaque@6', 'add s@8', 'delete s']);
  assert.equal(union.list().length, 2);
  await union.synced;
  assert.ok(union.hasSynced());
  assert.equal(union.description, 'dockerconfigjson + other types');
});

test("a union's health is its least healthy part's", () => {
  const healthy = part('a', { lastProgressAt: 500 });
  const failing = part('b', { lastProgressAt: 300, failingSince: 200, lastError: 'connection refused' });
  const union = new ViewUnion<Stub>([healthy.view, failing.view]);
  assert.deepEqual(union.health(), {
    started: true,
    synced: true,
    lastProgressAt: 300,
    failingSince: 200,
    lastError: 'connection refused',
  });
  assert.equal(new ViewUnion<Stub>([healthy.view, part('c').view]).health().failingSince, undefined);
});
