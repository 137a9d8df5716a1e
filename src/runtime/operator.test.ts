// ControllerOperator's queue handler: reconciles wait while a watched cache has lost its API connection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Informer, InformerHandlers, InformerHealth } from './informer.js';
import { silentLogger } from './logger.js';
import { CACHE_DISCONNECTED_HOLD_MS, ControllerOperator, type OperatorContext } from './operator.js';

class FakeInformer {
  handlers: Array<InformerHandlers<KubernetesObject>> = [];
  failingSince: number | undefined;
  readonly description = 'secrets';
  addHandlers(h: InformerHandlers<KubernetesObject>): void {
    this.handlers.push(h);
  }
  health(): InformerHealth {
    return {
      started: true,
      synced: true,
      lastProgressAt: 0,
      failingSince: this.failingSince,
      lastError: undefined,
    };
  }
  emit(name: string): void {
    const obj = { metadata: { namespace: 'ns', name } };
    for (const h of this.handlers) h.onAdd?.(obj);
  }
}

class Recorder extends ControllerOperator {
  readonly reconciled: string[] = [];
  constructor(private readonly informer: FakeInformer) {
    const ctx = {
      logger: silentLogger,
      concurrency: 1,
      resyncPeriodMs: 0,
      events: { drain: async () => undefined },
      informers: { onReconnected: () => () => undefined },
    } as unknown as OperatorContext;
    super(ctx, 'recorder');
  }
  protected async init(): Promise<void> {
    this.watch(this.informer as unknown as Informer<KubernetesObject>);
  }
  protected async reconcile(key: string): Promise<void> {
    this.reconciled.push(key);
  }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('reconciles wait while a watched cache is cut off from the API server, and run once it is back', async () => {
  const informer = new FakeInformer();
  const op = new Recorder(informer);
  await op.start();
  op.runWorkers();
  informer.emit('a');
  await tick(20);
  assert.deepEqual(op.reconciled, ['ns/a']);

  informer.failingSince = performance.now();
  informer.emit('b');
  await tick(100);
  assert.deepEqual(op.reconciled, ['ns/a'], 'no reconcile on a cache that stopped following');

  informer.failingSince = undefined;
  await tick(700);
  assert.deepEqual(op.reconciled, ['ns/a', 'ns/b']);
  await op.stop();
});

test('a cache cut off for longer than the hold bound does not stop the controller', async () => {
  const informer = new FakeInformer();
  const op = new Recorder(informer);
  await op.start();
  op.runWorkers();
  informer.failingSince = performance.now() - CACHE_DISCONNECTED_HOLD_MS - 1;
  informer.emit('c');
  await tick(20);
  assert.deepEqual(op.reconciled, ['ns/c']);
  await op.stop();
});

class StatusWriter extends ControllerOperator {
  readonly patches: unknown[] = [];
  constructor() {
    const client = {
      jsonPatch: async (_rt: unknown, _ns: unknown, _name: unknown, ops: Array<{ value: unknown }>) => {
        this.patches.push(ops[0]!.value);
        return {};
      },
    };
    const ctx = {
      logger: silentLogger,
      concurrency: 1,
      resyncPeriodMs: 0,
      client,
      events: { drain: async () => undefined },
      informers: { onReconnected: () => () => undefined },
    } as unknown as OperatorContext;
    super(ctx, 'status-writer');
  }
  protected async init(): Promise<void> {}
  protected async reconcile(): Promise<void> {}
  write(resourceVersion: string, cached: unknown, desired: unknown): Promise<boolean> {
    const obj = { metadata: { namespace: 'ns', name: 'a', resourceVersion }, status: cached };
    return this.writeStatus(
      { group: 'g', version: 'v1', plural: 'things', kind: 'Thing', namespaced: true },
      obj,
      desired,
    );
  }
}

test('writeStatus: a status already written over the same cached version is not sent again', async () => {
  const op = new StatusWriter();
  const s1 = { phase: 'one' };
  const s2 = { phase: 'two' };
  assert.equal(await op.write('5', {}, s1), true);
  // The cache still shows version 5 (our write's echo has not arrived): the same status again is no write.
  assert.equal(await op.write('5', {}, s1), false);
  assert.equal(await op.write('5', {}, s2), true, 'a different status is written');
  assert.equal(await op.write('6', s2, s2), false, 'the cache caught up: equal, no write');
  assert.equal(await op.write('7', s1, s2), true, 'someone changed it back: written again');
  assert.equal(await op.write('7', s1, s2), false);
  assert.deepEqual(op.patches, [s1, s2, s2]);
});
