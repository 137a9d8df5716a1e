// Every metric of /metrics moves with what it measures: work queues driven
// through real WorkQueues, REST client metrics through a real KubeClient
// against a local HTTP server, domain metrics through the same calls the
// controllers and the fetch phase make.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudKeychain } from '../cloud/keychain.js';
import { fetchResult, NO_RUNNERS, runFetchPhase, type StageOutcome } from '../packaging/app-pipeline.js';
import { domainMetrics, secondsSinceSourceChange } from './domain-metrics.js';
import { DEFAULT_COMPACTION_BOUNDS, HeapCompactor } from './heap-compactor.js';
import { silentLogger } from './logger.js';
import { OperatorMetrics, type MetricsSource } from './metrics.js';
import { WorkQueue, type ReconcileResult } from './work-queue.js';
import { metricSample, plainHttpClient } from './test-clients.js';

const closers: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
async function sample(metrics: OperatorMetrics, series: string): Promise<number | undefined> {
  return metricSample(await metrics.text(), series);
}

function metricsOf(overrides: Partial<MetricsSource> = {}): OperatorMetrics {
  const source: MetricsSource = {
    queues: [],
    controllerGauges: [],
    informers: () => [],
    leaseName: 'regcred-operator',
    isLeading: () => true,
    isReady: () => true,
    crds: () => [],
    eventLoopMaxLagSeconds: () => 0,
    apiRequestCounts: () => ({}),
    ...overrides,
  };
  const metrics = new OperatorMetrics(source);
  closers.push(() => metrics.close());
  return metrics;
}

const STALE = new Error('stale');

function queue(name: string, handler: (key: string) => Promise<ReconcileResult | void>): WorkQueue {
  const q = new WorkQueue({
    name,
    concurrency: 2,
    handler,
    logger: silentLogger,
    baseDelayMs: 60_000,
    isStaleRead: (err) => err === STALE,
  });
  closers.push(() => q.shutdown());
  return q;
}

describe('controller-runtime and work-queue metrics', () => {
  const cases: Array<{
    name: string;
    handler: () => Promise<ReconcileResult | void>;
    result: string;
    errors: number;
    retries: number;
    staleReads?: number;
  }> = [
    { name: 'success', handler: async () => undefined, result: 'success', errors: 0, retries: 0 },
    {
      name: 'error',
      handler: async () => {
        throw new Error('boom');
      },
      result: 'error',
      errors: 1,
      retries: 1,
    },
    {
      name: 'stale read',
      handler: async () => {
        throw STALE;
      },
      result: 'requeue',
      errors: 0,
      retries: 1,
      staleReads: 1,
    },
    {
      name: 'requeue after',
      handler: async () => ({ requeueAfterMs: 60_000 }),
      result: 'requeue_after',
      errors: 0,
      retries: 0,
    },
  ];
  for (const c of cases) {
    it(`counts a reconcile ending in ${c.name}`, async () => {
      const q = queue('ctl', c.handler);
      const metrics = metricsOf({ queues: [q] });
      const series = `controller_runtime_reconcile_total{controller="ctl",result="${c.result}"}`;
      assert.equal(await sample(metrics, series), undefined);
      assert.equal(await sample(metrics, 'workqueue_adds_total{name="ctl"}'), 0);
      q.add('ns/a');
      q.add('ns/a'); // coalesced: not a real add
      assert.equal(await sample(metrics, 'workqueue_depth{name="ctl"}'), 1);
      assert.equal(await sample(metrics, 'regcred_workqueue_added_total{queue="ctl"}'), 2);
      q.start();
      await q.idle();
      assert.equal(await sample(metrics, series), 1);
      assert.equal(await sample(metrics, 'workqueue_adds_total{name="ctl"}'), 1);
      assert.equal(await sample(metrics, 'workqueue_depth{name="ctl"}'), 0);
      assert.equal(
        await sample(metrics, 'controller_runtime_reconcile_errors_total{controller="ctl"}'),
        c.errors,
      );
      assert.equal(await sample(metrics, 'workqueue_retries_total{name="ctl"}'), c.retries);
      assert.equal(await sample(metrics, 'regcred_workqueue_processed_total{queue="ctl"}'), 1);
      assert.equal(await sample(metrics, 'regcred_workqueue_retries_total{queue="ctl"}'), c.retries);
      assert.equal(
        await sample(metrics, 'regcred_workqueue_stale_reads_total{queue="ctl"}'),
        c.staleReads ?? 0,
      );
      assert.equal(await sample(metrics, 'regcred_workqueue_failures_total{queue="ctl"}'), c.errors);
      assert.equal(
        await sample(metrics, 'controller_runtime_reconcile_time_seconds_count{controller="ctl"}'),
        1,
      );
      assert.equal(await sample(metrics, 'workqueue_work_duration_seconds_count{name="ctl"}'), 1);
      assert.equal(await sample(metrics, 'workqueue_queue_duration_seconds_count{name="ctl"}'), 1);
    });
  }

  it('counts an add while the key runs (dirty) as one real add', async () => {
    let release!: () => void;
    const q = queue('ctl', () => new Promise<void>((r) => (release = r)));
    const metrics = metricsOf({ queues: [q] });
    q.add('ns/a');
    q.start();
    await new Promise((r) => setImmediate(r));
    q.add('ns/a');
    q.add('ns/a');
    assert.equal(await sample(metrics, 'workqueue_adds_total{name="ctl"}'), 2);
    release();
    await new Promise((r) => setImmediate(r));
    release();
    await q.idle();
    assert.equal(
      await sample(metrics, 'controller_runtime_reconcile_total{controller="ctl",result="success"}'),
      2,
    );
    // Running it again after the dirty mark is not another add.
    assert.equal(await sample(metrics, 'workqueue_adds_total{name="ctl"}'), 2);
  });

  it('reports running reconciles: active workers, unfinished work, longest running', async () => {
    const releases: Array<() => void> = [];
    const q = queue('ctl', () => new Promise<void>((r) => releases.push(r)));
    const metrics = metricsOf({ queues: [q] });
    assert.equal(await sample(metrics, 'controller_runtime_max_concurrent_reconciles{controller="ctl"}'), 2);
    assert.equal(await sample(metrics, 'controller_runtime_active_workers{controller="ctl"}'), 0);
    assert.equal(await sample(metrics, 'workqueue_longest_running_processor_seconds{name="ctl"}'), 0);
    for (const key of ['a', 'b', 'c']) q.add(key);
    q.start();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(await sample(metrics, 'controller_runtime_active_workers{controller="ctl"}'), 2);
    assert.equal(await sample(metrics, 'workqueue_depth{name="ctl"}'), 1);
    const longest = (await sample(metrics, 'workqueue_longest_running_processor_seconds{name="ctl"}'))!;
    const unfinished = (await sample(metrics, 'workqueue_unfinished_work_seconds{name="ctl"}'))!;
    assert.ok(longest >= 0.05, `longest ${longest}`);
    assert.ok(unfinished >= 2 * 0.05 && unfinished >= longest, `unfinished ${unfinished}`);
    while (releases.length > 0) {
      releases.shift()!();
      await new Promise((r) => setTimeout(r, 5));
    }
    await q.idle();
    assert.equal(await sample(metrics, 'controller_runtime_active_workers{controller="ctl"}'), 0);
    assert.equal(await sample(metrics, 'workqueue_unfinished_work_seconds{name="ctl"}'), 0);
  });
});

describe('REST client metrics', () => {
  it('counts requests by code, method and host, and times them', async () => {
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/api/v1/namespaces/ns/configmaps/missing'))
        res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"kind":"Status","code":404}');
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = await plainHttpClient(`http://${host}`);
    closers.push(() => client.close());
    const metrics = new OperatorMetrics(
      {
        queues: [],
        controllerGauges: [],
        informers: () => [],
        leaseName: 'l',
        isLeading: () => true,
        isReady: () => true,
        crds: () => [],
        eventLoopMaxLagSeconds: () => 0,
        apiRequestCounts: () => client.counts,
      },
      client,
    );
    closers.push(() => metrics.close());
    await client.request('GET', '/version');
    await client.request('GET', '/version');
    await client.request('GET', '/api/v1/namespaces/ns/configmaps/missing').catch(() => undefined);
    await client.request('POST', '/api/v1/namespaces/ns/configmaps', { body: {} });
    assert.equal(
      await sample(metrics, `rest_client_requests_total{code="200",method="GET",host="${host}"}`),
      2,
    );
    assert.equal(
      await sample(metrics, `rest_client_requests_total{code="404",method="GET",host="${host}"}`),
      1,
    );
    assert.equal(
      await sample(metrics, `rest_client_requests_total{code="200",method="POST",host="${host}"}`),
      1,
    );
    assert.equal(
      await sample(metrics, `rest_client_request_duration_seconds_count{verb="GET",host="${host}"}`),
      3,
    );
    assert.equal(await sample(metrics, 'regcred_api_requests_total{verb="GET"}'), 3);
    assert.equal(await sample(metrics, 'regcred_api_requests_total{verb="POST"}'), 1);
  });
});

describe('process, leadership and readiness metrics', () => {
  it("includes prom-client's default process and Node.js metrics", async () => {
    const text = await metricsOf().text();
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ])
      assert.match(text, new RegExp(`^${name} \\d`, 'm'), name);
  });

  it('follows leadership, readiness, missing CRDs, informers and event-loop lag', async () => {
    const state = { leading: false, ready: false, missing: true, size: 3, restarts: 1, errors: 0, lag: 0.25 };
    const metrics = metricsOf({
      leaseName: 'lease-x',
      isLeading: () => state.leading,
      isReady: () => state.ready,
      crds: () => [{ crd: 'apps.kappctrl.k14s.io', missing: state.missing }],
      informers: () => [
        {
          name: 'secrets',
          size: state.size,
          stats: { watchdogRestarts: state.restarts, handlerErrors: state.errors },
        },
      ],
      eventLoopMaxLagSeconds: () => state.lag,
    });
    const read = async () => ({
      leading: await sample(metrics, 'leader_election_master_status{name="lease-x"}'),
      ready: await sample(metrics, 'regcred_ready'),
      missing: await sample(metrics, 'regcred_crd_missing{crd="apps.kappctrl.k14s.io"}'),
      size: await sample(metrics, 'regcred_informer_cached_objects{informer="secrets"}'),
      restarts: await sample(metrics, 'regcred_informer_watchdog_restarts_total{informer="secrets"}'),
      errors: await sample(metrics, 'regcred_informer_handler_errors_total{informer="secrets"}'),
      lag: await sample(metrics, 'regcred_event_loop_max_lag_seconds'),
    });
    assert.deepEqual(await read(), {
      leading: 0,
      ready: 0,
      missing: 1,
      size: 3,
      restarts: 1,
      errors: 0,
      lag: 0.25,
    });
    Object.assign(state, {
      leading: true,
      ready: true,
      missing: false,
      size: 5,
      restarts: 2,
      errors: 4,
      lag: 0,
    });
    assert.deepEqual(await read(), {
      leading: 1,
      ready: 1,
      missing: 0,
      size: 5,
      restarts: 2,
      errors: 4,
      lag: 0,
    });
  });
});

describe('domain metrics', () => {
  it('reads controller gauges at scrape time', async () => {
    let managed = 0;
    const metrics = metricsOf({
      controllerGauges: [{ name: 'regcred_placeholders_managed', help: 'h', value: () => managed }],
    });
    assert.equal(await sample(metrics, 'regcred_placeholders_managed'), 0);
    managed = 7;
    assert.equal(await sample(metrics, 'regcred_placeholders_managed'), 7);
  });

  it('reads labelled controller gauges at scrape time and drops series no longer returned', async () => {
    let series = [
      { labels: { policy: 'teams' }, value: 3 },
      { labels: { policy: 'ci' }, value: 1 },
    ];
    const metrics = metricsOf({
      controllerGauges: [
        { name: 'regcred_policy_namespaces', help: 'h', labelNames: ['policy'], series: () => series },
      ],
    });
    assert.equal(await sample(metrics, 'regcred_policy_namespaces{policy="teams"}'), 3);
    assert.equal(await sample(metrics, 'regcred_policy_namespaces{policy="ci"}'), 1);
    series = [{ labels: { policy: 'teams' }, value: 5 }];
    assert.equal(await sample(metrics, 'regcred_policy_namespaces{policy="teams"}'), 5);
    assert.equal(await sample(metrics, 'regcred_policy_namespaces{policy="ci"}'), undefined);
  });

  it('counts placeholder writes, propagation delays and registry conflicts', async () => {
    const metrics = metricsOf();
    domainMetrics.placeholderUpdated(undefined);
    domainMetrics.placeholderUpdated(0.2);
    domainMetrics.placeholderUpdated(1.5);
    domainMetrics.registryConflicts(0);
    domainMetrics.registryConflicts(3);
    assert.equal(await sample(metrics, 'regcred_placeholder_writes_total'), 3);
    assert.equal(await sample(metrics, 'regcred_placeholder_propagation_seconds_count'), 2);
    assert.equal(await sample(metrics, 'regcred_placeholder_propagation_seconds_sum'), 1.7);
    assert.equal(await sample(metrics, 'regcred_placeholder_propagation_last_seconds'), 1.5);
    assert.equal(await sample(metrics, 'regcred_registry_conflicts_total'), 3);
  });

  it('counts cloud credential mints by provider, purpose and result, and times them', async () => {
    const metrics = metricsOf();
    const mint = (fail: boolean) =>
      new CloudKeychain({
        factories: {
          gcr: () => ({
            name: 'gcr',
            servesHost: () => true,
            mint: async () => {
              if (fail) throw new Error('no metadata server');
              return {
                username: 'oauth2accesstoken',
                password: 't',
                expiresAt: new Date(Date.now() + 3_600_000),
              };
            },
          }),
        },
      });
    const ambient = { kind: 'ambient' } as const;
    const zero = 'provider="acr",purpose="fetch",result="failed"';
    assert.equal(await sample(metrics, `regcred_cloud_credential_mints_total{${zero}}`), 0);
    const ok = mint(false);
    await ok.credential('gcr', 'gcr.io', ambient);
    await ok.credential('gcr', 'gcr.io', ambient); // from the cache: not a mint
    await ok.mintFresh('gcr', 'gcr.io', ambient);
    await assert.rejects(mint(true).mintFresh('gcr', 'gcr.io', ambient));
    const series = (purpose: string, result: string) =>
      `regcred_cloud_credential_mints_total{provider="gcr",purpose="${purpose}",result="${result}"}`;
    assert.equal(await sample(metrics, series('fetch', 'succeeded')), 1);
    assert.equal(await sample(metrics, series('registrytoken', 'succeeded')), 1);
    assert.equal(await sample(metrics, series('registrytoken', 'failed')), 1);
    assert.equal(await sample(metrics, series('fetch', 'failed')), 0);
    const timed = 'regcred_cloud_credential_mint_duration_seconds_count';
    assert.equal(await sample(metrics, `${timed}{provider="gcr",result="succeeded"}`), 2);
    assert.equal(await sample(metrics, `${timed}{provider="gcr",result="failed"}`), 1);
  });

  it('counts heap compactions by trigger, from a real HeapCompactor', async () => {
    const metrics = metricsOf();
    assert.equal(await sample(metrics, 'regcred_heap_compactions_total{trigger="quiet"}'), 0);
    assert.equal(await sample(metrics, 'regcred_heap_compactions_total{trigger="busy"}'), 0);
    let space = { committedBytes: 80 * 2 ** 20, usedBytes: 40 * 2 ** 20 };
    const compactor = new HeapCompactor(silentLogger, {
      collect: () => (space = { committedBytes: 41 * 2 ** 20, usedBytes: 40 * 2 ** 20 }),
      oldSpace: () => space,
      bounds: { ...DEFAULT_COMPACTION_BOUNDS, quietMinMs: Infinity },
    });
    assert.equal(compactor.tick(), 'busy');
    assert.equal(compactor.tick(), undefined);
    assert.equal(await sample(metrics, 'regcred_heap_compactions_total{trigger="busy"}'), 1);
    assert.equal(await sample(metrics, 'regcred_heap_compactions_total{trigger="quiet"}'), 0);
  });

  it('stops counting once closed', async () => {
    const metrics = metricsOf();
    metrics.close();
    domainMetrics.registryConflicts(2);
    assert.equal(await sample(metrics, 'regcred_registry_conflicts_total'), 0);
  });

  const outcomes: Array<{ outcome: StageOutcome; result: string }> = [
    { outcome: { exitCode: 0, bytes: 1234 }, result: 'succeeded' },
    { outcome: { exitCode: 1, error: 'pull failed' }, result: 'failed' },
    { outcome: { exitCode: 1, error: 'no Secret', awaitsInputChange: true }, result: 'awaiting_change' },
  ];
  for (const { outcome, result } of outcomes) {
    it(`times a fetch stage ending ${result} and sums its bytes`, async () => {
      assert.equal(fetchResult(outcome), result);
      const metrics = metricsOf();
      await runFetchPhase({
        namespace: 'ns',
        spec: { fetch: [{ image: { url: 'r/i:1' } }] },
        runners: {
          ...NO_RUNNERS,
          fetch: [{ name: 'fake', canRun: () => true, run: async () => outcome }],
        },
        workDir: '/nonexistent',
        mkdir: async () => undefined,
        now: () => '2026-01-01T00:00:00Z',
      });
      const labels = `kind="image",result="${result}"`;
      assert.equal(await sample(metrics, `regcred_fetch_duration_seconds_count{${labels}}`), 1);
      assert.equal(await sample(metrics, `regcred_fetch_bytes_sum{${labels}}`), outcome.bytes ?? 0);
    });
  }
});

describe('secondsSinceSourceChange', () => {
  const change = { key: 'src/creds', at: 1000 };
  const cases: Array<{
    name: string;
    change?: typeof change;
    sources: string[];
    now: number;
    want?: number;
  }> = [
    { name: 'no change seen yet', sources: ['src/creds'], now: 2000 },
    { name: 'the write does not carry the changed source', change, sources: ['src/other'], now: 2000 },
    { name: 'the write carries it', change, sources: ['src/other', 'src/creds'], now: 3500, want: 2.5 },
    { name: 'a clock step back never goes negative', change, sources: ['src/creds'], now: 900, want: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(secondsSinceSourceChange(c.change, c.sources, c.now), c.want));
  }
});
