// The operator runtime against a real API server: informer list/watch,
// reconnects after a dropped connection, relist after 410 Gone, selectors,
// finalizer writes, and the operator process's readiness and graceful stop.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { V1ConfigMap, V1Secret, KubernetesObject } from '@kubernetes/client-node';
import { ResourceEventType } from '@dot-i/k8s-operator';
import { EventRecorder } from '../src/runtime/events.js';
import { InformerFactory } from '../src/runtime/informer-factory.js';
import { DEFAULT_CRD_CHECK, DEFAULT_HEALTH, Manager } from '../src/runtime/manager.js';
import { requiredCrds } from '../src/required-crds.js';
import { Informer } from '../src/runtime/informer.js';
import { ControllerOperator } from '../src/runtime/operator.js';
import type { KubeClient, ResourceType } from '../src/runtime/kube-client.js';
import { silentLogger } from '../src/runtime/logger.js';
import { clientFor, REPO_ROOT, startTestCluster, type TestCluster } from './harness/cluster.js';
import { freePort } from './harness/control-plane.js';
import { TcpProxy } from './harness/tcp-proxy.js';
import { waitFor } from './harness/wait.js';
import { ConfigMaps } from '../src/runtime/test-clients.js';

const Secrets: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  namespaced: true,
};
const Namespaces: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
};

let cluster: TestCluster;
let proxy: TcpProxy;
let proxied: KubeClient;

const cm = (namespace: string, name: string, data: Record<string, string> = {}): V1ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { namespace, name },
  data,
});

async function namespace(name: string) {
  await cluster.client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

function recordEvents<T extends KubernetesObject>(informer: Informer<T>) {
  const events: string[] = [];
  informer.addHandlers({
    onAdd: (o) => events.push(`add ${o.metadata!.name}`),
    onUpdate: (_old, o) => events.push(`update ${o.metadata!.name}`),
    onDelete: (o) => events.push(`delete ${o.metadata!.name}`),
  });
  return events;
}

before(async () => {
  // No watch cache and a 1 s etcd compaction: a watch resumed from a version
  // older than a few seconds is answered with 410 Gone, as after a long outage.
  cluster = await startTestCluster({
    installCrds: true,
    controllerManager: true,
    apiserverArgs: ['--watch-cache=false', '--etcd-compaction-interval=1s'],
  });
  proxy = new TcpProxy('127.0.0.1', Number(new URL(cluster.cp.server).port));
  await proxy.start();
  const proxiedConfig = join(cluster.cp.dir, 'proxied.kubeconfig');
  writeFileSync(
    proxiedConfig,
    readFileSync(cluster.cp.kubeconfig, 'utf8').replace(cluster.cp.server, `https://127.0.0.1:${proxy.port}`),
  );
  proxied = await clientFor(proxiedConfig);
});

after(async () => {
  proxied?.close();
  await proxy?.stop();
  await cluster?.stop();
});

describe('informer', () => {
  test('lists existing objects, then delivers adds, updates and deletes from the watch', async () => {
    await namespace('inf-basic');
    await cluster.client.create(ConfigMaps, cm('inf-basic', 'before'));
    const informer = new Informer<V1ConfigMap>(cluster.client, {
      resource: ConfigMaps,
      namespace: 'inf-basic',
      logger: silentLogger,
    });
    const events = recordEvents(informer);
    informer.start();
    await informer.synced;
    assert.deepEqual(events, ['add before']);
    await cluster.client.create(ConfigMaps, cm('inf-basic', 'after', { a: '1' }));
    await cluster.client.mergePatch(ConfigMaps, 'inf-basic', 'after', { data: { a: '2' } });
    await cluster.client.delete(ConfigMaps, 'inf-basic', 'before');
    await waitFor('three watch events', () => events.length >= 4);
    assert.deepEqual(events, ['add before', 'add after', 'update after', 'delete before']);
    assert.equal(informer.get('inf-basic', 'after')?.data?.a, '2');
    assert.equal(informer.get('inf-basic', 'before'), undefined);
    await informer.stop();
  });

  test('restarts after a dropped connection and resumes without losing a delete', async () => {
    await namespace('inf-drop');
    await cluster.client.create(ConfigMaps, cm('inf-drop', 'keep'));
    await cluster.client.create(ConfigMaps, cm('inf-drop', 'gone'));
    const informer = new Informer<V1ConfigMap>(proxied, {
      resource: ConfigMaps,
      namespace: 'inf-drop',
      logger: silentLogger,
      backoff: { baseMs: 50, maxMs: 200 },
    });
    const events = recordEvents(informer);
    informer.start();
    await informer.synced;
    await waitFor('watch connection open', () => proxy.openConnections > 0);
    proxy.cut();
    await cluster.client.delete(ConfigMaps, 'inf-drop', 'gone');
    await cluster.client.mergePatch(ConfigMaps, 'inf-drop', 'keep', { data: { k: 'v' } });
    await new Promise((r) => setTimeout(r, 300));
    proxy.restore();
    await waitFor('the delete made while disconnected', () => events.includes('delete gone'));
    await waitFor(
      'the update made while disconnected',
      () => informer.get('inf-drop', 'keep')?.data?.k === 'v',
    );
    assert.ok(informer.stats.watchRestartsAfterError >= 1, JSON.stringify(informer.stats));
    assert.equal(informer.stats.relistsAfterGone, 0, 'a resumable watch must not relist');
    assert.deepEqual(informer.keys(), ['inf-drop/keep']);
    await informer.stop();
  });

  test('relists after 410 Gone and synthesises the deletes it missed', async () => {
    await namespace('inf-gone');
    await cluster.client.create(ConfigMaps, cm('inf-gone', 'old'));
    const informer = new Informer<V1ConfigMap>(proxied, {
      resource: ConfigMaps,
      namespace: 'inf-gone',
      logger: silentLogger,
      backoff: { baseMs: 50, maxMs: 200 },
    });
    const events = recordEvents(informer);
    informer.start();
    await informer.synced;
    await waitFor('watch connection open', () => proxy.openConnections > 0);
    proxy.cut();
    await cluster.client.delete(ConfigMaps, 'inf-gone', 'old');
    await cluster.client.create(ConfigMaps, cm('inf-gone', 'new'));
    // Stay away until etcd has compacted past the informer's resourceVersion.
    await new Promise((r) => setTimeout(r, 3500));
    proxy.restore();
    await waitFor('relist after 410', () => informer.stats.relistsAfterGone >= 1);
    await waitFor(
      'synthesised delete and add',
      () => events.includes('delete old') && events.includes('add new'),
    );
    assert.deepEqual(informer.keys(), ['inf-gone/new']);
    await informer.stop();
  });

  test('a field selector on Secret type keeps other Secrets out of the cache, on list and on watch', async () => {
    await namespace('inf-type');
    const secret = (name: string, type: string, data: Record<string, string>): V1Secret => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'inf-type', name },
      type,
      data,
    });
    const dockerconfig = { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') };
    await cluster.client.create(Secrets, secret('listed-opaque', 'Opaque', { a: 'YQ==' }));
    await cluster.client.create(
      Secrets,
      secret('listed-pull', 'kubernetes.io/dockerconfigjson', dockerconfig),
    );
    const informer = new Informer<V1Secret>(cluster.client, {
      resource: Secrets,
      namespace: 'inf-type',
      fieldSelector: 'type=kubernetes.io/dockerconfigjson',
      logger: silentLogger,
    });
    informer.start();
    await informer.synced;
    await cluster.client.create(Secrets, secret('watched-opaque', 'Opaque', { a: 'YQ==' }));
    await cluster.client.create(
      Secrets,
      secret('watched-pull', 'kubernetes.io/dockerconfigjson', dockerconfig),
    );
    await waitFor('the watched dockerconfigjson Secret', () => informer.get('inf-type', 'watched-pull'));
    assert.deepEqual(informer.keys().sort(), ['inf-type/listed-pull', 'inf-type/watched-pull']);
    await informer.stop();
  });

  test('a filter drops objects that fail it and reads an update that fails it as a delete', async () => {
    await namespace('inf-filter');
    const informer = new Informer<V1ConfigMap>(cluster.client, {
      resource: ConfigMaps,
      namespace: 'inf-filter',
      filter: (o) => o.metadata?.annotations?.wanted !== undefined,
      logger: silentLogger,
    });
    const events = recordEvents(informer);
    informer.start();
    await informer.synced;
    await cluster.client.create(ConfigMaps, {
      ...cm('inf-filter', 'x'),
      metadata: { namespace: 'inf-filter', name: 'x', annotations: { wanted: '' } },
    });
    await cluster.client.create(ConfigMaps, cm('inf-filter', 'y'));
    await waitFor('x cached', () => informer.get('inf-filter', 'x'));
    await cluster.client.jsonPatch(ConfigMaps, 'inf-filter', 'x', [
      { op: 'remove', path: '/metadata/annotations/wanted' },
    ]);
    await waitFor('x dropped', () => events.includes('delete x'));
    assert.equal(informer.size, 0);
    assert.ok(!events.some((e) => e.endsWith(' y')), events.join(','));
    await informer.stop();
  });

  test('a metadata-only informer caches PartialObjectMetadata without data', async () => {
    await namespace('inf-meta');
    await cluster.client.create(ConfigMaps, cm('inf-meta', 'big', { payload: 'x'.repeat(10_000) }));
    const informer = new Informer<V1ConfigMap>(cluster.client, {
      resource: ConfigMaps,
      namespace: 'inf-meta',
      metadataOnly: true,
      logger: silentLogger,
    });
    informer.start();
    await informer.synced;
    const cached = informer.get('inf-meta', 'big')!;
    assert.equal(cached.metadata?.name, 'big');
    assert.equal(cached.data, undefined);
    assert.equal(cached.kind, 'ConfigMap');
    await informer.stop();
  });
});

/**
 * A loopback TCP proxy that can stall a connection: it stays up but no byte
 * reaches the client any more (a half-dead load balancer or NAT entry). New
 * connections pass.
 */
class StallingProxy {
  private readonly server = createNetServer((client) => {
    const upstream = createConnection(this.targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    const cleanup = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', cleanup).on('close', cleanup);
    upstream.on('error', cleanup).on('close', cleanup);
    client.pipe(upstream).pipe(client);
  });
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Stalls the newest connection (the watch, opened after the list's). */
  stallNewest(): void {
    const newest = [...this.pairs].at(-1);
    if (!newest) throw new Error('no connection to stall');
    newest.upstream.unpipe(newest.client);
    newest.upstream.pause();
  }

  async stop(): Promise<void> {
    this.server.close();
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }
}

describe('watch and health faults', () => {
  test('a watch whose connection stalls (TCP up, no bytes) is restarted by the watchdog and catches up', async () => {
    await namespace('inf-stall');
    const stalling = new StallingProxy(Number(new URL(cluster.cp.server).port));
    await stalling.start();
    const config = join(cluster.cp.dir, 'stalling.kubeconfig');
    writeFileSync(
      config,
      readFileSync(cluster.cp.kubeconfig, 'utf8').replace(
        cluster.cp.server,
        `https://127.0.0.1:${stalling.port}`,
      ),
    );
    const client = await clientFor(config);
    const informer = new Informer<V1ConfigMap>(client, {
      resource: ConfigMaps,
      namespace: 'inf-stall',
      logger: silentLogger,
      backoff: { baseMs: 50, maxMs: 200 },
      watchIdleTimeoutMs: 2000,
    });
    try {
      informer.start();
      await informer.synced;
      await new Promise((r) => setTimeout(r, 200));
      stalling.stallNewest();
      await cluster.client.create(ConfigMaps, cm('inf-stall', 'made-during-stall'));
      await waitFor('the ConfigMap made while the watch was stalled', () =>
        informer.get('inf-stall', 'made-during-stall'),
      );
      assert.ok(informer.stats.watchdogRestarts >= 1, JSON.stringify(informer.stats));
    } finally {
      await informer.stop();
      client.close();
      await stalling.stop();
    }
  });

  test('/readyz fails naming the informer while the API server is unreachable past the bound; /healthz stays 200', async () => {
    await namespace('health-cut');
    const client = await clientFor(join(cluster.cp.dir, 'proxied.kubeconfig'));
    const informers = new InformerFactory(client, silentLogger);
    informers.get('configmaps:health-cut', {
      resource: ConfigMaps,
      namespace: 'health-cut',
      backoff: { baseMs: 50, maxMs: 200 },
    });
    const port = await freePort();
    const manager = new Manager(client, informers, [], silentLogger, [], DEFAULT_CRD_CHECK, undefined, {
      ...DEFAULT_HEALTH,
      informerFailingMs: 1000,
      informerStalledMs: 1500,
      apiserverAnsweredWithinMs: 500,
      apiserverCheckMs: 200,
    });
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return `${res.status} ${await res.text()}`;
    };
    try {
      await manager.start({ port, host: '127.0.0.1' });
      assert.equal(await get('/readyz'), '200 ok');
      await waitFor('watch connection open', () => proxy.openConnections > 0);
      proxy.cut();
      await waitFor('/readyz 503', async () => (await get('/readyz')).startsWith('503'), {
        timeoutMs: 10_000,
      });
      assert.match(
        await get('/readyz'),
        /^503 informer configmaps:health-cut has failed to list\/watch for \d+\.\ds \(over 1\.0s\): /,
      );
      // Past the stall bound too: an outage is no reason to restart the process.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await get('/healthz'), '200 ok');
      assert.match(await manager.metrics(), /^regcred_ready 0$/m);
      proxy.restore();
      await waitFor('/readyz 200 again', async () => (await get('/readyz')) === '200 ok', {
        timeoutMs: 10_000,
      });
    } finally {
      proxy.restore();
      await manager.stop();
    }
  });
});

describe('operator process', () => {
  test('becomes ready once caches sync, serves metrics, and exits 0 on SIGTERM after draining', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src', 'main.ts'),
        '--health-port',
        String(port),
        '--health-host',
        '127.0.0.1',
        // The Pod webhook (its own e2e) would race other processes for port 9443.
        '--webhook-port',
        '0',
      ],
      {
        env: { ...process.env, KUBECONFIG: cluster.cp.kubeconfig, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let logs = '';
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(
        '/readyz 200',
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const healthz = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(healthz.status, 200);
      // Ready means every cache has listed; its watch requests are counted once their answers begin.
      let metrics = '';
      await waitFor(
        'a WATCH counted in /metrics',
        async () => {
          metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          return /^rest_client_requests_total\{code="200",method="WATCH",/m.test(metrics);
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      assert.match(metrics, /^regcred_ready 1$/m);
      assert.match(metrics, /regcred_workqueue_stale_reads_total\{queue="[^"]+"\} 0/);
      // prom-client: controller-runtime's, client-go's and the default process metrics, with values.
      for (const series of [
        /^controller_runtime_max_concurrent_reconciles\{controller="placeholder"\} 32$/m,
        /^controller_runtime_reconcile_errors_total\{controller="secretexport"\} 0$/m,
        /^controller_runtime_active_workers\{controller="secretimport"\} \d+$/m,
        /^workqueue_depth\{name="placeholder"\} \d+$/m,
        /^workqueue_adds_total\{name="placeholder"\} \d+$/m,
        /^rest_client_requests_total\{code="200",method="GET",host="[^"]+"\} [1-9]\d*$/m,
        /^rest_client_requests_total\{code="200",method="WATCH",host="[^"]+"\} [1-9]\d*$/m,
        /^rest_client_request_duration_seconds_count\{verb="GET",host="[^"]+"\} [1-9]\d*$/m,
        /^leader_election_master_status\{name="regcred-operator"\} 1$/m,
        /^regcred_placeholders_managed \d+$/m,
        /^regcred_secret_exports \d+$/m,
        /^process_cpu_user_seconds_total [\d.e+-]+$/m,
        /^nodejs_heap_size_used_bytes [1-9]\d*$/m,
      ])
        assert.match(metrics, series);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, logs);
      const lines = logs
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { message: string; level: string });
      assert.ok(
        lines.some((l) => l.message === 'stopped'),
        logs,
      );
      assert.ok(!lines.some((l) => l.level === 'error'), logs);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('rejects an unknown flag with a clear message and exit code 2', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'src', 'main.ts'), '--controllers', 'nope'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 2);
    assert.match(err, /unknown controller "nope"/);
  });
});

describe('missing CRDs', () => {
  const APP_CRD = 'apps.kappctrl.k14s.io';
  const appCrdFile = join(REPO_ROOT, 'crds', 'kappctrl.k14s.io_apps.yaml');
  const appsServed = async () => {
    const list = await cluster.client
      .request<{ resources?: Array<{ name: string }> }>('GET', '/apis/kappctrl.k14s.io/v1alpha1')
      .catch(() => undefined);
    return (list?.resources ?? []).some((r) => r.name === 'apps');
  };
  const deleteAppCrd = async () => {
    await cluster.kubectl(['delete', 'crd', APP_CRD, '--wait=true']);
    await waitFor('apps to leave discovery', async () => !(await appsServed()), { timeoutMs: 30_000 });
  };
  const installAppCrd = async () => {
    await cluster.kubectl(['apply', '-f', appCrdFile]);
    await cluster.kubectl(['wait', '--for=condition=Established', `crd/${APP_CRD}`, '--timeout=60s']);
    await waitFor('apps in discovery', appsServed, { timeoutMs: 30_000 });
  };

  test('a CRD deleted while running is logged and fails /readyz (naming it) until it is installed again', async () => {
    const port = await freePort();
    const logged: Array<{ level: string; message: string }> = [];
    const logger = {
      ...silentLogger,
      error: (message: string) => void logged.push({ level: 'error', message }),
      info: (message: string) => void logged.push({ level: 'info', message }),
      child: () => logger,
    };
    // A client of its own: stop() closes it for good.
    const client = await clientFor(cluster.cp.kubeconfig);
    const informers = new InformerFactory(client, silentLogger);
    const manager = new Manager(client, informers, [], logger, requiredCrds(['app']), {
      waitMs: 5000,
      intervalMs: 200,
      recheckMs: 300,
    });
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return { status: res.status, text: await res.text() };
    };
    const deleted =
      'CRD apps.kappctrl.k14s.io was deleted while running (needed by --controllers=app); ' +
      'those controllers wait until it is installed again, the others keep working';
    try {
      await manager.start({ port, host: '127.0.0.1' });
      assert.deepEqual(await readyz(), { status: 200, text: 'ok' });
      await deleteAppCrd();
      await waitFor('/readyz 503', async () => (await readyz()).status === 503, { timeoutMs: 10_000 });
      assert.deepEqual(await readyz(), { status: 503, text: deleted });
      assert.match(await manager.metrics(), /regcred_crd_missing\{crd="apps.kappctrl.k14s.io"\} 1/);
      assert.match(await manager.metrics(), /^regcred_ready 0$/m);
      assert.deepEqual(
        logged.filter((l) => l.level === 'error'),
        [{ level: 'error', message: deleted }],
      );
      await installAppCrd();
      await waitFor('/readyz 200 again', async () => (await readyz()).status === 200, { timeoutMs: 10_000 });
      assert.match(await manager.metrics(), /regcred_crd_missing\{crd="apps.kappctrl.k14s.io"\} 0/);
      assert.ok(logged.some((l) => l.message === 'CRD installed again'));
    } finally {
      await manager.stop();
      if (!(await appsServed())) await installAppCrd();
    }
  });

  test('with a CRD missing, the operator process exits non-zero within 60 s, naming the CRD and --controllers', async () => {
    await deleteAppCrd();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src', 'main.ts'),
        '--health-port',
        '0',
        '--health-host',
        '127.0.0.1',
        // The Pod webhook (its own e2e) would race other processes for port 9443.
        '--webhook-port',
        '0',
      ],
      {
        env: { ...process.env, KUBECONFIG: cluster.cp.kubeconfig, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let logs = '';
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const started = performance.now();
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      const code = await exited;
      const seconds = (performance.now() - started) / 1000;
      assert.equal(code, 1, `exit code; logs:\n${logs}`);
      assert.ok(seconds < 60, `exited after ${seconds} s`);
      const message =
        'CRD apps.kappctrl.k14s.io is not installed (needed by --controllers=packageinstall,app); ' +
        'install crds/ or leave "packageinstall", "app" out of --controllers';
      assert.ok(logs.includes(`regcred-operator: ${message}\n`), logs);
      const failed = logs
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { message: string; error?: string })
        .find((l) => l.message === 'operator failed to start');
      assert.equal(failed?.error, message, logs);
    } finally {
      clearTimeout(timeout);
      child.kill('SIGKILL');
      await installAppCrd();
    }
  });
});

describe('the framework API, made safe', () => {
  // A controller written in @dot-i/k8s-operator's own style: watchResource,
  // handleResourceFinalizer and patchResourceStatus, served by the
  // replacements in ControllerOperator.
  class FrameworkStyleOperator extends ControllerOperator {
    readonly seen: string[] = [];
    readonly cleanedUp: string[] = [];

    protected async init(): Promise<void> {
      await this.watchResource('secretgen.carvel.dev', 'v1alpha1', 'secretimports', async (event) => {
        this.seen.push(`${event.type} ${event.meta.name}`);
        const done = await this.handleResourceFinalizer(event, 'example.com/cleanup', async (e) => {
          this.cleanedUp.push(e.meta.name);
        });
        if (done || event.type === ResourceEventType.Deleted) return;
        await this.patchResourceStatus(event.meta, {
          friendlyDescription: `seen generation ${event.object.metadata?.generation}`,
        });
      });
    }

    protected async reconcile(): Promise<void> {}
  }

  test('adds its finalizer beside a foreign one, runs the delete action, and removes only its own', async () => {
    await namespace('fw');
    const ctx = {
      client: cluster.client,
      informers: new InformerFactory(cluster.client, silentLogger),
      events: new EventRecorder(cluster.client, silentLogger),
      logger: silentLogger,
      concurrency: 2,
      resyncPeriodMs: 0,
    };
    process.env.KUBECONFIG = cluster.cp.kubeconfig;
    const op = new FrameworkStyleOperator(ctx, 'framework-style');
    await op.start();
    ctx.informers.start();
    await ctx.informers.waitForSync();
    // As the manager does once the caches synced (and, with leader election, once this replica leads).
    op.runWorkers();
    const imports: ResourceType = {
      group: 'secretgen.carvel.dev',
      version: 'v1alpha1',
      plural: 'secretimports',
      kind: 'SecretImport',
      namespaced: true,
    };
    await cluster.client.create(imports, {
      apiVersion: 'secretgen.carvel.dev/v1alpha1',
      kind: 'SecretImport',
      metadata: { namespace: 'fw', name: 'x', finalizers: ['someone.else/keep'] },
      spec: { fromNamespace: 'elsewhere' },
    } as KubernetesObject);
    type WithStatus = KubernetesObject & { status?: { friendlyDescription?: string } };
    const ready = await waitFor('finalizer added and status written', async () => {
      const o = await cluster.client.get<WithStatus>(imports, 'fw', 'x');
      return o?.metadata?.finalizers?.includes('example.com/cleanup') && o.status?.friendlyDescription
        ? o
        : undefined;
    });
    assert.deepEqual(ready.metadata?.finalizers, ['someone.else/keep', 'example.com/cleanup']);
    assert.equal(ready.status?.friendlyDescription, 'seen generation 1');
    await cluster.client.delete(imports, 'fw', 'x');
    await waitFor('delete action ran', () => op.cleanedUp.includes('x'));
    const remaining = await waitFor('only the foreign finalizer left', async () => {
      const o = await cluster.client.get(imports, 'fw', 'x');
      return o?.metadata?.finalizers?.length === 1 ? o : undefined;
    });
    assert.deepEqual(remaining.metadata?.finalizers, ['someone.else/keep']);
    await cluster.client.jsonPatch(imports, 'fw', 'x', [{ op: 'remove', path: '/metadata/finalizers' }]);
    await waitFor('object gone', async () => (await cluster.client.get(imports, 'fw', 'x')) === undefined);
    await ctx.informers.stop();
    await op.stop();
  });
});
