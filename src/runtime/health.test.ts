// Liveness catches a wedged process (blocked event loop, an informer that
// stopped making progress while the API server answers) and nothing else;
// readiness follows the caches and names the informer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import {
  EventLoopMonitor,
  informerReadinessProblems,
  livenessProblems,
  startHealthServer,
  type HealthBounds,
  type HealthSource,
} from './health.js';
import type { InformerHealth } from './informer.js';

const bounds: HealthBounds = {
  informerFailingMs: 60_000,
  informerStalledMs: 600_000,
  apiserverAnsweredWithinMs: 90_000,
  eventLoopStallMs: 10_000,
  eventLoopWindowMs: 30_000,
};

const NOW = 1_000_000;
const working: InformerHealth = {
  started: true,
  synced: true,
  lastProgressAt: NOW - 1000,
  failingSince: undefined,
  lastError: undefined,
};

test('readiness: one line per informer that is not synced or has been failing longer than the bound', () => {
  const rows: Array<{ name: string; health: Partial<InformerHealth>; want: string[] }> = [
    { name: 'synced and working', health: {}, want: [] },
    {
      name: 'not synced yet',
      health: { synced: false },
      want: ['informer secrets has not synced its cache yet'],
    },
    {
      name: 'not synced, with the error that keeps it from listing',
      health: { synced: false, failingSince: NOW - 5000, lastError: 'forbidden' },
      want: ['informer secrets has not synced its cache yet: forbidden'],
    },
    {
      name: 'failing for less than the bound (an apiserver restart)',
      health: { failingSince: NOW - 59_000, lastError: 'connect ECONNREFUSED' },
      want: [],
    },
    {
      name: 'failing for longer than the bound',
      health: { failingSince: NOW - 75_000, lastError: 'connect ECONNREFUSED' },
      want: ['informer secrets has failed to list/watch for 75s (over 60s): connect ECONNREFUSED'],
    },
  ];
  for (const row of rows) {
    const got = informerReadinessProblems(
      NOW,
      [{ name: 'secrets', health: { ...working, ...row.health } }],
      bounds,
    );
    assert.deepEqual(got, row.want, row.name);
  }
});

test('liveness: fails only for a blocked event loop or an informer stalled while the API server answers', () => {
  const rows: Array<{
    name: string;
    lag?: number;
    health?: Partial<InformerHealth>;
    answeredAgoMs?: number;
    want: string[];
  }> = [
    { name: 'all well', want: [] },
    { name: 'a short event-loop block', lag: 2000, want: [] },
    {
      name: 'event loop blocked past the bound',
      lag: 12_000,
      want: ['event loop blocked for 12s (over 10s) within the last 30s'],
    },
    {
      name: 'informer without progress while the API server answers',
      health: { lastProgressAt: NOW - 700_000, failingSince: NOW - 700_000, lastError: 'request timed out' },
      want: [
        'informer secrets made no list/watch progress for 700s (over 600s) while the API server answers: request timed out',
      ],
    },
    {
      name: 'informer without progress during an API server outage: readiness, not a restart',
      health: { lastProgressAt: NOW - 700_000, failingSince: NOW - 700_000, lastError: 'ECONNREFUSED' },
      answeredAgoMs: 120_000,
      want: [],
    },
    {
      name: 'API server never answered',
      health: { lastProgressAt: NOW - 700_000 },
      answeredAgoMs: Infinity,
      want: [],
    },
    {
      name: 'informer not started',
      health: { started: false, lastProgressAt: 0 },
      want: [],
    },
    {
      name: 'informer failing with answers from the server (e.g. 403) makes progress: not wedged',
      health: { lastProgressAt: NOW - 1000, failingSince: NOW - 700_000, lastError: 'forbidden' },
      want: [],
    },
  ];
  for (const row of rows) {
    const got = livenessProblems(
      {
        now: NOW,
        eventLoopMaxLagMs: row.lag ?? 0,
        informers: [{ name: 'secrets', health: { ...working, ...row.health } }],
        apiserverAnsweredAt: NOW - (row.answeredAgoMs ?? 5000),
      },
      bounds,
    );
    assert.deepEqual(got, row.want, row.name);
  }
});

test('the event-loop monitor reports the longest block within its window, and forgets older ones', () => {
  let now = 0;
  const monitor = new EventLoopMonitor(30_000, 500, () => now);
  monitor.start();
  try {
    now = 500;
    monitor.tick();
    assert.equal(monitor.maxLagMs(), 0);
    now = 12_500; // due at 1000: held up 11.5 s
    monitor.tick();
    now = 13_000;
    monitor.tick();
    assert.equal(monitor.maxLagMs(), 11_500);
    now = 42_000;
    monitor.tick(); // this tick itself was late by 28.5 s
    now = 42_500;
    monitor.tick();
    assert.equal(monitor.maxLagMs(), 28_500);
    now = 80_000; // both blocks are older than the window; the pending tick is late by 37 s
    assert.equal(monitor.maxLagMs(), 37_000);
    monitor.tick();
    now = 80_500;
    monitor.tick();
    now = 111_000;
    monitor.tick();
    now = 111_500;
    assert.equal(monitor.maxLagMs(), 30_000);
  } finally {
    monitor.stop();
  }
});

test('the event-loop monitor sees a real synchronous block', async () => {
  const monitor = new EventLoopMonitor(10_000, 20);
  monitor.start();
  try {
    await new Promise((r) => setTimeout(r, 50));
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // block the loop
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(monitor.maxLagMs() >= 250, String(monitor.maxLagMs()));
  } finally {
    monitor.stop();
  }
});

test('/healthz and /livez answer 500 with the problems while the process is wedged, 200 otherwise', async () => {
  let problems: string[] = [];
  const source: HealthSource = { ready: () => true, livenessProblems: () => problems, metrics: () => '' };
  const server = await startHealthServer(0, '127.0.0.1', source);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const path of ['/healthz', '/livez']) {
      problems = [];
      let res = await fetch(base + path);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'ok');
      problems = ['event loop blocked for 12s (over 10s) within the last 30s', 'informer x made no progress'];
      res = await fetch(base + path);
      assert.equal(res.status, 500);
      assert.equal(await res.text(), problems.join('\n'));
    }
  } finally {
    server.close();
  }
});

test('/metrics serves the text a (prom-client) source resolves, and 500 when it fails', async () => {
  let metrics: () => Promise<string> = async () => 'up 1\n';
  const source: HealthSource = { ready: () => true, metrics: () => metrics() };
  const server = await startHealthServer(0, '127.0.0.1', source);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    let res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(await res.text(), 'up 1\n');
    metrics = () => Promise.reject(new Error('collect failed'));
    res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 500);
    assert.equal(await res.text(), 'metrics failed: collect failed');
  } finally {
    server.close();
  }
});
