// FetchLimiter on its own (slots, round-robin, reservations, deadline), then
// with the real work queue, stage runners and registry client against a
// loopback server that trickles one byte every 300 ms.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { RegistryClient } from '../registry/client.js';
import { createLogger } from '../runtime/logger.js';
import { WorkQueue } from '../runtime/work-queue.js';
import type { FetchRequest, StageOutcome } from './app-pipeline.js';
import {
  currentFetchPermit,
  FetchDeadlineError,
  FetchLimiter,
  formatBytes,
  formatGoDuration,
} from './fetch-limiter.js';
import { InlineFetchRunner, RegistryFetchRunner } from './registry-fetch.js';

const MiB = 1024 * 1024;

describe('formatGoDuration and formatBytes', () => {
  const durations: Array<[number, string]> = [
    [0, '0s'],
    [300, '300ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [90_000, '1m30s'],
    [300_000, '5m0s'],
    [5_400_000, '1h30m0s'],
    [3_600_000, '1h0m0s'],
  ];
  for (const [ms, text] of durations)
    it(`${ms} ms is ${text}`, () => assert.equal(formatGoDuration(ms), text));
  const sizes: Array<[number, string]> = [
    [100, '100 B'],
    [1536, '1.5 KiB'],
    [192 * MiB, '192 MiB'],
    [1536 * MiB, '1.5 GiB'],
  ];
  for (const [bytes, text] of sizes)
    it(`${bytes} bytes is ${text}`, () => assert.equal(formatBytes(bytes), text));
});

/** Admits `holder` inside a reconcile scope that stays open until the returned `end` is called. */
function reconcile(limiter: FetchLimiter, holder: string, namespace: string, woken: string[]) {
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  let permitted = false;
  const done = limiter.run(holder, async () => {
    permitted = limiter.admit(holder, namespace, () => woken.push(holder)) !== undefined;
    if (permitted) await ended;
  });
  return { permitted, end: async () => (end(), await done) };
}

describe('FetchLimiter slots', () => {
  it('gives one namespace at most half the slots and keeps the rest for others', async () => {
    const limiter = new FetchLimiter({ maxConcurrent: 8, timeoutMs: 60_000, diskBudgetBytes: 8 * MiB });
    const woken: string[] = [];
    const a = Array.from({ length: 32 }, (_, i) => reconcile(limiter, `a/${i}`, 'a', woken));
    assert.deepEqual(
      a.map((r) => r.permitted),
      Array.from({ length: 32 }, (_, i) => i < 4),
    );
    assert.equal(limiter.waitingCount, 28);
    const b = reconcile(limiter, 'b/0', 'b', woken);
    assert.equal(b.permitted, true, 'a fetch of namespace b starts while a has 28 waiting');
    assert.deepEqual(Object.fromEntries(limiter.inUse()), { a: 4, b: 1 });
    for (const r of [...a, b]) await r.end();
  });

  it('never lets the running fetches hold more than the disk budget together', async () => {
    const budget = 1536 * MiB;
    const limiter = new FetchLimiter({ maxConcurrent: 8, timeoutMs: 60_000, diskBudgetBytes: budget });
    const permits: Array<{ diskShareBytes: number }> = [];
    const open = [];
    for (let i = 0; i < 40; i++) {
      const holder = `ns-${i % 10}/app-${i}`;
      open.push(
        limiter.run(holder, async () => {
          const permit = limiter.admit(holder, `ns-${i % 10}`, () => undefined);
          if (permit) permits.push(permit);
          await new Promise((r) => setTimeout(r, 10));
        }),
      );
    }
    assert.equal(permits.length, 8);
    assert.equal(limiter.diskShareBytes, 192 * MiB);
    assert.ok(permits.reduce((sum, p) => sum + p.diskShareBytes, 0) <= budget);
    await Promise.all(open);
  });

  it('serves waiting namespaces round-robin as slots free up', async () => {
    const limiter = new FetchLimiter({ maxConcurrent: 2, timeoutMs: 60_000, diskBudgetBytes: 2 * MiB });
    const woken: string[] = [];
    const x = reconcile(limiter, 'x/0', 'x', woken);
    const y = reconcile(limiter, 'y/0', 'y', woken);
    assert.ok(x.permitted && y.permitted);
    const parked = [
      ['x/1', 'x'],
      ['x/2', 'x'],
      ['x/3', 'x'],
      ['y/1', 'y'],
      ['z/1', 'z'],
    ].map(([holder, ns]) => reconcile(limiter, holder!, ns!, woken));
    assert.ok(parked.every((r) => !r.permitted));
    await Promise.all(parked.map((r) => r.end()));
    // Each freed slot is reserved for the next namespace in turn (never a
    // second one for x while it runs one), and its key woken.
    const order: string[] = [];
    let running = [x, y];
    while (running.length > 0) {
      const [first, ...rest] = running;
      await first!.end();
      running = rest;
      const next = woken.shift();
      if (next === undefined) continue;
      order.push(next);
      const claimed = reconcile(limiter, next, next.split('/')[0]!, woken);
      assert.ok(claimed.permitted, `${next} claims its reserved slot`);
      running.push(claimed);
    }
    assert.deepEqual(order, ['x/1', 'y/1', 'z/1', 'x/2', 'x/3']);
    assert.equal(limiter.waitingCount, 0);
  });

  it('passes on a slot its woken key does not take, and forgets deleted keys', async () => {
    const limiter = new FetchLimiter({ maxConcurrent: 1, timeoutMs: 60_000, diskBudgetBytes: MiB });
    const woken: string[] = [];
    const first = reconcile(limiter, 'p/0', 'p', woken);
    reconcile(limiter, 'q/0', 'q', woken);
    reconcile(limiter, 'r/0', 'r', woken);
    reconcile(limiter, 's/0', 's', woken);
    limiter.forget('r/0');
    await first.end();
    assert.deepEqual(woken, ['q/0']);
    // q's reconcile runs but decides not to fetch (paused, say): its slot goes on to s.
    await limiter.run('q/0', async () => undefined);
    assert.deepEqual(woken, ['q/0', 's/0']);
  });

  it('hands a reserved slot on when its key does not come within the claim timeout', async () => {
    const limiter = new FetchLimiter({
      maxConcurrent: 1,
      timeoutMs: 60_000,
      diskBudgetBytes: MiB,
      claimTimeoutMs: 50,
    });
    const woken: string[] = [];
    const first = reconcile(limiter, 'p/0', 'p', woken);
    reconcile(limiter, 'q/0', 'q', woken);
    reconcile(limiter, 'r/0', 'r', woken);
    await first.end();
    assert.deepEqual(woken, ['q/0']);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(woken[1], 'r/0', 'the unclaimed slot went to the next namespace');
  });

  it('aborts a running fetch at its deadline with a message naming --fetch-timeout', async () => {
    const limiter = new FetchLimiter({ maxConcurrent: 1, timeoutMs: 50, diskBudgetBytes: 4 * MiB });
    await limiter.run('t/0', async () => {
      const permit = limiter.admit('t/0', 't', () => undefined);
      assert.equal(currentFetchPermit(), permit);
      assert.equal(permit?.diskShareBytes, 4 * MiB);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(permit?.signal.aborted);
      assert.ok(permit?.signal.reason instanceof FetchDeadlineError);
      assert.equal((permit?.signal.reason as Error).message, 'fetch timed out after 50ms (--fetch-timeout)');
    });
    assert.equal(currentFetchPermit(), undefined);
    assert.equal(limiter.inUse().size, 0, 'the slot is free once the reconcile ended');
  });
});

/** Answers every request with a 200 whose body comes one byte every 300 ms, for ever (404 once closing). */
function trickleServer(): http.Server & { closing: boolean } {
  const server = http.createServer((_req, res) => {
    if (server.closing) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
      'Content-Length': 1_000_000,
    });
    const timer = setInterval(() => res.write(' '), 300);
    res.on('close', () => clearInterval(timer));
  }) as http.Server & { closing: boolean };
  server.closing = false;
  return server;
}

describe('slow registries against fetch slots and the deadline', () => {
  let server: ReturnType<typeof trickleServer>;
  let host: string;
  let client: RegistryClient;
  let work: string;
  const logger = createLogger('error');

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'regcred-limiter-'));
    server = trickleServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    // No throughput rule here: only slots and the deadline are under test.
    client = new RegistryClient({
      plainHttp: [host],
      retries: 0,
      timeoutMs: 30_000,
      throughput: { minBytesPerSecond: 0 },
    });
  });
  after(async () => {
    client.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(work, { recursive: true, force: true });
  });

  const registryRunner = () =>
    new RegistryFetchRunner({
      registry: { lease: async () => ({ client, release: () => undefined }) },
      readSecret: async () => undefined,
    });
  let dirs = 0;
  const request = (namespace: string, stage: FetchRequest['stage']): FetchRequest => ({
    namespace,
    index: 0,
    stage,
    secretName: undefined,
    directory: mkdtempSync(join(work, `fetch-${dirs++}-`)),
  });

  it(
    'fails a fetch that trickles one byte every 300 ms at --fetch-timeout',
    { timeout: 10_000 },
    async () => {
      const limiter = new FetchLimiter({ maxConcurrent: 2, timeoutMs: 1_000, diskBudgetBytes: 2 * MiB });
      const started = Date.now();
      const outcome = await limiter.run('app/slow/one', async () => {
        assert.ok(limiter.admit('app/slow/one', 'slow', () => undefined));
        return registryRunner().run(request('slow', { image: { url: `${host}/slow/app:1` } }));
      });
      assert.equal(outcome.exitCode, 1);
      assert.equal(outcome.error, `${host}/slow/app:1: fetch timed out after 1s (--fetch-timeout)`);
      assert.ok(Date.now() - started < 2_500, `failed at the deadline (${Date.now() - started} ms)`);
    },
  );

  /**
   * 32 Apps in namespace a pull from the trickling registry, then one App in
   * namespace b runs an inline fetch; workers and admission as in
   * FetchingController (admit, or wait without holding a worker).
   */
  async function slowNamespaceThenOther(limiter: FetchLimiter | undefined): Promise<{
    bDoneAfterMs: number | undefined;
    queue: WorkQueue;
  }> {
    const outcomes = new Map<string, StageOutcome>();
    const requests = new Map<string, () => Promise<StageOutcome>>();
    const queue: WorkQueue = new WorkQueue({
      name: 'app',
      concurrency: 32,
      logger,
      handler: async (key) => {
        const namespace = key.split('/')[0]!;
        const fetch = async () => {
          if (limiter && !limiter.admit(key, namespace, () => queue.add(key)))
            return { requeueAfterMs: 60_000 };
          outcomes.set(key, await requests.get(key)!());
          return undefined;
        };
        return limiter ? limiter.run(key, fetch) : fetch();
      },
    });
    queue.start();
    for (let i = 0; i < 32; i++) {
      const key = `a/app-${i}`;
      requests.set(key, () =>
        registryRunner().run(request('a', { image: { url: `${host}/slow/app:${i}` } })),
      );
      queue.add(key);
    }
    await new Promise((r) => setTimeout(r, 200));
    const bRequest = request('b', { inline: { paths: { 'config.yml': 'ok: true\n' } } });
    requests.set('b/app', () => new InlineFetchRunner({ readSecret: async () => undefined }).run(bRequest));
    const started = Date.now();
    queue.add('b/app');
    while (!outcomes.has('b/app') && Date.now() - started < 1_500)
      await new Promise((r) => setTimeout(r, 20));
    const done = outcomes.get('b/app');
    if (done) {
      assert.equal(done.exitCode, 0, done.error);
      assert.equal(readFileSync(join(bRequest.directory, 'config.yml'), 'utf8'), 'ok: true\n');
    }
    return { bDoneAfterMs: done ? Date.now() - started : undefined, queue };
  }

  async function drain(queue: WorkQueue): Promise<void> {
    server.closing = true; // the slow pulls fail at once; waiting keys then fail fast too
    server.closeAllConnections();
    await queue.shutdown();
    server.closing = false;
  }

  it(
    '32 slow fetches in namespace a do not hold up a fetch in namespace b',
    { timeout: 20_000 },
    async () => {
      const limiter = new FetchLimiter({ maxConcurrent: 8, timeoutMs: 60_000, diskBudgetBytes: 8 * MiB });
      const { bDoneAfterMs, queue } = await slowNamespaceThenOther(limiter);
      assert.deepEqual(Object.fromEntries(limiter.inUse()), { a: 4 }, 'namespace a holds only its share');
      assert.equal(limiter.waitingCount, 28);
      await drain(queue);
      assert.ok(bDoneAfterMs !== undefined && bDoneAfterMs < 1_000, `b finished after ${bDoneAfterMs} ms`);
    },
  );

  it(
    'without fetch slots (the old behaviour) the same 32 fetches take every worker',
    { timeout: 20_000 },
    async () => {
      const { bDoneAfterMs, queue } = await slowNamespaceThenOther(undefined);
      await drain(queue);
      assert.equal(bDoneAfterMs, undefined, 'b waited behind namespace a');
    },
  );
});
