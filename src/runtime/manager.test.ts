// The manager's /healthz and /readyz against a fake API server (node:http):
// readiness drops while an informer cannot list/watch and names it; liveness
// fails only when an informer is stuck while the API server answers.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_HEALTH_BOUNDS } from './health.js';
import { InformerFactory } from './informer-factory.js';
import { silentLogger } from './logger.js';
import { DEFAULT_CRD_CHECK, Manager, type HealthOptions } from './manager.js';
import { plainHttpClient, ConfigMaps } from './test-clients.js';

const health: HealthOptions = {
  ...DEFAULT_HEALTH_BOUNDS,
  informerFailingMs: 300,
  informerStalledMs: 600,
  apiserverAnsweredWithinMs: 2000,
  apiserverCheckMs: 100,
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

/** A fake API server and a Manager with one ConfigMap informer; returns the health endpoint's base URL. */
async function managerAgainst(handler: Handler): Promise<{ base: string; manager: Manager }> {
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    handler(req, res, new URL(req.url ?? '/', 'http://x'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = await plainHttpClient(`http://127.0.0.1:${port}`, 150);
  const informers = new InformerFactory(client, silentLogger);
  informers.get('configmaps', { resource: ConfigMaps, backoff: { baseMs: 20, maxMs: 50 } });
  const manager = new Manager(client, informers, [], silentLogger, [], DEFAULT_CRD_CHECK, undefined, health);
  // start() resolves only once the caches synced, which some cases never do.
  const started = manager.start({ port: 0, host: '127.0.0.1' }).catch(() => undefined);
  cleanups.push(async () => {
    for (const res of open) res.destroy();
    await manager.stop();
    await started;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  for (let i = 0; !manager.healthAddress(); i++) {
    if (i > 200) throw new Error('health server did not start');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { base: `http://127.0.0.1:${manager.healthAddress()!.port}`, manager };
}

async function probe(base: string, path: string): Promise<string> {
  const res = await fetch(base + path);
  return `${res.status} ${await res.text()}`;
}

async function eventually(what: string, cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const emptyList = JSON.stringify({
  kind: 'ConfigMapList',
  apiVersion: 'v1',
  metadata: { resourceVersion: '5' },
  items: [],
});
const version = JSON.stringify({ major: '1', minor: '34' });

test('readiness drops, naming the informer, while it fails to list/watch longer than the bound; liveness stays ok', async () => {
  let failing = false;
  const { base } = await managerAgainst((_req, res, url) => {
    if (url.pathname === '/version') return res.end(version);
    if (failing) {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcdserver: leader changed' }));
    }
    if (url.searchParams.get('watch') !== 'true') return res.end(emptyList);
    // A watch the server ends quickly, so the informer reconnects and meets the failure.
    res.writeHead(200, { 'Content-Type': 'application/json' });
    setTimeout(() => res.end(), 50);
  });
  await eventually('ready', async () => (await probe(base, '/readyz')) === '200 ok');
  failing = true;
  await eventually('not ready', async () => (await probe(base, '/readyz')).startsWith('503'));
  assert.match(
    await probe(base, '/readyz'),
    /^503 informer configmaps has failed to list\/watch for \d+\.\ds \(over 0\.3s\): etcdserver: leader changed$/,
  );
  // The server answers (with errors): the process is not wedged.
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(await probe(base, '/healthz'), '200 ok');
  failing = false;
  await eventually('ready again', async () => (await probe(base, '/readyz')) === '200 ok');
});

test('liveness fails, naming the informer, when its list hangs while the API server answers', async () => {
  const { base } = await managerAgainst((_req, res, url) => {
    if (url.pathname === '/version') return res.end(version);
    // Lists never answer: each one times out on the client, and the informer never progresses.
    void res;
  });
  assert.match(await probe(base, '/readyz'), /^503 informer configmaps has not synced its cache yet/);
  await eventually('liveness failing', async () => (await probe(base, '/livez')).startsWith('500'));
  assert.match(
    await probe(base, '/healthz'),
    /^500 informer configmaps made no list\/watch progress for \d+\.\ds \(over 0\.6s\) while the API server answers: request timed out after 150 ms: GET \/api\/v1\/configmaps$/,
  );
});

test('liveness stays ok while the API server does not answer at all (an outage is for readiness)', async () => {
  const { base } = await managerAgainst((_req, res) => {
    res.socket?.destroy();
  });
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(await probe(base, '/healthz'), '200 ok');
  assert.match(await probe(base, '/readyz'), /^503 informer configmaps has not synced its cache yet: /);
});
