// The informer's reconnect behaviour against a fake API server (node:http):
// backoff after a healthy watch that ends with an error, the watchdog for a
// watch that stays open but sends nothing, stop() during a paginated list,
// and handlers that throw.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { Wakeup } from './backoff.js';
import { Informer } from './informer.js';
import type { KubeClient } from './kube-client.js';
import { silentLogger, type Logger } from './logger.js';
import { plainHttpClient, ConfigMaps } from './test-clients.js';

const cm = (name: string, resourceVersion: string): V1ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { namespace: 'ns', name, resourceVersion },
});

const listBody = (items: V1ConfigMap[], resourceVersion: string, cont?: string) =>
  JSON.stringify({
    kind: 'ConfigMapList',
    apiVersion: 'v1',
    metadata: { resourceVersion, continue: cont },
    items,
  });

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

interface FakeApi {
  client: KubeClient;
  requests: URL[];
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fakeApi(handler: Handler, timeoutMs = 5000): Promise<FakeApi> {
  const requests: URL[] = [];
  const responses = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(url);
    responses.add(res);
    res.on('close', () => responses.delete(res));
    handler(req, res, url);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = await plainHttpClient(`http://127.0.0.1:${port}`, timeoutMs);
  const api = {
    client,
    requests,
    close: async () => {
      client.close();
      for (const res of responses) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  cleanups.push(api.close);
  return api;
}

const isWatch = (url: URL) => url.searchParams.get('watch') === 'true';

function streamEvents(res: ServerResponse, events: Array<{ type: string; object: unknown }>) {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  // As the API server does: the 200 goes out at once, before any event.
  res.flushHeaders();
  for (const e of events) res.write(JSON.stringify(e) + '\n');
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function recordingLogger(lines: string[]): Logger {
  const log = (level: string) => (message: string, meta?: Record<string, unknown>) =>
    lines.push(`${level} ${message} ${JSON.stringify(meta ?? {})}`);
  const logger: Logger = {
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    child: () => logger,
  };
  return logger;
}

test('a watch that delivered events and then broke reconnects at the base delay, not a grown one', async () => {
  // Every watch delivers one event and is then cut (a load balancer closing
  // connections): the reconnect gap must stay at the base delay.
  const watchTimes: number[] = [];
  let rv = 10;
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '10'));
    watchTimes.push(performance.now());
    rv += 1;
    streamEvents(res, [{ type: 'ADDED', object: cm(`o${rv}`, String(rv)) }]);
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 40, maxMs: 5000 },
    random: () => 1,
  });
  informer.start();
  await waitUntil('seven watches', () => watchTimes.length >= 7, 10_000);
  await informer.stop();
  const gaps = watchTimes.slice(1).map((t, i) => t - watchTimes[i]!);
  // Base delay 40 ms + 20 ms until the cut; a growing backoff would wait 40*2^5 = 1280 ms (jitter pinned) before the 7th.
  assert.ok(Math.max(...gaps) < 1000, `reconnect gaps ${gaps.map(Math.round).join(',')} ms`);
  assert.ok(informer.stats.watchRestartsAfterError >= 6, JSON.stringify(informer.stats));
});

test('a quiet watch that stayed open past the healthy bound and then broke also reconnects at the base delay', async () => {
  const watchTimes: number[] = [];
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '10'));
    watchTimes.push(performance.now());
    streamEvents(res, []);
    setTimeout(() => res.socket?.destroy(), 80);
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 40, maxMs: 5000 },
    random: () => 1,
    watchHealthyAfterMs: 50,
  });
  informer.start();
  await waitUntil('seven watches', () => watchTimes.length >= 7, 10_000);
  await informer.stop();
  const gaps = watchTimes.slice(1).map((t, i) => t - watchTimes[i]!);
  assert.ok(Math.max(...gaps) < 1000, `reconnect gaps ${gaps.map(Math.round).join(',')} ms`);
});

test('a watch that breaks before it delivered anything still backs off exponentially', async () => {
  const watchTimes: number[] = [];
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '10'));
    watchTimes.push(performance.now());
    res.socket?.destroy();
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 20, maxMs: 5000 },
    random: () => 1,
  });
  informer.start();
  await waitUntil('five watches', () => watchTimes.length >= 5);
  await informer.stop();
  const gaps = watchTimes.slice(1).map((t, i) => t - watchTimes[i]!);
  // 20, 40, 80, 160 ms: the last gap is several times the first.
  assert.ok(gaps[3]! > 3 * gaps[0]!, `reconnect gaps ${gaps.map(Math.round).join(',')} ms`);
});

test('a 410 relists at once even after failures grew the backoff; a second 410 in a row backs off', async () => {
  const lists: number[] = [];
  let watches = 0;
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) {
      lists.push(performance.now());
      return res.end(listBody([cm('a', String(10 + lists.length))], String(10 + lists.length)));
    }
    watches += 1;
    // 1-2: the outage (no answer); 3-4: back, with the resourceVersion compacted; then a working watch.
    if (watches <= 2) return res.socket?.destroy();
    if (watches <= 4)
      return streamEvents(res, [
        { type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old' } },
      ]);
    streamEvents(res, []);
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 400, maxMs: 5000 },
    random: () => 1,
  });
  informer.start();
  // Failures 1-2 wait 400 + 800 ms; the third watch is answered 410.
  await waitUntil('three lists', () => lists.length >= 3, 8000);
  await informer.stop();
  const relistGap = lists[1]! - lists[0]!;
  const secondGap = lists[2]! - lists[1]!;
  assert.ok(watches >= 4, `${watches} watches`);
  // The outage's two waits (400 + 800 ms), then no third wait (1600 ms) before the relist.
  assert.ok(
    relistGap >= 1100 && relistGap < 1500,
    `relisted ${Math.round(relistGap)} ms after the first list`,
  );
  assert.ok(secondGap >= 1500, `a second 410 in a row relisted after ${Math.round(secondGap)} ms`);
});

test("a watch refused with 429 waits for the server's Retry-After before it tries again", async () => {
  const watchTimes: number[] = [];
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '10'));
    watchTimes.push(performance.now());
    if (watchTimes.length === 1) {
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
      return res.end(
        JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'slow down' }),
      );
    }
    streamEvents(res, []);
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 10, maxMs: 50 },
  });
  informer.start();
  await waitUntil('a second watch', () => watchTimes.length >= 2, 5000);
  await informer.stop();
  const gap = watchTimes[1]! - watchTimes[0]!;
  assert.ok(gap >= 950, `retried after ${Math.round(gap)} ms`);
});

test('a watch that stays open but sends nothing is aborted and resumed from the last resourceVersion', async () => {
  const lines: string[] = [];
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([cm('a', '7')], '42'));
    // Accept the watch, then go silent: no event, no bookmark, no close.
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: recordingLogger(lines),
    backoff: { baseMs: 10, maxMs: 50 },
    watchIdleTimeoutMs: 300,
  });
  informer.start();
  await informer.synced;
  await waitUntil('a second watch', () => api.requests.filter(isWatch).length >= 2, 3000);
  await informer.stop();
  const lists = api.requests.filter((u) => !isWatch(u));
  const watches = api.requests.filter(isWatch);
  assert.equal(lists.length, 1, 'a stalled watch must not relist');
  assert.deepEqual(
    watches.map((u) => u.searchParams.get('resourceVersion')),
    watches.map(() => '42'),
  );
  assert.equal(watches[0]!.searchParams.get('allowWatchBookmarks'), 'true');
  assert.ok(informer.stats.watchdogRestarts >= 1, JSON.stringify(informer.stats));
  assert.ok(
    lines.some((l) =>
      l.startsWith(
        'warn watch received nothing (no event, no bookmark) for 0.3s; restarting it from resourceVersion 42',
      ),
    ),
    lines.join('\n'),
  );
  assert.deepEqual(informer.keys(), ['ns/a']);
});

test('bookmarks keep a quiet watch alive past the idle bound', async () => {
  let watches = 0;
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '5'));
    watches += 1;
    streamEvents(res, []);
    let rv = 5;
    const timer = setInterval(() => {
      rv += 1;
      res.write(
        JSON.stringify({
          type: 'BOOKMARK',
          object: { kind: 'ConfigMap', metadata: { resourceVersion: String(rv) } },
        }) + '\n',
      );
    }, 100);
    res.on('close', () => clearInterval(timer));
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    watchIdleTimeoutMs: 300,
  });
  informer.start();
  await informer.synced;
  await new Promise((r) => setTimeout(r, 1000));
  await informer.stop();
  assert.equal(watches, 1);
  assert.equal(informer.stats.watchdogRestarts, 0);
  assert.ok(Number(informer.lastResourceVersion) >= 10, informer.lastResourceVersion);
});

test('a watch connection attempt that hangs does not count as a recovery', async () => {
  let mode: 'fail' | 'hang' = 'fail';
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '10'));
    if (mode === 'fail') {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcdserver: request timed out' }));
    }
    // No status line, no headers: the attempt hangs.
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 10, maxMs: 20 },
    watchHealthyAfterMs: 50,
  });
  informer.start();
  await waitUntil('failing', () => informer.health().failingSince !== undefined);
  assert.equal(informer.health().lastError, 'etcdserver: request timed out');
  mode = 'hang';
  await new Promise((r) => setTimeout(r, 300));
  assert.notEqual(informer.health().failingSince, undefined);
  await informer.stop();
});

test('failing from the first error until the server accepts a watch again (its 200, not a later event)', async () => {
  let failing = true;
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '10'));
    if (failing) {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcdserver: request timed out' }));
    }
    streamEvents(res, []);
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 10, maxMs: 20 },
  });
  informer.start();
  await waitUntil('failing', () => informer.health().failingSince !== undefined);
  failing = false;
  // Well before the default 5 s "healthy" bound, and with no event at all.
  await waitUntil('recovered', () => informer.health().failingSince === undefined, 1000);
  assert.equal(informer.health().lastError, undefined);
  await informer.stop();
});

test('a watch line that is not JSON is reported without quoting it (it may hold Secret data)', async () => {
  const lines: string[] = [];
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '1'));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"type":"ADDED","object":{"data":{"password":hunter2-secret}}}\n');
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: recordingLogger(lines),
    backoff: { baseMs: 20, maxMs: 50 },
  });
  informer.start();
  await waitUntil('a failed watch', () => informer.stats.watchRestartsAfterError >= 1);
  const health = informer.health();
  await informer.stop();
  assert.equal(health.lastError, 'the API server sent a response that is not valid JSON');
  assert.ok(lines.length > 0);
  assert.ok(!lines.some((l) => l.includes('hunter2')), lines.join('\n'));
});

test('stop() during a paginated list returns at once and leaves the cache as it was', async () => {
  let secondPageAsked = false;
  let secondPageCancelled = false;
  const api = await fakeApi((_req, res, url) => {
    if (isWatch(url)) return streamEvents(res, []);
    if (!url.searchParams.get('continue')) return res.end(listBody([cm('p1', '1')], '3', 'next'));
    secondPageAsked = true;
    res.on('close', () => (secondPageCancelled = !res.writableEnded));
    // A slow page: would be answered after stop() was called.
    setTimeout(() => res.end(listBody([cm('p2', '2')], '3')), 600);
  });
  const informer = new Informer<V1ConfigMap>(api.client, { resource: ConfigMaps, logger: silentLogger });
  const added: string[] = [];
  informer.addHandlers({ onAdd: (o) => added.push(o.metadata!.name!) });
  informer.start();
  await waitUntil('the second page requested', () => secondPageAsked);
  const started = performance.now();
  await informer.stop();
  const took = performance.now() - started;
  assert.ok(took < 300, `stop() took ${Math.round(took)} ms`);
  await waitUntil('the slow page request cancelled', () => secondPageCancelled, 300);
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(informer.size, 0);
  assert.equal(informer.hasSynced(), false);
  assert.deepEqual(added, []);
  assert.equal(api.requests.filter(isWatch).length, 0);
});

test('a handler that throws neither hides the event from the other handlers nor breaks the watch', async () => {
  const lines: string[] = [];
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '1'));
    streamEvents(res, [
      { type: 'ADDED', object: cm('x', '2') },
      { type: 'MODIFIED', object: cm('x', '3') },
      { type: 'DELETED', object: cm('x', '4') },
    ]);
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: recordingLogger(lines),
  });
  const seen: string[] = [];
  informer.addHandlers({
    onAdd: () => {
      throw new Error('boom on add');
    },
    onUpdate: () => {
      throw new Error('boom on update');
    },
    onDelete: () => {
      throw new Error('boom on delete');
    },
  });
  informer.addHandlers({
    onAdd: (o) => seen.push(`add ${o.metadata!.name}`),
    onUpdate: (_old, o) => seen.push(`update ${o.metadata!.name}`),
    onDelete: (o) => seen.push(`delete ${o.metadata!.name}`),
  });
  informer.start();
  await waitUntil('three events', () => seen.length >= 3);
  await new Promise((r) => setTimeout(r, 100));
  await informer.stop();
  assert.deepEqual(seen, ['add x', 'update x', 'delete x']);
  assert.equal(informer.stats.watches, 1, JSON.stringify(informer.stats));
  assert.equal(informer.stats.watchRestartsAfterError, 0);
  assert.equal(informer.stats.handlerErrors, 3);
  assert.equal(informer.lastResourceVersion, '4');
  const failures = lines.filter((l) => l.startsWith('error informer event handler failed'));
  assert.equal(failures.length, 3, lines.join('\n'));
  assert.match(failures[0]!, /"event":"add","key":"ns\/x","error":"boom on add"/);
});

test('after an outage, the first informer to reconnect ends the backoff of the others (one API server) and wakes the listeners', async () => {
  let up = false;
  const api = await fakeApi((_req, res, url) => {
    if (!up) {
      res.writeHead(503, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'Status', code: 503, message: 'down' }));
    }
    if (!isWatch(url)) return res.end(listBody([], '10'));
    streamEvents(res, []);
  });
  const reconnected = new Wakeup();
  const quick = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 20, maxMs: 40 },
    random: () => 1,
    reconnected,
  });
  // Its backoff grew long during the outage: alone it would list again only after 3 s.
  const slow = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 3000, maxMs: 3000 },
    random: () => 1,
    reconnected,
  });
  // The work queues listen too: their retries after unanswered requests run once the server is back.
  let wakes = 0;
  reconnected.onWake(() => wakes++);
  const unsubscribed = reconnected.onWake(() => assert.fail('called after unsubscribing'));
  unsubscribed();
  slow.start();
  await waitUntil('the slow informer failed once', () => slow.health().failingSince !== undefined);
  quick.start();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(wakes, 0, 'no wake while the server is down');
  up = true;
  const backAt = performance.now();
  await waitUntil('both synced', () => quick.hasSynced() && slow.hasSynced(), 5000);
  const took = performance.now() - backAt;
  await Promise.all([quick.stop(), slow.stop()]);
  assert.ok(took < 1500, `the slow informer synced ${Math.round(took)} ms after the server came back`);
  assert.ok(wakes >= 1, 'the reconnect woke the listeners');
});

test('after failures grew the backoff, a server answering with Retry-After (it is back, initializing) is tried again after the Retry-After, not the grown backoff', async () => {
  const watchTimes: number[] = [];
  const api = await fakeApi((_req, res, url) => {
    if (!isWatch(url)) return res.end(listBody([], '10'));
    watchTimes.push(performance.now());
    if (watchTimes.length <= 3) return res.socket?.destroy();
    if (watchTimes.length === 4) {
      res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '1' });
      return res.end(JSON.stringify({ kind: 'Status', code: 503, message: 'storage is (re)initializing' }));
    }
    streamEvents(res, []);
  });
  const informer = new Informer<V1ConfigMap>(api.client, {
    resource: ConfigMaps,
    logger: silentLogger,
    backoff: { baseMs: 300, maxMs: 30_000 },
    random: () => 1,
  });
  informer.start();
  await waitUntil('five watches', () => watchTimes.length >= 5, 10_000);
  await informer.stop();
  // Backoff so far 300, 600, 1200 ms; the next would be 2400 ms.
  const gap = watchTimes[4]! - watchTimes[3]!;
  assert.ok(gap >= 900 && gap < 1800, `tried again after ${Math.round(gap)} ms`);
});
