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
