// NamedSecretWatches against a scripted API: one watch whatever the number of
// names, a GET only for referenced Secrets that changed, users told once the
// held copy is current, no change lost when a read fails.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Secret } from '@kubernetes/client-node';
import { InformerFactory } from '../../runtime/informer-factory.js';
import type { KubeClient, ListOptions, ResourceType, WatchEvent } from '../../runtime/kube-client.js';
import { silentLogger } from '../../runtime/logger.js';
import type { OperatorContext } from '../../runtime/operator.js';
import { POLICY_LABEL } from '../../pods/placeholder-ownership.js';
import { secretIndex } from '../../shared-informers.js';
import { DOCKER_CONFIG_JSON_TYPE } from '../annotations.js';
import { MAX_CONCURRENT_SECRET_READS, NamedSecretWatches } from './named-secrets.js';

type Selected = (s: V1Secret) => boolean;

/** The server's field selectors on type, the only ones the Secret index's watches use. */
function selectorOf(fieldSelector: string | undefined): Selected {
  const notType = /^type!=(.+)$/.exec(fieldSelector ?? '');
  if (notType) return (s) => (s.type ?? 'Opaque') !== notType[1];
  const isType = /^type=(.+)$/.exec(fieldSelector ?? '');
  if (isType) return (s) => (s.type ?? 'Opaque') === isType[1];
  assert.equal(fieldSelector, undefined, 'unexpected field selector');
  return () => true;
}

/** Secrets in memory, served as list, watch (by type field selector, whole or metadata only) and get. */
class ScriptedApi {
  private readonly secrets = new Map<string, V1Secret>();
  private revision = 1;
  private readonly watchers: Array<{
    selected: Selected;
    metadataOnly: boolean;
    emit: (event: WatchEvent<V1Secret>) => void;
  }> = [];
  readonly gets: string[] = [];
  watches = 0;
  inFlight = 0;
  peakInFlight = 0;
  /** When set, GETs wait for this promise: reads pile up as behind a slow API server. */
  hold: Promise<void> | undefined;
  failNextGets = 0;
  /** As KubeClient.isClosed: set once the operator stops. */
  isClosed = false;

  async list(_rt: ResourceType, opts: ListOptions) {
    const selected = selectorOf(opts.fieldSelector);
    const items = [...this.secrets.values()].filter(selected).map((s) => served(s, opts.metadataOnly));
    return { items, resourceVersion: String(this.revision) };
  }

  async watch(
    _rt: ResourceType,
    opts: ListOptions,
    onEvent: (event: WatchEvent<V1Secret>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    this.watches += 1;
    const watcher = {
      selected: selectorOf(opts.fieldSelector),
      metadataOnly: !!opts.metadataOnly,
      emit: onEvent,
    };
    this.watchers.push(watcher);
    await new Promise((resolve) => signal.addEventListener('abort', resolve));
    this.watchers.splice(this.watchers.indexOf(watcher), 1);
  }

  async get(_rt: ResourceType, namespace: string, name: string): Promise<V1Secret | undefined> {
    this.gets.push(`${namespace}/${name}`);
    this.inFlight += 1;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    await (this.hold ?? Promise.resolve());
    this.inFlight -= 1;
    if (this.failNextGets > 0) {
      this.failNextGets -= 1;
      throw new Error('connection reset');
    }
    const secret = this.secrets.get(`${namespace}/${name}`);
    return secret ? structuredClone(secret) : undefined;
  }

  /** Creates or changes a Secret (a change of type is a delete and a create, as for a real Secret). */
  put(
    namespace: string,
    name: string,
    value: string,
    type = 'Opaque',
    labels?: Record<string, string>,
  ): void {
    const key = `${namespace}/${name}`;
    const old = this.secrets.get(key);
    if (old && (old.type ?? 'Opaque') !== type) this.remove(namespace, name);
    const existed = this.secrets.has(key);
    this.revision += 1;
    const secret: V1Secret = {
      type,
      metadata: {
        namespace,
        name,
        resourceVersion: String(this.revision),
        annotations: { big: 'x'.repeat(100) },
        ...(labels ? { labels } : {}),
      },
      data: { value: Buffer.from(value).toString('base64') },
    };
    this.secrets.set(key, secret);
    this.send(secret, existed ? 'MODIFIED' : 'ADDED');
  }

  remove(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const secret = this.secrets.get(key)!;
    this.secrets.delete(key);
    this.revision += 1;
    this.send(secret, 'DELETED');
  }

  /** Delivers an event to the watches whose selector matches, as the server would. */
  private send(secret: V1Secret, type: WatchEvent<V1Secret>['type']): void {
    for (const w of this.watchers)
      if (w.selected(secret)) w.emit({ type, object: served(secret, w.metadataOnly) });
  }
}

/** A copy as the server sends it: PartialObjectMetadata has metadata only. */
const served = (s: V1Secret, metadataOnly: boolean | undefined): V1Secret =>
  metadataOnly ? { metadata: structuredClone(s.metadata) } : structuredClone(s);
const valueOf = (s: V1Secret | undefined) =>
  s?.data?.value === undefined ? undefined : Buffer.from(s.data.value, 'base64').toString();
const until = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), `timed out waiting for ${what}`);
};

async function setUp(before: (api: ScriptedApi) => void = () => {}) {
  const api = new ScriptedApi();
  before(api);
  const client = api as unknown as KubeClient;
  const informers = new InformerFactory(client, silentLogger);
  const ctx = { client, informers, logger: silentLogger } as unknown as OperatorContext;
  const watches = new NamedSecretWatches(ctx);
  const changes: string[] = [];
  watches.onChange((namespace, name) =>
    changes.push(`${namespace}/${name}:${valueOf(watches.peek(namespace, name))}`),
  );
  informers.start();
  await informers.waitForSync();
  return { api, ctx, informers, watches, changes, stop: () => informers.stop() };
}

describe('NamedSecretWatches', () => {
  test("500 referenced names share the placeholder controller's two Secret watches", async () => {
    const { api, informers, watches, stop } = await setUp();
    for (let i = 0; i < 500; i++) watches.acquire('tenant', `s-${i}`, 'user');
    assert.equal(api.watches, 2);
    assert.deepEqual(
      informers.all().map((i) => i.name),
      ['secrets:placeholders', 'secrets:wrong-type-placeholders'],
    );
    await stop();
  });

  test("one namespace's 2,000 reads do not queue ahead of another namespace's read", async () => {
    const { api, watches, stop } = await setUp((api) => {
      for (let i = 0; i < 2000; i++) api.put('greedy', `s-${i}`, 'v');
      api.put('other', 'creds', 'v');
    });
    let release!: () => void;
    api.hold = new Promise((resolve) => (release = resolve));
    for (let i = 0; i < 2000; i++) watches.acquire('greedy', `s-${i}`, 'app');
    const greedy = Array.from({ length: 2000 }, (_, i) => watches.get('greedy', `s-${i}`));
    watches.acquire('other', 'creds', 'export');
    const other = watches.get('other', 'creds');
    await until('the first reads to be sent', () => api.gets.length >= MAX_CONCURRENT_SECRET_READS);
    api.hold = undefined;
    release();
    assert.equal(valueOf(await other), 'v');
    // Sent with the first freed slots, not after the 2,000.
    const position = api.gets.indexOf('other/creds');
    assert.ok(
      position >= 0 && position <= MAX_CONCURRENT_SECRET_READS + 1,
      `sent as GET number ${position + 1}`,
    );
    assert.equal((await Promise.all(greedy)).length, 2000);
    assert.ok(api.peakInFlight <= MAX_CONCURRENT_SECRET_READS, `${api.peakInFlight} GETs in flight at once`);
    await stop();
  });

  test('the index holds slim records of every type: no data, annotations or other labels', async () => {
    const { ctx, stop } = await setUp((api) => {
      api.put('a', 'one', 'v1');
      api.put('a', 'pull', 'v1', DOCKER_CONFIG_JSON_TYPE, { [POLICY_LABEL]: 'p', team: 'x' });
    });
    const sorted = secretIndex(ctx)
      .list()
      .sort((x, y) => x.metadata.name.localeCompare(y.metadata.name));
    assert.deepEqual(sorted, [
      { metadata: { namespace: 'a', name: 'one', resourceVersion: '2' } },
      { metadata: { namespace: 'a', name: 'pull', resourceVersion: '3', labels: { [POLICY_LABEL]: 'p' } } },
    ]);
    await stop();
  });

  test('a dockerconfigjson Secret is followed through the whole-object watch, and a change of type too', async () => {
    const { api, ctx, watches, changes, stop } = await setUp((api) =>
      api.put('a', 's', 'v1', DOCKER_CONFIG_JSON_TYPE),
    );
    watches.acquire('a', 's', 'u');
    assert.equal(valueOf(await watches.get('a', 's')), 'v1');
    api.put('a', 's', 'v2', DOCKER_CONFIG_JSON_TYPE);
    await until('the change to be reported', () => changes.includes('a/s:v2'));
    // Deleted and created again as Opaque: the other watch has it now.
    api.put('a', 's', 'v3');
    await until('the new Secret to be reported', () => changes.includes('a/s:v3'));
    assert.equal(valueOf(await watches.get('a', 's')), 'v3');
    assert.equal(secretIndex(ctx).size, 1);
    api.remove('a', 's');
    await until('the delete to be reported', () => changes.at(-1) === 'a/s:undefined');
    assert.equal(secretIndex(ctx).size, 0);
    await stop();
  });

  test('get reads a referenced Secret once and serves it until the index shows a change', async () => {
    const { api, watches, changes, stop } = await setUp((api) => api.put('a', 's', 'v1'));
    assert.equal(await watches.get('a', 's'), undefined, 'not referenced: undefined');
    watches.acquire('a', 's', 'u');
    assert.equal(valueOf(await watches.get('a', 's')), 'v1');
    assert.equal(valueOf(await watches.get('a', 's')), 'v1');
    assert.deepEqual(api.gets, ['a/s'], 'one GET for two reads of the same version');
    api.put('a', 's', 'v2');
    // Users are told once the held copy is the new one (peek in the listener sees v2).
    await until('the change to be reported', () => changes.includes('a/s:v2'));
    assert.equal(valueOf(await watches.get('a', 's')), 'v2');
    assert.deepEqual(api.gets, ['a/s', 'a/s']);
    await stop();
  });

  test('changes to Secrets nobody references cost no GET and no notification', async () => {
    const { api, watches, changes, stop } = await setUp();
    watches.acquire('a', 'wanted', 'u');
    for (let i = 0; i < 50; i++) api.put('a', `other-${i}`, 'x');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(api.gets, []);
    assert.deepEqual(changes, []);
    await stop();
  });

  test('a Secret created, then deleted, is reported both times; absent Secrets are not fetched', async () => {
    const { api, watches, changes, stop } = await setUp();
    watches.acquire('a', 's', 'u');
    assert.equal(await watches.get('a', 's'), undefined);
    assert.deepEqual(api.gets, [], 'absent in the index: no GET');
    api.put('a', 's', 'v1');
    await until('the create to be reported', () => changes.includes('a/s:v1'));
    api.remove('a', 's');
    await until('the delete to be reported', () => changes.includes('a/s:undefined'));
    assert.equal(await watches.get('a', 's'), undefined);
    assert.equal(watches.peek('a', 's'), undefined);
    assert.deepEqual(api.gets, ['a/s']);
    await stop();
  });

  test('a failed re-read is retried, and the change is reported once read', async () => {
    const { api, watches, changes, stop } = await setUp((api) => api.put('a', 's', 'v1'));
    watches.acquire('a', 's', 'u');
    await watches.get('a', 's');
    api.failNextGets = 1;
    api.put('a', 's', 'v2');
    await until('the change to be reported after a retry', () => changes.includes('a/s:v2'));
    assert.deepEqual(api.gets, ['a/s', 'a/s', 'a/s']);
    await stop();
  });

  test('a read that fails because the operator stopped (its client closed) is not retried', async () => {
    const { api, watches, changes, stop } = await setUp((api) => api.put('a', 's', 'v1'));
    watches.acquire('a', 's', 'u');
    await watches.get('a', 's');
    api.isClosed = true;
    api.failNextGets = 5;
    api.put('a', 's', 'v2');
    await until('the read of the change', () => api.gets.length === 2);
    // The first retry would come after 250-500 ms.
    await new Promise((r) => setTimeout(r, 800));
    assert.deepEqual(api.gets, ['a/s', 'a/s']);
    assert.ok(!changes.includes('a/s:v2'));
    await stop();
  });

  test('a name released by its last user is dropped; other users keep it', async () => {
    const { api, watches, changes, stop } = await setUp((api) => api.put('a', 's', 'v1'));
    watches.acquire('a', 's', 'u1');
    watches.acquire('a', 's', 'u2');
    await watches.get('a', 's');
    watches.release('a', 's', 'u1');
    assert.ok(watches.isWatched('a', 's'));
    watches.release('a', 's', 'u2');
    assert.ok(!watches.isWatched('a', 's'));
    assert.equal(watches.peek('a', 's'), undefined);
    const reported = changes.length;
    api.put('a', 's', 'v2');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(changes.length, reported, 'a change after the last release is not reported');
    assert.deepEqual(api.gets, ['a/s']);
    await stop();
  });
});
