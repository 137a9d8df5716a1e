// npm run bench [-- --operator-args "--concurrency 16" --namespaces 1000 --new-namespaces 100 --idle-seconds 60 --unrelated-secrets 10000
//                  --references 2000 --only policy]
// Secret-sharing benchmarks against a real local control plane (etcd with
// fsync on). The operator runs as its own process (`node dist/src/main.js`,
// spawned directly, no npm wrapper), so the RSS read from /proc/<pid>/status
// is its own. Results: a table on stdout and JSON in .bench-results/.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import { clientFor, REPO_ROOT } from '../e2e/harness/cluster.js';
import { freePort, startControlPlane, type ControlPlane } from '../e2e/harness/control-plane.js';
import { Informer } from '../src/runtime/informer.js';
import { isAlreadyExists, type KubeClient } from '../src/runtime/kube-client.js';
import { silentLogger } from '../src/runtime/logger.js';
import { Apps } from '../src/packaging/controllers/resources.js';
import { RegistryTokens } from '../src/cloud/controllers/registry-token.js';
import { startGcpFake, type GcpFake } from '../e2e/fixtures/cloud/gcp-fake.js';
import {
  NamespacesResource,
  SecretExports,
  SecretImports,
  SecretsResource,
  ServiceAccountsResource,
} from '../src/shared-informers.js';
import { ImagePullSecretPolicies } from '../src/pods/controllers/image-pull-secret-policy.js';

const { values: args } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '1000' },
    'new-namespaces': { type: 'string', default: '100' },
    'idle-seconds': { type: 'string', default: '60' },
    'unrelated-secrets': { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '32' },
    references: { type: 'string', default: '2000' },
    /** V8 flags for the operator process, space-separated (e.g. what the Deployment sets). */
    'operator-node-flags': { type: 'string' },
    /** Extra operator flags, space-separated (e.g. "--concurrency 16"); the operator's defaults otherwise. */
    'operator-args': { type: 'string', default: '' },
    /** Directory for heap snapshots of the operator, taken after the idle and the references phases. */
    'heap-snapshots': { type: 'string', default: '' },
    /**
     * Run one phase only: "sharing" (floor, rotation and RegistryToken renewal), "policy"
     * (ImagePullSecretPolicy convergence) or "webhook" (Pod admission latency).
     */
    only: { type: 'string', default: '' },
    /** Pod admission requests per second sent straight to the webhook, and for how long. */
    'webhook-rate': { type: 'string', default: '100' },
    'webhook-seconds': { type: 'string', default: '20' },
    /** Same as --only webhook. */
    'webhook-only': { type: 'boolean', default: false },
  },
});
const ONLY = args['webhook-only'] ? 'webhook' : args.only;
if (!['', 'sharing', 'policy', 'webhook'].includes(ONLY))
  throw new Error(`--only takes "sharing", "policy" or "webhook", not ${JSON.stringify(ONLY)}`);
const N = Number(args.namespaces);
const NEW_NS = Number(args['new-namespaces']);
const IDLE_S = Number(args['idle-seconds']);
const UNRELATED = Number(args['unrelated-secrets']);
const CONCURRENCY = Number(args.concurrency);
const REFERENCES = Number(args.references);
// By default the operator runs with the node flags of `npm start` (and of the image).
const OPERATOR_NODE_FLAGS = (args['operator-node-flags'] ?? startScriptNodeFlags())
  .split(' ')
  .filter(Boolean);
const HEAP_SNAPSHOTS = args['heap-snapshots'];
const OPERATOR_ARGS = args['operator-args'].split(' ').filter(Boolean);

/** The node flags between `node` and the script in package.json's start script. */
function startScriptNodeFlags(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const m = /^node((?: --\S+)*) dist\/src\/main\.js$/.exec(pkg.scripts.start);
  if (!m) throw new Error(`package.json start script has an unexpected shape: ${pkg.scripts.start}`);
  return m[1]!.trim();
}

const log = (line: string) => console.error(`[bench] ${line}`);
const ms = (t: number) => Math.round(t * 10) / 10;
/** Two decimals: 1.47 and 1.53 must not both print as 1.5 against a 1.5 target. */
const ratio = (x: number) => Math.round(x * 100) / 100;
/** The middle item by `value` (the upper middle of an even count). */
function medianBy<T>(items: readonly T[], value: (item: T) => number): T {
  return [...items].sort((a, b) => value(a) - value(b))[Math.floor(items.length / 2)]!;
}
const b64 = (s: string) => Buffer.from(s).toString('base64');
const dockerconfig = (password: string) =>
  JSON.stringify({ auths: { 'registry.bench.local': { username: 'bench', password } } });
const STATUS = 'secretgen.carvel.dev/status';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Which password each placeholder holds, from a watch (one observer for operator and floor alike). */
class PlaceholderObserver {
  readonly informer: Informer<V1Secret>;
  private waiters: Array<{
    password: string;
    names: Set<string>;
    times: number[];
    start: number;
    done: () => void;
  }> = [];

  constructor(client: KubeClient) {
    this.informer = new Informer<V1Secret>(client, {
      resource: SecretsResource,
      fieldSelector: 'type=kubernetes.io/dockerconfigjson',
      labelSelector: 'bench=placeholder',
      logger: silentLogger,
    });
    const check = (s: V1Secret) => {
      const pw = passwordOf(s);
      const key = `${s.metadata!.namespace}/${s.metadata!.name}`;
      for (const w of this.waiters) {
        if (pw === w.password && w.names.delete(key)) {
          w.times.push(performance.now() - w.start);
          if (w.names.size === 0) w.done();
        }
      }
    };
    this.informer.addHandlers({ onAdd: check, onUpdate: (_o, s) => check(s) });
  }

  /** Resolves with per-placeholder latencies (ms after `start`) once every key holds `password`. */
  waitAll(keys: string[], password: string, start: number): Promise<number[]> {
    const names = new Set(keys.filter((k) => passwordOf(this.informer.getByKey(k)) !== password));
    const times: number[] = new Array<number>(keys.length - names.size).fill(0);
    if (names.size === 0) return Promise.resolve(times);
    return new Promise((resolve) => {
      const w = { password, names, times, start, done: () => resolve(times) };
      this.waiters.push(w);
    });
  }
}

function passwordOf(s: V1Secret | undefined): string | undefined {
  const raw = s?.data?.['.dockerconfigjson'];
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64').toString()) as {
      auths?: Record<string, { password?: string }>;
    };
    return parsed.auths?.['registry.bench.local']?.password;
  } catch {
    return undefined;
  }
}

interface OperatorProcess {
  child: ChildProcess;
  port: number;
  metrics(): Promise<Record<string, number>>;
  metricsText(): Promise<string>;
  rssMb(): number;
  /** User + system CPU time the process has used so far, in ms (10 ms resolution). */
  cpuMs(): number;
  /** Writes a heap snapshot when --heap-snapshots is set (waits for the file). */
  heapSnapshot(label: string): Promise<void>;
  stop(): Promise<void>;
}

async function startOperatorProcess(kubeconfig: string, extraArgs: string[] = []): Promise<OperatorProcess> {
  const port = await freePort();
  const snapshotFlags = HEAP_SNAPSHOTS
    ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_SNAPSHOTS}`]
    : [];
  const child = spawn(
    process.execPath,
    [
      ...OPERATOR_NODE_FLAGS,
      ...snapshotFlags,
      join(REPO_ROOT, 'dist', 'src', 'main.js'),
      '--kubeconfig',
      kubeconfig,
      '--health-port',
      String(port),
      '--health-host',
      '127.0.0.1',
      // The Pod webhook (its own e2e) would race other processes for port 9443.
      '--webhook-port',
      '0',
      '--log-level',
      'warn',
      ...OPERATOR_ARGS,
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('operator did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    port,
    async metricsText() {
      return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    },
    async metrics() {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/^regcred_api_requests_total\{verb="([^"]+)"\} (\d+)$/gm))
        out[m[1]!] = Number(m[2]);
      // Reconciles by controller, all results together: `reconcile:<controller>`.
      for (const m of text.matchAll(/^controller_runtime_reconcile_total\{([^}]*)\} (\d+)$/gm)) {
        const controller = /controller="([^"]+)"/.exec(m[1]!)?.[1];
        if (controller) out[`reconcile:${controller}`] = (out[`reconcile:${controller}`] ?? 0) + Number(m[2]);
      }
      // Garbage collections by kind (minor, major, incremental, weakcb): `gc:<kind>` and `gcMs:<kind>`.
      for (const m of text.matchAll(/^nodejs_gc_duration_seconds_(count|sum)\{kind="([^"]+)"\} (\S+)$/gm))
        out[m[1] === 'count' ? `gc:${m[2]}` : `gcMs:${m[2]}`] =
          m[1] === 'count' ? Number(m[3]) : Number(m[3]) * 1000;
      return out;
    },
    cpuMs() {
      // /proc/<pid>/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised name.
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10;
    },
    rssMb() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
    },
    async heapSnapshot(label: string) {
      if (!HEAP_SNAPSHOTS) return;
      const before = new Set(readdirSync(HEAP_SNAPSHOTS));
      child.kill('SIGUSR2');
      let file: string | undefined;
      for (let i = 0; i < 600 && !file; i++) {
        await new Promise((r) => setTimeout(r, 500));
        file = readdirSync(HEAP_SNAPSHOTS).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
      }
      // Written in one go once it appears complete (size stable).
      if (file) {
        let size = -1;
        while (size !== statSync(join(HEAP_SNAPSHOTS, file)).size) {
          size = statSync(join(HEAP_SNAPSHOTS, file)).size;
          await new Promise((r) => setTimeout(r, 1000));
        }
        renameSync(join(HEAP_SNAPSHOTS, file), join(HEAP_SNAPSHOTS, `${label}.heapsnapshot`));
        log(`heap snapshot: ${join(HEAP_SNAPSHOTS, `${label}.heapsnapshot`)}`);
      }
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const sleep = (msToWait: number) => new Promise((r) => setTimeout(r, msToWait));

/** Median of RSS samples taken every 500 ms for `seconds` (RSS moves with garbage collection). */
async function rssMedian(op: OperatorProcess, seconds: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < seconds * 2; i++) {
    samples.push(op.rssMb());
    await sleep(500);
  }
  return medianBy(samples, (x) => x);
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

/**
 * A fresh operator process with one SecretExport and one placeholder in the
 * cluster: its RSS once the placeholder is filled and it has been idle a while.
 * The objects are removed afterwards so later phases count only their own.
 */
async function measureIdleOperator(client: KubeClient, kubeconfig: string): Promise<Record<string, number>> {
  await client.create(NamespacesResource, namespace('bench-idle-src'));
  await client.create(NamespacesResource, namespace('bench-idle-dst'));
  await client.create(SecretsResource, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'creds', namespace: 'bench-idle-src' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': b64(dockerconfig('idle')) },
  });
  await client.create(SecretExports, {
    apiVersion: 'secretgen.carvel.dev/v1alpha1',
    kind: 'SecretExport',
    metadata: { name: 'creds', namespace: 'bench-idle-src' },
    spec: { toNamespace: 'bench-idle-dst' },
  });
  await client.create(SecretsResource, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'pull',
      namespace: 'bench-idle-dst',
      annotations: { 'secretgen.carvel.dev/image-pull-secret': '' },
    },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': b64('{}') },
  });
  const op = await startOperatorProcess(kubeconfig);
  try {
    const rssAtReady = op.rssMb();
    await waitUntil('the idle placeholder to be filled', 60_000, async () =>
      passwordOf(await client.get<V1Secret>(SecretsResource, 'bench-idle-dst', 'pull')) === 'idle'
        ? true
        : false,
    );
    await sleep(10_000);
    const rss = await rssMedian(op, 10);
    await op.heapSnapshot('idle-one-export-one-placeholder');
    return { rssAtReadyMb: ms(rssAtReady), rssIdleMb: ms(rss) };
  } finally {
    await op.stop();
    await client.delete(SecretExports, 'bench-idle-src', 'creds');
    await client.delete(SecretsResource, 'bench-idle-dst', 'pull');
    await client.delete(SecretsResource, 'bench-idle-src', 'creds');
  }
}

/**
 * RSS growth while `count` SecretImports and `count` Apps each name a
 * distinct Secret (the Apps' Secrets exist; the imports have no export, so
 * each reports a failure). Memory and API connections must not grow per name.
 */
async function measureReferences(
  op: OperatorProcess,
  client: KubeClient,
  count: number,
): Promise<Record<string, number>> {
  const rssBefore = await rssMedian(op, 5);
  const heapBefore = heapOf(await op.metricsText());
  const watchesBefore = (await op.metrics()).WATCH ?? 0;
  let rssPeak = rssBefore;
  const peakTimer = setInterval(() => (rssPeak = Math.max(rssPeak, op.rssMb())), 250);
  await client.create(NamespacesResource, namespace('bench-refs'));
  const indexes = Array.from({ length: count }, (_, i) => i);
  const started = performance.now();
  await pool(indexes, CONCURRENCY, async (i) => {
    await client.create(SecretsResource, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `files-${i}`, namespace: 'bench-refs' },
      type: 'Opaque',
      data: { 'values.yml': b64(`index: ${i}\n`) },
    });
    await client.create(SecretImports, {
      apiVersion: 'secretgen.carvel.dev/v1alpha1',
      kind: 'SecretImport',
      metadata: { name: `import-${i}`, namespace: 'bench-refs' },
      spec: { fromNamespace: 'bench-refs-src' },
    });
    await client.create(Apps, {
      apiVersion: 'kappctrl.k14s.io/v1alpha1',
      kind: 'App',
      metadata: { name: `app-${i}`, namespace: 'bench-refs' },
      spec: {
        serviceAccountName: 'default',
        fetch: [{ inline: { pathsFrom: [{ secretRef: { name: `files-${i}` } }] } }],
        template: [{ ytt: {} }],
        deploy: [{ kapp: {} }],
      },
    });
  });
  const hasStatus = (items: Array<{ status?: { conditions?: unknown[] } }>) =>
    items.filter((o) => (o.status?.conditions?.length ?? 0) > 0).length;
  const listAll = async (rt: typeof Apps) => {
    const items: Array<{ status?: { conditions?: unknown[] } }> = [];
    let cont: string | undefined;
    do {
      const page = await client.list<{ status?: { conditions?: unknown[] } } & V1Secret>(rt, {
        namespace: 'bench-refs',
        limit: 500,
        continue: cont,
      });
      items.push(...page.items);
      cont = page.continue;
    } while (cont);
    return items;
  };
  await waitUntil(`${count} SecretImports and ${count} Apps to report a status`, 600_000, async () => {
    const [imports, apps] = await Promise.all([listAll(SecretImports), listAll(Apps)]);
    return hasStatus(imports) === count && hasStatus(apps) === count;
  });
  const convergedS = (performance.now() - started) / 1000;
  // Steady state, as for the "before" figure: V8 gives back pages freed by the burst only once the
  // process has been quiet a while (its memory reducer), so RSS right after convergence overstates it.
  await sleep(5000);
  clearInterval(peakTimer);
  const rssSoonAfter = await rssMedian(op, 5);
  await sleep(20_000);
  const rssAfter = await rssMedian(op, 10);
  const heapAfter = heapOf(await op.metricsText());
  const watchesAfter = (await op.metrics()).WATCH ?? 0;
  await op.heapSnapshot(`after-${count}-imports-${count}-apps`);
  return {
    objects: 2 * count,
    rssBeforeMb: ms(rssBefore),
    rssAfterMb: ms(rssAfter),
    rssSoonAfterMb: ms(rssSoonAfter),
    rssPeakMb: ms(rssPeak),
    growthMb: ms(rssAfter - rssBefore),
    heapUsedBeforeMb: heapBefore.usedMb,
    heapUsedAfterMb: heapAfter.usedMb,
    heapTotalBeforeMb: heapBefore.totalMb,
    heapTotalAfterMb: heapAfter.totalMb,
    watchRequests: watchesAfter - watchesBefore,
    convergedSeconds: ms(convergedS),
  };
}

/** V8 heap in use and reserved, from prom-client's default metrics: what of an RSS change is heap. */
function heapOf(metricsText: string): { usedMb: number; totalMb: number } {
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metricsText)?.[1] ?? NaN);
  return {
    usedMb: ms(value('nodejs_heap_size_used_bytes') / 2 ** 20),
    totalMb: ms(value('nodejs_heap_size_total_bytes') / 2 ** 20),
  };
}

/** Garbage collections between two metrics reads: "minor 120 / 95 ms, major 3 / 40 ms". */
function gcBetween(before: Record<string, number>, after: Record<string, number>): string {
  return ['minor', 'major']
    .map((kind) => {
      const count = (after[`gc:${kind}`] ?? 0) - (before[`gc:${kind}`] ?? 0);
      const msSpent = Math.round((after[`gcMs:${kind}`] ?? 0) - (before[`gcMs:${kind}`] ?? 0));
      return `${kind} ${count} / ${msSpent} ms`;
    })
    .join(', ');
}

const writesOf = (m: Record<string, number>) =>
  Object.entries(m)
    .filter(([verb]) => /^(POST|PUT|PATCH|DELETE)/.test(verb))
    .reduce((sum, [, n]) => sum + n, 0);

/** Which imagePullSecrets each bench ServiceAccount lists, from a watch (operator and floor alike). */
class ServiceAccountObserver {
  readonly informer: Informer<V1ServiceAccount>;
  private waiters: Array<{
    name: string;
    keys: Set<string>;
    times: number[];
    start: number;
    done: () => void;
  }> = [];

  constructor(client: KubeClient) {
    this.informer = new Informer<V1ServiceAccount>(client, {
      resource: ServiceAccountsResource,
      labelSelector: 'bench=sa',
      logger: silentLogger,
    });
    const check = (sa: V1ServiceAccount) => {
      const key = `${sa.metadata!.namespace}/${sa.metadata!.name}`;
      for (const w of this.waiters) {
        if (sa.imagePullSecrets?.some((e) => e.name === w.name) && w.keys.delete(key)) {
          w.times.push(performance.now() - w.start);
          if (w.keys.size === 0) w.done();
        }
      }
    };
    this.informer.addHandlers({ onAdd: check, onUpdate: (_o, sa) => check(sa) });
  }

  /** Resolves with per-ServiceAccount latencies once every key lists `name`. */
  waitAll(keys: string[], name: string, start: number): Promise<number[]> {
    return new Promise((resolve) => {
      const w = { name, keys: new Set(keys), times: [] as number[], start, done: () => resolve(w.times) };
      this.waiters.push(w);
    });
  }
}

/** One rotation or renewal round: when placeholders got it, and what the operator spent on it. */
interface FanOutRound {
  round: number;
  p50Ms: number;
  p100Ms: number;
  apiWrites: number;
  operatorCpuMs: number;
  operatorGc: string;
}

/**
 * Reads the operator's counters before a fan-out round; `end`, called once the round's trailing
 * writes have landed, reads them again, logs the round and returns it.
 */
async function operatorRound(
  operator: OperatorProcess,
  round: number,
): Promise<{ end(times: number[]): Promise<FanOutRound> }> {
  const metricsBefore = await operator.metrics();
  const cpuBefore = operator.cpuMs();
  return {
    async end(times) {
      const metricsAfter = await operator.metrics();
      const sorted = [...times].sort((a, b) => a - b);
      const entry: FanOutRound = {
        round,
        p50Ms: ms(percentile(sorted, 50)),
        p100Ms: ms(percentile(sorted, 100)),
        apiWrites: writesOf(metricsAfter) - writesOf(metricsBefore),
        operatorCpuMs: operator.cpuMs() - cpuBefore,
        operatorGc: gcBetween(metricsBefore, metricsAfter),
      };
      log(
        `  round ${round}: p50 ${entry.p50Ms} ms, p100 ${entry.p100Ms} ms, ${entry.apiWrites} writes, ${entry.operatorCpuMs} ms CPU, GC ${entry.operatorGc}`,
      );
      return entry;
    },
  };
}

interface PolicyResult {
  floorMs: number;
  floorRoundsMs: number[];
  p50Ms: number;
  p100Ms: number;
  vsFloor: number;
  apiWrites: number;
  reconciles: number;
}

/**
 * ImagePullSecretPolicy convergence: N labelled namespaces with one
 * ServiceAccount each. The floor is a raw client doing the same writes (create
 * the placeholder, then JSON-patch the ServiceAccount; median of 3 rounds) at the same
 * concurrency; the operator's time runs from the policy's creation until every
 * ServiceAccount lists the placeholder (each namespace's placeholder is
 * created before its ServiceAccount is patched). Both are observed by one watch.
 */
async function measurePolicy(
  client: KubeClient,
  startOperator: () => Promise<OperatorProcess>,
): Promise<PolicyResult> {
  const names = Array.from({ length: N }, (_, i) => `bench-pol-${String(i).padStart(5, '0')}`);
  const keys = names.map((ns) => `${ns}/app`);
  await pool(names, CONCURRENCY, async (ns) => {
    await client.create(NamespacesResource, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'bench-policy': 'true' } },
    });
    await client.create(ServiceAccountsResource, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'app', namespace: ns, labels: { bench: 'sa' } },
    });
  });
  const observer = new ServiceAccountObserver(client);
  observer.informer.start();
  await observer.informer.synced;
  // The same Secret the policy creates, without the placeholder annotation: the placeholder controller
  // (when running) must not fill the floor's copies while the policy is measured.
  const placeholder = (ns: string, name: string): V1Secret => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, labels: { bench: 'floor' } },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': b64('{}') },
  });
  try {
    // Three rounds, each with Secrets of its own name, and the median is the floor: one round moves a lot.
    log(
      `policy floor: ${N} placeholder creates + ${N} ServiceAccount patches at concurrency ${CONCURRENCY}, 3 rounds`,
    );
    const floorRoundsMs: number[] = [];
    for (const round of [1, 2, 3]) {
      const secretName = `floor-pull-${round}`;
      const floorStart = performance.now();
      const floorObserved = observer.waitAll(keys, secretName, floorStart);
      await pool(names, CONCURRENCY, async (ns) => {
        await client.create(SecretsResource, placeholder(ns, secretName));
        await client.jsonPatch(ServiceAccountsResource, ns, 'app', [
          { op: 'add', path: '/imagePullSecrets', value: [{ name: secretName }] },
        ]);
      });
      floorRoundsMs.push(ms(Math.max(...(await floorObserved))));
      log(`  round ${round}: ${floorRoundsMs.at(-1)} ms`);
      await sleep(1500);
    }
    const floorMs = medianBy(floorRoundsMs, (x) => x);

    const operator = await startOperator();
    // Startup reconciles every namespace once (thousands in a full run): the clock starts after them.
    await waitUntil('the policy operator to finish its startup reconciles', 60_000, async () => {
      const text = await operator.metricsText();
      const depth = [...text.matchAll(/^workqueue_depth\{[^}]*\} (\d+)$/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
      const busy = [...text.matchAll(/^controller_runtime_active_workers\{[^}]*\} (\d+)$/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
      return depth === 0 && busy === 0;
    });
    const metricsBefore = await operator.metrics();
    const before = writesOf(metricsBefore);
    log(`policy: one ImagePullSecretPolicy selecting ${N} namespaces`);
    const start = performance.now();
    const observed = observer.waitAll(keys, 'policy-pull', start);
    await client.create(ImagePullSecretPolicies, {
      apiVersion: 'regcred.dev/v1alpha1',
      kind: 'ImagePullSecretPolicy',
      metadata: { name: 'bench' },
      spec: { secretName: 'policy-pull', namespaceSelector: { matchLabels: { 'bench-policy': 'true' } } },
    });
    const times = (await observed).sort((a, b) => a - b);
    await sleep(1500); // trailing writes (the policy status) land before counting
    const metricsAfter = await operator.metrics();
    const writes = writesOf(metricsAfter) - before;
    const reconcileKey = 'reconcile:imagepullsecretpolicy';
    const reconciles = (metricsAfter[reconcileKey] ?? 0) - (metricsBefore[reconcileKey] ?? 0);
    const p100 = percentile(times, 100);
    return {
      floorMs: ms(floorMs),
      floorRoundsMs,
      p50Ms: ms(percentile(times, 50)),
      p100Ms: ms(p100),
      vsFloor: ratio(p100 / floorMs),
      apiWrites: writes,
      reconciles,
    };
  } finally {
    await observer.informer.stop();
  }
}

/**
 * Pod webhook latency at a steady rate: AdmissionReview requests for Pods of a
 * selected namespace sent straight to the webhook over HTTPS (keep-alive, as
 * the API server does), timed end to end by the client and server-side by
 * regcred_webhook_admission_duration_seconds; then Pods created through the
 * API server at the same rate, each checked for the entry.
 */
async function measureWebhook(client: KubeClient, kubeconfig: string): Promise<Record<string, number>> {
  const { Agent, request } = await import('node:https');
  const webhookPort = await freePort();
  const url = `https://127.0.0.1:${webhookPort}/mutate-pods`;
  const op = await startOperatorProcess(kubeconfig, [
    '--controllers',
    'placeholder',
    '--webhook-port',
    String(webhookPort),
    '--webhook-url',
    url,
  ]);
  try {
    await client.create(NamespacesResource, {
      ...namespace('bench-webhook'),
      metadata: { name: 'bench-webhook', labels: { 'bench-webhook': 'true' } },
    });
    // No controller manager here: the ServiceAccount every Pod needs is created by hand.
    await client.create(
      { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'bench-webhook' } },
    );
    await client.create(ImagePullSecretPolicies, {
      apiVersion: 'regcred.dev/v1alpha1',
      kind: 'ImagePullSecretPolicy',
      metadata: { name: 'bench-webhook' },
      spec: { secretName: 'regcred', namespaceSelector: { matchLabels: { 'bench-webhook': 'true' } } },
    });
    const hooks = {
      group: 'admissionregistration.k8s.io',
      version: 'v1',
      plural: 'mutatingwebhookconfigurations',
      kind: 'MutatingWebhookConfiguration',
      namespaced: false,
    };
    let ca = '';
    await waitUntil('webhook configured', 60_000, async () => {
      const c = await client.get<{ webhooks?: Array<{ clientConfig: { caBundle?: string } }> } & V1Secret>(
        hooks,
        undefined,
        'regcred-operator',
      );
      ca = Buffer.from(c?.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString();
      return ca !== '';
    });
    const agent = new Agent({ keepAlive: true, ca, maxSockets: 32 });
    const review = (i: number) =>
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `bench-${i}`,
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          operation: 'CREATE',
          namespace: 'bench-webhook',
          object: {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { generateName: 'p-' },
            spec: { containers: [{ name: 'c', image: 'r/i:1' }] },
          },
        },
      });
    const send = (i: number) =>
      new Promise<{ ms: number; mutated: boolean }>((resolve, reject) => {
        const started = performance.now();
        const req = request(
          url,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () =>
              resolve({
                ms: performance.now() - started,
                mutated: (JSON.parse(body) as { response: { patch?: string } }).response.patch !== undefined,
              }),
            );
          },
        );
        req.on('error', reject);
        req.end(review(i));
      });
    await waitUntil(
      'the policy reached the webhook',
      30_000,
      async () => (await send(-1).catch(() => ({ mutated: false }))).mutated,
    );
    const rate = Number(args['webhook-rate']);
    const total = rate * Number(args['webhook-seconds']);
    const metricsBefore = parseHistogram(await op.metricsText());
    const latencies: number[] = [];
    let mutated = 0;
    const startedAt = performance.now();
    const inFlight: Array<Promise<void>> = [];
    for (let i = 0; i < total; i++) {
      // Paced by the schedule, not by the answers: a slow answer does not slow the offered rate.
      const due = startedAt + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      inFlight.push(
        send(i).then((r) => {
          latencies.push(r.ms);
          if (r.mutated) mutated++;
        }),
      );
    }
    await Promise.all(inFlight);
    const seconds = (performance.now() - startedAt) / 1000;
    const server = histogramDelta(metricsBefore, parseHistogram(await op.metricsText()));
    agent.destroy();
    latencies.sort((a, b) => a - b);

    // Through the API server: Pods created at the same rate, each stored with the entry.
    const podTimes: number[] = [];
    let podsMutated = 0;
    const podCount = Math.min(total, rate * 5);
    const podStart = performance.now();
    const podCreates: Array<Promise<void>> = [];
    for (let i = 0; i < podCount; i++) {
      const wait = podStart + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      const t = performance.now();
      podCreates.push(
        client
          .create<V1Secret & { spec?: { imagePullSecrets?: Array<{ name: string }> } }>(
            { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
            {
              apiVersion: 'v1',
              kind: 'Pod',
              metadata: { name: `p-${i}`, namespace: 'bench-webhook' },
              spec: { containers: [{ name: 'c', image: 'r/i:1' }] },
            } as V1Secret,
          )
          .then((p) => {
            podTimes.push(performance.now() - t);
            if (p.spec?.imagePullSecrets?.some((s) => s.name === 'regcred')) podsMutated++;
          }),
      );
    }
    await Promise.all(podCreates);
    podTimes.sort((a, b) => a - b);
    // Left in place, the policy would give bench-webhook a placeholder once a later operator runs the
    // policy controller, and the rotation's export to "*" would fill it: N + 1 placeholders, not N.
    // This operator does not run that controller, so the policy has no finalizer and goes at once.
    await client.delete(ImagePullSecretPolicies, undefined, 'bench-webhook');
    return {
      requests: total,
      achievedRate: ms(total / seconds),
      mutated,
      clientP50Ms: ms(percentile(latencies, 50)),
      clientP99Ms: ms(percentile(latencies, 99)),
      clientMaxMs: ms(percentile(latencies, 100)),
      serverCount: server.count,
      serverMeanMs: ms((server.sum / Math.max(1, server.count)) * 1000),
      serverP99UpperBoundMs: server.p99UpperBoundSeconds * 1000,
      pods: podCount,
      podsMutated,
      podCreateP50Ms: ms(percentile(podTimes, 50)),
      podCreateP99Ms: ms(percentile(podTimes, 99)),
    };
  } finally {
    await op.stop();
  }
}

interface Histogram {
  buckets: Map<number, number>;
  count: number;
  sum: number;
}

function parseHistogram(text: string): Histogram {
  const name = 'regcred_webhook_admission_duration_seconds';
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    const bucket = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`).exec(line);
    if (bucket) buckets.set(bucket[1] === '+Inf' ? Infinity : Number(bucket[1]), Number(bucket[2]));
    if (line.startsWith(`${name}_count `)) count = Number(line.split(' ')[1]);
    if (line.startsWith(`${name}_sum `)) sum = Number(line.split(' ')[1]);
  }
  return { buckets, count, sum };
}

/** Requests observed between two scrapes, and the smallest bucket bound holding 99 % of them. */
function histogramDelta(
  before: Histogram,
  after: Histogram,
): { count: number; sum: number; p99UpperBoundSeconds: number } {
  const count = after.count - before.count;
  let p99UpperBoundSeconds = Infinity;
  for (const [le, n] of [...after.buckets].sort((a, b) => a[0] - b[0])) {
    if (n - (before.buckets.get(le) ?? 0) >= 0.99 * count) {
      p99UpperBoundSeconds = le;
      break;
    }
  }
  return { count, sum: after.sum - before.sum, p99UpperBoundSeconds };
}

function webhookRows(w: Record<string, number>): Array<[string, string, string]> {
  return [
    [
      `webhook: ${w.requests} reviews at ${w.achievedRate}/s, client p50 / p99`,
      `${w.clientP50Ms} / ${w.clientP99Ms} ms (${w.mutated} mutated)`,
      'p99 ≤ 5 ms',
    ],
    [
      'webhook: server-side mean / p99 bucket',
      `${w.serverMeanMs} ms / ≤ ${w.serverP99UpperBoundMs} ms (${w.serverCount} observed)`,
      'p99 ≤ 5 ms',
    ],
    [
      `webhook: ${w.pods} Pods via the API server, create p50 / p99`,
      `${w.podCreateP50Ms} / ${w.podCreateP99Ms} ms (${w.podsMutated} with the entry)`,
      '',
    ],
  ];
}

const REGISTRY_TOKEN_LIFETIME_S = 20;

/**
 * A RegistryToken (gcr, minted from the loopback metadata server) whose Secret is exported to "*"
 * replaces the rotated export; each round the metadata server hands out a new token, the
 * RegistryToken renews at half the 20 s lifetime, and the time from its Secret holding the new
 * token to every placeholder holding it is measured like a rotation (operator writes counted).
 */
async function measureRegistryToken(
  client: KubeClient,
  operator: OperatorProcess,
  observer: PlaceholderObserver,
  gcp: GcpFake,
  keys: string[],
): Promise<FanOutRound[]> {
  const OPERATOR_NS = 'regcred-operator';
  await client.delete(SecretExports, 'bench-src', 'creds');
  // The webhook phase's operator may have created its namespace already.
  await client
    .create(NamespacesResource, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NS } })
    .catch((err: unknown) => {
      if (!isAlreadyExists(err)) throw err;
    });
  await client.create(SecretsResource, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'regcred-operator-config', namespace: OPERATOR_NS },
    data: { iaasKeychainHosts: b64('gke=registry.bench.local') },
  });
  await client.create(RegistryTokens, {
    apiVersion: 'regcred.dev/v1alpha1',
    kind: 'RegistryToken',
    metadata: { name: 'cloud', namespace: OPERATOR_NS },
    spec: { provider: 'gcr', registry: 'registry.bench.local', secretName: 'cloud-creds' },
  });
  await client.create(SecretExports, {
    apiVersion: 'secretgen.carvel.dev/v1alpha1',
    kind: 'SecretExport',
    metadata: { name: 'cloud-creds', namespace: OPERATOR_NS },
    spec: { toNamespaces: ['*'] },
  });
  await observer.waitAll(keys, 'rt0', performance.now());
  // The clock of each round starts when a watch sees the renewed Secret, as the observer sees placeholders.
  const renewed = new Map<string, (at: number) => void>();
  const source = new Informer<V1Secret>(client, {
    resource: SecretsResource,
    namespace: OPERATOR_NS,
    fieldSelector: 'metadata.name=cloud-creds',
    logger: silentLogger,
  });
  const seen = (s: V1Secret) => renewed.get(passwordOf(s) ?? '')?.(performance.now());
  source.addHandlers({ onAdd: seen, onUpdate: (_o, s) => seen(s) });
  source.start();
  await source.synced;
  const rounds: FanOutRound[] = [];
  for (const round of [1, 2, 3]) {
    const password = `rt${round}`;
    const sourceChanged = new Promise<number>((resolve) => renewed.set(password, resolve));
    const measured = await operatorRound(operator, round);
    gcp.accessToken = password;
    let timer: NodeJS.Timeout | undefined;
    const start = await new Promise<number>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the RegistryToken did not renew with ${password} within 60 s`)),
        60_000,
      );
      void sourceChanged.then(resolve);
    }).finally(() => clearTimeout(timer));
    const times = await observer.waitAll(keys, password, start);
    await sleep(1500); // trailing writes (export and RegistryToken status)
    rounds.push(await measured.end(times));
  }
  await source.stop();
  // No renewals during the idle phase: the Secret and its export stay as they are.
  await client.delete(RegistryTokens, OPERATOR_NS, 'cloud');
  return rounds;
}

async function main(): Promise<void> {
  if (HEAP_SNAPSHOTS) mkdirSync(HEAP_SNAPSHOTS, { recursive: true });
  log('building dist/ (npm run build)');
  execFileSync('npm', ['run', '-s', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  const operatorToken = `bench-operator-${Date.now()}`;
  const cp: ControlPlane = await startControlPlane({ controllerManager: false, log }, [
    { name: 'operator', token: operatorToken, groups: ['system:masters'] },
  ]);
  const client = await clientFor(cp.kubeconfig);
  const results: Record<string, unknown> = {
    machine: { cores: (await import('node:os')).cpus().length, node: process.version },
    parameters: {
      operatorNodeFlags: OPERATOR_NODE_FLAGS.join(' '),
      operatorArgs: OPERATOR_ARGS.join(' '),
      namespaces: N,
      newNamespaces: NEW_NS,
      idleSeconds: IDLE_S,
      unrelatedSecrets: UNRELATED,
      concurrency: CONCURRENCY,
    },
  };
  let operator: OperatorProcess | undefined;
  let observer: PlaceholderObserver | undefined;
  // The RegistryToken row mints from a loopback GCE metadata server; the operator process inherits the variable.
  const gcp: GcpFake = await startGcpFake({
    accessToken: 'rt0',
    expiresInSeconds: REGISTRY_TOKEN_LIFETIME_S,
  });
  process.env.GCE_METADATA_HOST = gcp.metadataHost;
  try {
    execFileSync(
      cp.kubectlPath,
      ['--kubeconfig', cp.kubeconfig, 'apply', '-R', '-f', join(REPO_ROOT, 'crds')],
      { stdio: 'ignore' },
    );
    execFileSync(
      cp.kubectlPath,
      ['--kubeconfig', cp.kubeconfig, 'wait', '--for=condition=Established', 'crd', '--all'],
      {
        stdio: 'ignore',
      },
    );

    if (!ONLY || ONLY === 'webhook') {
      log(`Pod webhook: ${args['webhook-rate']} admission reviews/s for ${args['webhook-seconds']} s`);
      results.webhook = await measureWebhook(client, cp.kubeconfigFor('operator'));
      if (ONLY === 'webhook') {
        console.log('\nPod webhook benchmark');
        for (const [what, value, target] of webhookRows(results.webhook as Record<string, number>))
          console.log(`${what.padEnd(56)} ${value.padEnd(40)} ${target}`);
        console.log(`\nJSON: ${JSON.stringify(results)}`);
        return;
      }
    }

    if (!ONLY || ONLY === 'sharing') {
      if (!ONLY) {
        log('idle RSS: a fresh operator with one export and one placeholder');
        results.idleOperator = await measureIdleOperator(client, cp.kubeconfigFor('operator'));
      }

      log(`creating ${N} namespaces with one placeholder each`);
      const names = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
      const keys = names.map((ns) => `${ns}/pull`);
      const placeholder = (ns: string): V1Secret => ({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'pull',
          namespace: ns,
          labels: { bench: 'placeholder' },
          annotations: { 'secretgen.carvel.dev/image-pull-secret': '' },
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': b64('{}') },
      });
      await pool(names, CONCURRENCY, async (ns) => {
        await client.create(NamespacesResource, {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: ns },
        });
        await client.create(SecretsResource, placeholder(ns));
      });
      await client.create(NamespacesResource, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'bench-src' },
      });

      observer = new PlaceholderObserver(client);
      observer.informer.start();
      await observer.informer.synced;

      // Floor: a raw client (one keep-alive agent) writing what the operator will write, same concurrency.
      // Three rounds, like the rotation and the renewal: the floor moves between runs by ±10 %, and the
      // ratios compare medians with the median.
      log(`raw floor: ${N} PATCHes at concurrency ${CONCURRENCY}, 3 rounds`);
      {
        const rounds: Array<{ writesMs: number; observedP50Ms: number; observedP100Ms: number }> = [];
        for (const round of [1, 2, 3]) {
          const password = `floor${round}`;
          const start = performance.now();
          const observed = observer.waitAll(keys, password, start);
          await pool(names, CONCURRENCY, (ns) =>
            client.mergePatch(SecretsResource, ns, 'pull', {
              metadata: { annotations: { [STATUS]: `{"floor":${round}}` } },
              data: { '.dockerconfigjson': b64(dockerconfig(password)) },
            }),
          );
          const writesDone = performance.now() - start;
          const times = (await observed).sort((a, b) => a - b);
          rounds.push({
            writesMs: ms(writesDone),
            observedP50Ms: ms(percentile(times, 50)),
            observedP100Ms: ms(percentile(times, 100)),
          });
          log(`  round ${round}: p50 ${ms(percentile(times, 50))} ms, p100 ${ms(percentile(times, 100))} ms`);
          await sleep(1500);
        }
        results.floor = { writes: N, ...medianBy(rounds, (r) => r.observedP100Ms), rounds };
      }

      log('starting the operator process');
      await client.create(SecretsResource, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds', namespace: 'bench-src' },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': b64(dockerconfig('v0')) },
      });
      operator = await startOperatorProcess(cp.kubeconfigFor('operator'));
      const rssIdleEmpty = operator.rssMb();
      {
        const start = performance.now();
        const observed = observer.waitAll(keys, 'v0', start);
        await client.create(SecretExports, {
          apiVersion: 'secretgen.carvel.dev/v1alpha1',
          kind: 'SecretExport',
          metadata: { name: 'creds', namespace: 'bench-src' },
          spec: { toNamespaces: ['*'] },
        });
        const times = (await observed).sort((a, b) => a - b);
        results.initialFill = { p50Ms: ms(percentile(times, 50)), p100Ms: ms(percentile(times, 100)) };
      }

      log('rotation: change the source credential');
      for (const round of [1, 2, 3]) {
        const measured = await operatorRound(operator, round);
        const start = performance.now();
        const password = `v${round}`;
        const observed = observer.waitAll(keys, password, start);
        await client.mergePatch(SecretsResource, 'bench-src', 'creds', {
          data: { '.dockerconfigjson': b64(dockerconfig(password)) },
        });
        const times = await observed;
        await sleep(1500); // let trailing writes (export status) land before counting
        ((results.rotation ??= []) as FanOutRound[]).push(await measured.end(times));
      }

      // Before the new-namespace phase, so a renewal reaches the same N placeholders as the floor's writes.
      log('RegistryToken: each renewal of its exported Secret reaching all N placeholders');
      results.registryToken = await measureRegistryToken(client, operator, observer, gcp, keys);
      if (ONLY === 'sharing') {
        const file = writeResults(results);
        console.log(
          `\nSecret-sharing benchmark, fan-out only (N=${N} namespaces, concurrency ${CONCURRENCY})`,
        );
        for (const [what, value, target] of fanOutRows(results))
          console.log(`${what.padEnd(40)} ${value.padEnd(24)} ${target}`);
        console.log(`\nJSON: ${file}\n${JSON.stringify(results)}`);
        return;
      }

      log(`new namespace + placeholder → filled, ${NEW_NS} times`);
      {
        const latencies: number[] = [];
        for (let i = 0; i < NEW_NS; i++) {
          const ns = `bench-new-${i}`;
          const start = performance.now();
          // The RegistryToken phase replaced the first export; its last renewal (rt3) is what new namespaces get.
          const observed = observer.waitAll([`${ns}/pull`], 'rt3', start);
          await client.create(NamespacesResource, {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: ns },
          });
          await client.create(SecretsResource, placeholder(ns));
          latencies.push((await observed)[0]!);
        }
        latencies.sort((a, b) => a - b);
        results.newNamespace = {
          count: NEW_NS,
          p50Ms: ms(percentile(latencies, 50)),
          p95Ms: ms(percentile(latencies, 95)),
          maxMs: ms(percentile(latencies, 100)),
        };
      }

      log(`idle: operator writes over ${IDLE_S} s after convergence`);
      {
        await new Promise((r) => setTimeout(r, 2000));
        const before = writesOf(await operator.metrics());
        await new Promise((r) => setTimeout(r, IDLE_S * 1000));
        const writes = writesOf(await operator.metrics()) - before;
        results.idle = { seconds: IDLE_S, writes, writesPerMinute: ms((writes * 60) / IDLE_S) };
      }

      log(`memory: RSS before/after ${UNRELATED} unrelated 10 KB Opaque Secrets`);
      {
        // RSS moves with garbage collection; compare medians of samples taken over a few seconds.
        const op = operator;
        const rssBefore = await rssMedian(op, 5);
        let rssPeak = rssBefore;
        const peakTimer = setInterval(() => (rssPeak = Math.max(rssPeak, op.rssMb())), 250);
        await client.create(NamespacesResource, {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: 'bench-unrelated' },
        });
        const payload = b64('x'.repeat(10 * 1024));
        await pool(
          Array.from({ length: UNRELATED }, (_, i) => i),
          CONCURRENCY,
          (i) =>
            client.create(SecretsResource, {
              apiVersion: 'v1',
              kind: 'Secret',
              metadata: { name: `unrelated-${i}`, namespace: 'bench-unrelated' },
              type: 'Opaque',
              data: { blob: payload },
            }),
        );
        await new Promise((r) => setTimeout(r, 5000));
        clearInterval(peakTimer);
        const rssAfter = await rssMedian(op, 5);
        results.memory = {
          rssEmptyMb: ms(rssIdleEmpty),
          rssBeforeMb: ms(rssBefore),
          rssAfterMb: ms(rssAfter),
          rssPeakWhileCreatingMb: ms(rssPeak),
          growthMb: ms(rssAfter - rssBefore),
        };
      }

      log(`references: ${REFERENCES} SecretImports + ${REFERENCES} Apps, each naming a distinct Secret`);
      results.references = await measureReferences(operator, client, REFERENCES);
    }

    // The policy controller is measured on its own, in a process of its own: its writes against the same
    // writes by a raw client. In a full run the earlier phases' operator stops first: its 2,000 Apps keep
    // retrying fetches, and its placeholder controller would add a fill per policy placeholder.
    if (!ONLY && operator) {
      await operator.stop();
      operator = undefined;
    }
    const onlyPolicy = !OPERATOR_ARGS.includes('--controllers')
      ? ['--controllers', 'imagepullsecretpolicy']
      : [];
    results.policy = await measurePolicy(
      client,
      async () => (operator ??= await startOperatorProcess(cp.kubeconfigFor('operator'), onlyPolicy)),
    );
  } finally {
    await observer?.informer.stop();
    await operator?.stop();
    client.close();
    await cp.stop();
    await gcp.stop();
  }

  const policy = results.policy as PolicyResult;
  const policyRows: Array<[string, string, string]> = [
    ['policy raw floor: N creates + N SA patches (per round)', `${policy.floorRoundsMs.join(', ')} ms`, ''],
    ['policy raw floor (median round)', `${policy.floorMs} ms`, ''],
    ['policy converged (all N SAs list it)', `${policy.p100Ms} ms (p50 ${policy.p50Ms})`, ''],
    ['policy / floor', `${policy.vsFloor}×`, '≤ 1.5×'],
    ['policy API writes', `${policy.apiWrites}`, `2N + status = ${2 * N + 1}`],
    ['policy reconciles (namespaces and the policy)', `${policy.reconciles}`, ''],
  ];
  if (ONLY) {
    const file = writeResults(results);
    console.log(`\nImagePullSecretPolicy benchmark (N=${N} namespaces, concurrency ${CONCURRENCY})`);
    for (const [what, value, target] of policyRows)
      console.log(`${what.padEnd(40)} ${value.padEnd(24)} ${target}`);
    console.log(`\nJSON: ${file}\n${JSON.stringify(results)}`);
    return;
  }
  const sharingRows = fanOutRows(results);
  const file = writeResults(results);

  const n = results.newNamespace as { p50Ms: number; p95Ms: number };
  const idle = results.idle as { writesPerMinute: number };
  const mem = results.memory as { growthMb: number; rssBeforeMb: number; rssAfterMb: number };
  const idleOp = results.idleOperator as { rssIdleMb: number };
  const refs = results.references as Record<string, number>;
  const rows: Array<[string, string, string]> = [
    ...sharingRows,
    ['new namespace fill p50', `${n.p50Ms} ms`, '≤ 30 ms'],
    ['new namespace fill p95', `${n.p95Ms} ms`, '≤ 60 ms'],
    ['idle writes per minute', `${idle.writesPerMinute}`, '0'],
    ['RSS before → after unrelated Secrets', `${mem.rssBeforeMb} → ${mem.rssAfterMb} MB`, ''],
    ['RSS growth', `${mem.growthMb} MB`, '≤ 20 MB'],
    ['idle RSS, one export + one placeholder', `${idleOp.rssIdleMb} MB`, '≤ 100 MB'],
    [
      `RSS ${REFERENCES} imports + ${REFERENCES} Apps`,
      `${refs.rssBeforeMb} → ${refs.rssAfterMb} MB (peak ${refs.rssPeakMb})`,
      '',
    ],
    ['RSS growth with named Secrets', `${refs.growthMb} MB`, '≤ 50 MB'],
    [
      'V8 heap used / reserved, before → after',
      `${refs.heapUsedBeforeMb} / ${refs.heapTotalBeforeMb} → ${refs.heapUsedAfterMb} / ${refs.heapTotalAfterMb} MB`,
      '',
    ],
    ['WATCH requests while following them', `${refs.watchRequests}`, ''],
    ...policyRows,
    ...webhookRows(results.webhook as Record<string, number>),
  ];
  console.log(`\nSecret-sharing benchmark (N=${N} namespaces, concurrency ${CONCURRENCY})`);
  for (const [what, value, target] of rows) console.log(`${what.padEnd(40)} ${value.padEnd(24)} ${target}`);
  console.log(`\nJSON: ${file}\n${JSON.stringify(results)}`);
}

/** Floor, rotation and renewal rows; sets the ratios in `results` (the median round is what the target checks). */
function fanOutRows(results: Record<string, unknown>): Array<[string, string, string]> {
  const floor = results.floor as { observedP100Ms: number; rounds: Array<{ observedP100Ms: number }> };
  const median = (rounds: Array<{ p100Ms: number }>) => medianBy(rounds, (r) => r.p100Ms).p100Ms;
  const rotation = results.rotation as FanOutRound[];
  const medianRotation = median(rotation);
  results.rotationVsFloor = ratio(medianRotation / floor.observedP100Ms);
  const tokenRounds = results.registryToken as FanOutRound[];
  results.registryTokenVsFloor = ratio(median(tokenRounds) / floor.observedP100Ms);
  return [
    [
      'raw floor: N PATCHes observed (p100 per round)',
      floor.rounds.map((r) => `${r.observedP100Ms}`).join(', ') + ' ms',
      '',
    ],
    ['raw floor (median round)', `${floor.observedP100Ms} ms`, ''],
    ['rotation reaches all N (p100 per round)', rotation.map((r) => `${r.p100Ms}`).join(', ') + ' ms', ''],
    ['rotation reaches all N (median round)', `${medianRotation} ms`, ''],
    ['rotation (median round) / floor', `${String(results.rotationVsFloor)}×`, '≤ 1.5×'],
    ['rotation API writes (per round)', rotation.map((r) => r.apiWrites).join(', '), `N + 1 = ${N + 1}`],
    ['operator CPU per rotation round', rotation.map((r) => r.operatorCpuMs).join(', ') + ' ms', ''],
    ['operator GC per rotation round', rotation.map((r) => r.operatorGc).join('; '), ''],
    [
      'RegistryToken renewal reaches all N (p100 per round)',
      tokenRounds.map((r) => `${r.p100Ms}`).join(', ') + ' ms',
      '',
    ],
    ['RegistryToken renewal (median round) / floor', `${String(results.registryTokenVsFloor)}×`, '≤ 1.5×'],
    // Every placeholder, the RegistryToken's Secret, status and Event, and the export's status.
    ['RegistryToken renewal API writes', tokenRounds.map((r) => r.apiWrites).join(', '), `N + 4 = ${N + 4}`],
    // From before the wait for the renewal (up to 10 s of idle work) to 1.5 s after the last placeholder.
    ['operator CPU per renewal round', tokenRounds.map((r) => r.operatorCpuMs).join(', ') + ' ms', ''],
    ['operator GC per renewal round', tokenRounds.map((r) => r.operatorGc).join('; '), ''],
  ];
}

function writeResults(results: Record<string, unknown>): string {
  mkdirSync(join(REPO_ROOT, '.bench-results'), { recursive: true });
  const file = join(
    REPO_ROOT,
    '.bench-results',
    `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  writeFileSync(file, JSON.stringify(results, null, 2));
  return file;
}

await main();
