// npm run soak [-- --duration 30m --seed N --report FILE --fault-interval 60-180 --faults a,b
//                 --warmup 3m --operator-node-flags "..."]
// A long churn against a real local control plane (etcd, kube-apiserver,
// kube-controller-manager) and a real registry, with the operator as its own
// process (the node flags of `npm start`) reaching both through loopback TCP
// proxies so faults can cut them. For the whole duration namespaces, exports,
// sources (rotated), placeholders, imports and Apps come and go while a random
// fault hits every few minutes. A model records what should exist; at the end
// the churn stops, the operator must converge, and every object is checked.
// Reported: RSS samples and their least-squares slope per operator process
// after warm-up, file descriptors and sockets (by peer) over time, reconcile
// latency from probes, writes counted in the audit log, faults injected.
// Exit 1 when an object is wrong, the operator crashed, or RSS/sockets grow.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { KubernetesObject, V1Namespace, V1Secret } from '@kubernetes/client-node';
import { REPO_ROOT, startTestCluster, type TestCluster } from '../e2e/harness/cluster.js';
import { grantClusterAdmin, HttpsFaultProxy, kubeconfigVia } from '../e2e/harness/faults.js';
import {
  makeTestCertificates,
  startRegistry,
  writeOciLayout,
  type TestRegistry,
} from '../e2e/harness/registry.js';
import { TcpProxy } from '../e2e/harness/tcp-proxy.js';
import { Informer } from '../src/runtime/informer.js';
import { ApiError, type KubeClient, type ResourceType } from '../src/runtime/kube-client.js';
import { silentLogger } from '../src/runtime/logger.js';
import { Apps } from '../src/packaging/controllers/resources.js';
import {
  NamespacesResource,
  SecretExports,
  SecretImports,
  SecretsResource,
} from '../src/shared-informers.js';
import { FAULTS, type Fault, type FaultContext } from './soak-faults.js';
import {
  parseDuration,
  percentile,
  placeholderDifferences,
  Random,
  slope,
  SoakModel,
  sourceData,
  sourceType,
  type ModelExport,
  type ModelNamespace,
} from './soak-model.js';
import { OperatorProcess, rssMb, sampleFds, startScriptNodeFlags, type FdSample } from './soak-process.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '30m' },
    seed: { type: 'string' },
    report: { type: 'string' },
    /** Seconds between faults, `min-max` (default 60-180; 20-45 for runs under 10 minutes). */
    'fault-interval': { type: 'string' },
    /** Comma list of fault names to draw from (default: all). */
    faults: { type: 'string' },
    /** Per operator process, samples before this are left out of the slope (default 5m; 45s under 10 minutes). */
    warmup: { type: 'string' },
    'operator-node-flags': { type: 'string' },
    'max-namespaces': { type: 'string', default: '14' },
    'max-exports': { type: 'string', default: '10' },
    /** Fail when RSS grows faster than this (MB/hour) over a judged window. */
    'max-rss-slope': { type: 'string', default: '30' },
  },
});

const DURATION_MS = parseDuration(args.duration);
const SHORT = DURATION_MS < 10 * 60_000;
const SEED = args.seed !== undefined ? Number(args.seed) : randomBytes(4).readUInt32LE(0);
const [FAULT_MIN_S, FAULT_MAX_S] = (args['fault-interval'] ?? (SHORT ? '20-45' : '60-180'))
  .split('-')
  .map(Number) as [number, number];
const WARMUP_MS = parseDuration(args.warmup ?? (SHORT ? '45s' : '5m'));
const MAX_NS = Number(args['max-namespaces']);
const MAX_EXPORTS = Number(args['max-exports']);
const MAX_RSS_SLOPE = Number(args['max-rss-slope']);
/** A window shorter than this after warm-up is reported but not judged (GC noise dominates). */
const MIN_JUDGED_WINDOW_MS = 10 * 60_000;
const OPERATOR_NODE_FLAGS = (args['operator-node-flags'] ?? startScriptNodeFlags())
  .split(' ')
  .filter(Boolean);
const ENABLED_FAULTS: Fault[] = args.faults
  ? args.faults.split(',').map((name) => {
      const f = FAULTS.find((x) => x.name === name);
      if (!f) throw new Error(`unknown fault ${name}; one of ${FAULTS.map((x) => x.name).join(', ')}`);
      return f;
    })
  : FAULTS;
const REPORT_FILE =
  args.report ??
  join(REPO_ROOT, '.bench-results', `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);

const STATUS_ANNOTATION = 'secretgen.carvel.dev/status';
const PLACEHOLDER_ANNOTATION = 'secretgen.carvel.dev/image-pull-secret';
const EXCLUDED_ANNOTATION = 'secretgen.carvel.dev/excluded-from-wildcard-matching';
const TEMPLATE_UNSUPPORTED = 'Templating dir: template stage 0 (ytt): not supported yet';
const SOURCE_NAMESPACES = ['soak-src-a', 'soak-src-b'];
const PROBE_NS = 'soak-probe';
const PROBE_SRC_NS = 'soak-probe-src';
const OPERATOR_NS = 'regcred-operator';
const OPERATOR_USER = 'soak-operator';
/** The registry's slow mode holds each request longer than the operator's whole-fetch deadline. */
const FETCH_TIMEOUT = '20s';
const SLOW_REGISTRY_MS = 30_000;
const REGISTRY_USERS = [
  { username: 'alice', password: `alice-${randomBytes(6).toString('hex')}` },
  { username: 'bob', password: `bob-${randomBytes(6).toString('hex')}` },
];

const t0 = performance.now();
const elapsedS = () => (performance.now() - t0) / 1000;
const log = (line: string) => console.error(`[soak ${elapsedS().toFixed(0).padStart(5)}s] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round1 = (n: number) => Math.round(n * 10) / 10;
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Retries what failed for a transient reason (the API server restarting, 429, 5xx) for up to 2 minutes. */
async function api<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const permanent = err instanceof ApiError && err.code >= 400 && err.code < 500 && err.code !== 429;
      if (permanent || Date.now() > deadline) {
        throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      await sleep(Math.min(5000, 200 * 2 ** attempt));
    }
  }
}

/** Creates; an AlreadyExists after a retried attempt counts as created (names are never reused). */
async function create(
  client: KubeClient,
  rt: ResourceType,
  obj: KubernetesObject & Record<string, unknown>,
): Promise<void> {
  const meta = obj.metadata ?? {};
  await api(`create ${rt.kind} ${meta.namespace ?? ''}/${meta.name ?? ''}`, async () => {
    try {
      await client.create(rt, obj);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409)) throw err;
    }
  });
}

/** Serializes model changes: churn steps and the steps faults ask for never interleave. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

// ---------------------------------------------------------------------------
// audit log: the operator's writes

interface AuditEvent {
  stage: string;
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
  responseStatus?: { code?: number };
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** Reads the audit log incrementally and counts the operator's writes. */
class WriteCounter {
  private offset = 0;
  private partial = '';
  total = 0;
  rejected429 = 0;
  readonly byResource: Record<string, number> = {};
  /** Writes after mark(), keyed by object (hot-loop detection). */
  sinceMark = new Map<string, number>();

  constructor(private readonly path: string) {}

  poll(): void {
    let text: string;
    try {
      const end = statSync(this.path).size;
      if (end <= this.offset) return;
      const buffer = Buffer.alloc(end - this.offset);
      const fd = openSync(this.path, 'r');
      try {
        readSync(fd, buffer, 0, buffer.length, this.offset);
      } finally {
        closeSync(fd);
      }
      text = this.partial + buffer.toString('utf8');
      this.offset = end;
    } catch {
      return;
    }
    const cut = text.lastIndexOf('\n');
    this.partial = text.slice(cut + 1);
    for (const line of text.slice(0, cut + 1).split('\n')) {
      if (!line.trim()) continue;
      const e = JSON.parse(line) as AuditEvent;
      if (e.stage !== 'ResponseComplete' || e.user.username !== OPERATOR_USER) continue;
      if (!WRITE_VERBS.has(e.verb)) continue;
      if (e.responseStatus?.code === 429) {
        this.rejected429++;
        continue;
      }
      this.total++;
      const r = e.objectRef ?? {};
      const resource = `${e.verb} ${r.resource ?? '?'}${r.subresource ? `/${r.subresource}` : ''}`;
      this.byResource[resource] = (this.byResource[resource] ?? 0) + 1;
      const key = `${resource} ${r.namespace ?? ''}/${r.name ?? ''}`;
      this.sinceMark.set(key, (this.sinceMark.get(key) ?? 0) + 1);
    }
  }

  mark(): void {
    this.poll();
    this.sinceMark = new Map();
  }
}

// ---------------------------------------------------------------------------
// the probe: one export rotated every few seconds, one placeholder observed by a watch

interface ProbeResult {
  atS: number;
  ms: number;
  /** A fault was on (or ended less than 30 s before) while the probe waited. */
  duringFault: boolean;
  timedOut: boolean;
}

function passwordFor(secret: V1Secret | undefined, host: string): string | undefined {
  const raw = secret?.data?.['.dockerconfigjson'];
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64').toString()) as {
      auths?: Record<string, { password?: string }>;
    };
    return parsed.auths?.[host]?.password;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------

interface Sample {
  atS: number;
  incarnation: number;
  /** Samples taken while a fault is on are reported but left out of the slope and medians. */
  phase: 'churn' | 'fault' | 'converging';
  rssMb: number;
  fds: FdSample;
}

interface FaultRecord {
  name: string;
  startS: number;
  endS: number;
  detail: string;
  error?: string;
}

async function main(): Promise<number> {
  log(`seed ${SEED}, duration ${args.duration}, faults every ${FAULT_MIN_S}-${FAULT_MAX_S} s`);
  const rng = new Random(SEED);
  const faultRng = new Random(SEED ^ 0x5eed);
  log('building dist/ (npm run build)');
  execFileSync('npm', ['run', '-s', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });

  const work = mkdtempSync(join(tmpdir(), 'regcred-soak-'));
  const operatorToken = randomBytes(24).toString('hex');
  let cluster: TestCluster | undefined;
  let registry: TestRegistry | undefined;
  let operator: OperatorProcess | undefined;
  const apiProxyHolder: { proxy?: TcpProxy } = {};
  const registryProxyHolder: { proxy?: HttpsFaultProxy } = {};
  let probeInformer: Informer<V1Secret> | undefined;
  try {
    [cluster, registry] = await Promise.all([
      startTestCluster(
        {
          controllerManager: true,
          auditLog: true,
          // Served from a test CA, so the API server can come back with a new certificate.
          servingCa: true,
          // Secret watches go to etcd, so a compaction makes a reconnecting watch answer 410 Gone.
          apiserverArgs: ['--watch-cache-sizes=secrets#0'],
          log,
        },
        // Not system:masters (exempt from flow control): cluster-admin by a binding, so the 429 storm applies.
        [{ name: OPERATOR_USER, token: operatorToken, groups: [] }],
      ),
      startRegistry({ users: REGISTRY_USERS, log }),
    ]);
    const cp = cluster.cp;
    const client = cluster.client;
    await grantClusterAdmin(cluster, OPERATOR_USER);

    const apiUrl = new URL(cp.server);
    const apiProxy = (apiProxyHolder.proxy = new TcpProxy('127.0.0.1', Number(apiUrl.port)));
    // The registry's own certificate in every mode but wrongCa, which serves one from another CA.
    const otherCa = await makeTestCertificates(join(work, 'other-ca'));
    const registryProxy = (registryProxyHolder.proxy = new HttpsFaultProxy({
      target: { host: '127.0.0.1', port: registry.port, ca: registry.caCert },
      tls: {
        cert: readFileSync(join(registry.dir, 'tls', 'server.crt'), 'utf8'),
        key: readFileSync(join(registry.dir, 'tls', 'server.key'), 'utf8'),
      },
      otherCaTls: {
        cert: readFileSync(otherCa.certFile, 'utf8'),
        key: readFileSync(otherCa.keyFile, 'utf8'),
      },
      slowMs: SLOW_REGISTRY_MS,
    }));
    await apiProxy.start();
    await registryProxy.start();
    const registryHost = registryProxy.host;
    const operatorKubeconfig = kubeconfigVia(cp, OPERATOR_USER, `https://127.0.0.1:${apiProxy.port}`);

    // The image every App fetches.
    const layout = join(work, 'layout');
    await writeOciLayout(layout, { 'config/app.yml': 'kind: ConfigMap\n' }, { tag: '1.0.0' });
    await registry.push(layout, '1.0.0', 'soak/app');
    const appImage = `${registryHost}/soak/app:1.0.0`;

    const nsObject = (name: string, excluded = false): V1Namespace & Record<string, unknown> => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name,
        labels: { soak: 'yes' },
        ...(excluded ? { annotations: { [EXCLUDED_ANNOTATION]: '' } } : {}),
      },
    });
    for (const ns of [OPERATOR_NS, ...SOURCE_NAMESPACES, PROBE_SRC_NS])
      await create(client, NamespacesResource, nsObject(ns));
    await create(client, SecretsResource, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'regcred-operator-config', namespace: OPERATOR_NS },
      stringData: { caCerts: registry.caCert },
    });

    // ------------------------------------------------------------------ model and churn
    const model = new SoakModel();
    const serial = new Serial();
    const actionCounts: Record<string, number> = {};
    let nsCounter = 0;
    let objCounter = 0;
    const protectedExports = new Set<string>();
    const protectedNamespaces = new Set<string>([PROBE_NS]);

    const writeSource = async (exp: ModelExport) => {
      const body = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: exp.name, namespace: exp.namespace },
        type: sourceType(exp),
        data: sourceData(exp),
      };
      if (exp.sourcePresent) {
        await api(`rotate ${exp.namespace}/${exp.name}`, () =>
          client.mergePatch(SecretsResource, exp.namespace, exp.name, { data: sourceData(exp) }),
        );
      } else {
        await create(client, SecretsResource, body);
        exp.sourcePresent = true;
      }
    };
    const writeExport = async (exp: ModelExport) => {
      if (exp.exported) {
        await api(`update export ${exp.namespace}/${exp.name}`, () =>
          client.mergePatch(SecretExports, exp.namespace, exp.name, {
            spec: { toNamespaces: exp.toNamespaces },
          }),
        );
      } else {
        await create(client, SecretExports, {
          apiVersion: 'secretgen.carvel.dev/v1alpha1',
          kind: 'SecretExport',
          metadata: { name: exp.name, namespace: exp.namespace },
          spec: { toNamespaces: exp.toNamespaces },
        });
        exp.exported = true;
      }
    };
    const addPlaceholder = async (ns: ModelNamespace, name = `pull-${++objCounter}`) => {
      await create(client, SecretsResource, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name,
          namespace: ns.name,
          annotations: { [PLACEHOLDER_ANNOTATION]: '' },
          ...(ns.name === PROBE_NS ? { labels: { 'soak-probe': 'placeholder' } } : {}),
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': b64('{}\n') },
      });
      ns.placeholders.add(name);
      return name;
    };
    const addImport = async (ns: ModelNamespace, exp: ModelExport) => {
      if (ns.imports.has(exp.name) || ns.placeholders.has(exp.name)) return;
      await create(client, SecretImports, {
        apiVersion: 'secretgen.carvel.dev/v1alpha1',
        kind: 'SecretImport',
        metadata: { name: exp.name, namespace: ns.name },
        spec: { fromNamespace: exp.namespace },
      });
      ns.imports.set(exp.name, { name: exp.name, fromNamespace: exp.namespace });
    };
    const addApp = async (ns: ModelNamespace) => {
      const secretName = rng.pick([...ns.placeholders]);
      if (!secretName) return;
      const name = `app-${++objCounter}`;
      await create(client, Apps, {
        apiVersion: 'kappctrl.k14s.io/v1alpha1',
        kind: 'App',
        metadata: { name, namespace: ns.name },
        spec: {
          serviceAccountName: 'default',
          // Every run of these Apps fails at the unsupported template step, so failures pile up and the
          // retry backoff (2^n s) sits at the sync period: after a registry fault an App fetches again
          // within a minute, not ten.
          syncPeriod: '1m',
          fetch: [{ image: { url: appImage, secretRef: { name: secretName } } }],
          template: [{ ytt: {} }],
          deploy: [{ kapp: {} }],
        },
      });
      ns.apps.set(name, { name, secretName });
    };
    const appCount = () => [...model.namespaces.values()].reduce((s, n) => s + n.apps.size, 0);
    const liveTargets = () => [...model.namespaces.values()].filter((n) => !protectedNamespaces.has(n.name));
    const mutableExports = () =>
      [...model.exports.values()].filter((e) => !protectedExports.has(`${e.namespace}/${e.name}`));
    const randomTargets = (): string[] => {
      if (rng.chance(0.4)) return ['*'];
      const names = new Set<string>();
      for (let i = rng.int(1, 3); i > 0; i--) {
        const ns = rng.pick(liveTargets());
        if (ns) names.add(ns.name);
      }
      // Sometimes a namespace that does not exist yet: its creation must bring the credentials.
      if (rng.chance(0.3) || names.size === 0) names.add(`soak-t-${nsCounter + rng.int(1, 3)}`);
      return [...names].sort();
    };

    const createNamespace = async () => {
      const ns: ModelNamespace = {
        name: `soak-t-${++nsCounter}`,
        excluded: rng.chance(0.2),
        placeholders: new Set(),
        imports: new Map(),
        apps: new Map(),
      };
      await create(client, NamespacesResource, nsObject(ns.name, ns.excluded));
      model.namespaces.set(ns.name, ns);
      await addPlaceholder(ns);
      if (rng.chance(0.5)) await addPlaceholder(ns);
      // An import, mostly of an export that reaches the new namespace (so a copy is expected).
      const reaching = mutableExports().filter((e) => model.reaches(e, ns));
      const exp = rng.pick(reaching.length > 0 && rng.chance(0.7) ? reaching : mutableExports());
      if (exp && rng.chance(0.6)) await addImport(ns, exp);
      if (rng.chance(0.5) && appCount() < 8) await addApp(ns);
    };

    const newExport = (): ModelExport => {
      const id = ++objCounter;
      const docker = rng.chance(0.75);
      return {
        namespace: rng.pick(SOURCE_NAMESPACES)!,
        name: `cred-${id}`,
        exported: false,
        toNamespaces: randomTargets(),
        sourcePresent: false,
        kind: docker ? 'dockerconfigjson' : 'opaque',
        host: `reg-${id}.soak.test`,
        username: `user-${id}`,
        password: `v1-${randomBytes(6).toString('hex')}`,
      };
    };

    const steps: Array<readonly [string, () => number, () => Promise<void>]> = [
      ['create-namespace', () => (liveTargets().length < MAX_NS ? 3 : 0), createNamespace],
      [
        'delete-namespace',
        () => (liveTargets().length > MAX_NS / 2 ? 2 : 0),
        async () => {
          const ns = rng.pick(liveTargets())!;
          await api(`delete namespace ${ns.name}`, () =>
            client.delete(NamespacesResource, undefined, ns.name),
          );
          model.namespaces.delete(ns.name);
          model.deletedNamespaces.add(ns.name);
        },
      ],
      [
        'toggle-wildcard-exclusion',
        () => (liveTargets().length > 0 ? 1 : 0),
        async () => {
          const ns = rng.pick(liveTargets())!;
          // Back to included always, excluded only sometimes: about a quarter stay excluded.
          if (!ns.excluded && !rng.chance(0.3)) return;
          const excluded = !ns.excluded;
          await api(`annotate namespace ${ns.name}`, () =>
            client.mergePatch(NamespacesResource, undefined, ns.name, {
              metadata: { annotations: { [EXCLUDED_ANNOTATION]: excluded ? '' : null } },
            }),
          );
          ns.excluded = excluded;
        },
      ],
      [
        'create-export',
        () => (mutableExports().length < MAX_EXPORTS ? 3 : 0),
        async () => {
          const exp = newExport();
          model.exports.set(`${exp.namespace}/${exp.name}`, exp);
          // Either order: the export waiting for its Secret, or the Secret waiting to be exported.
          if (rng.chance(0.5)) {
            await writeSource(exp);
            await writeExport(exp);
          } else {
            await writeExport(exp);
            await writeSource(exp);
          }
        },
      ],
      [
        'delete-export',
        () => (mutableExports().length > 3 ? 1.5 : 0),
        async () => {
          const exp = rng.pick(mutableExports())!;
          if (exp.exported) {
            await api(`delete export`, () => client.delete(SecretExports, exp.namespace, exp.name));
            exp.exported = false;
          }
          if (exp.sourcePresent && rng.chance(0.7)) {
            await api(`delete source`, () => client.delete(SecretsResource, exp.namespace, exp.name));
            exp.sourcePresent = false;
          }
          if (!exp.exported && !exp.sourcePresent) model.exports.delete(`${exp.namespace}/${exp.name}`);
        },
      ],
      [
        'delete-or-restore-source',
        () => (mutableExports().length > 0 ? 1.5 : 0),
        async () => {
          const exp = rng.pick(mutableExports())!;
          if (exp.sourcePresent) {
            await api(`delete source`, () => client.delete(SecretsResource, exp.namespace, exp.name));
            exp.sourcePresent = false;
          } else {
            exp.password = `v-${randomBytes(6).toString('hex')}`;
            await writeSource(exp);
          }
          if (!exp.exported && !exp.sourcePresent) model.exports.delete(`${exp.namespace}/${exp.name}`);
        },
      ],
      [
        'rotate-source',
        () => (mutableExports().some((e) => e.sourcePresent) ? 6 : 0),
        async () => {
          const exp = rng.pick(mutableExports().filter((e) => e.sourcePresent))!;
          exp.password = `v-${randomBytes(6).toString('hex')}`;
          await writeSource(exp);
        },
      ],
      [
        'retarget-export',
        () => (mutableExports().some((e) => e.exported) ? 2 : 0),
        async () => {
          const exp = rng.pick(mutableExports().filter((e) => e.exported))!;
          exp.toNamespaces = randomTargets();
          await writeExport(exp);
        },
      ],
      [
        'create-placeholder',
        () => (liveTargets().length > 0 ? 2 : 0),
        async () => {
          const ns = rng.pick(liveTargets())!;
          if (ns.placeholders.size < 3) await addPlaceholder(ns);
        },
      ],
      [
        'delete-placeholder',
        () => (liveTargets().length > 0 ? 1 : 0),
        async () => {
          const ns = rng.pick(liveTargets())!;
          const inUse = new Set([...ns.apps.values()].map((a) => a.secretName));
          const name = rng.pick([...ns.placeholders].filter((p) => !inUse.has(p)));
          if (!name) return;
          await api(`delete placeholder`, () => client.delete(SecretsResource, ns.name, name));
          ns.placeholders.delete(name);
        },
      ],
      [
        'create-import',
        () => (liveTargets().length > 0 && mutableExports().length > 0 ? 2 : 0),
        async () => {
          const ns = rng.pick(liveTargets())!;
          // Mostly an export that reaches the namespace (a copy), sometimes any (no match).
          const reaching = mutableExports().filter((e) => model.reaches(e, ns));
          await addImport(
            ns,
            rng.pick(reaching.length > 0 && rng.chance(0.7) ? reaching : mutableExports())!,
          );
        },
      ],
      [
        'delete-import',
        () => (liveTargets().some((n) => n.imports.size > 0) ? 1 : 0),
        async () => {
          const ns = rng.pick(liveTargets().filter((n) => n.imports.size > 0))!;
          const imp = rng.pick([...ns.imports.values()])!;
          await api(`delete import`, () => client.delete(SecretImports, ns.name, imp.name));
          ns.imports.delete(imp.name);
        },
      ],
      [
        'create-app',
        () => (appCount() < 8 && liveTargets().length > 0 ? 1 : 0),
        async () => {
          await addApp(rng.pick(liveTargets())!);
        },
      ],
      [
        'delete-app',
        () => (appCount() > 2 ? 0.7 : 0),
        async () => {
          const ns = rng.pick(liveTargets().filter((n) => n.apps.size > 0))!;
          const app = rng.pick([...ns.apps.values()])!;
          await api(`delete app`, () => client.delete(Apps, ns.name, app.name));
          ns.apps.delete(app.name);
        },
      ],
    ];

    /** One step: `only` (when its weight allows it) or a random one. */
    const churnStep = (only?: string) =>
      serial.run(async () => {
        const step = rng.weighted(
          steps.map(([name, weight]) => [name, only === undefined || only === name ? weight() : 0] as const),
        );
        if (!step) return;
        await steps.find(([name]) => name === step)![2]();
        actionCounts[step] = (actionCounts[step] ?? 0) + 1;
      });

    // The registry credential every App fetches with: exported to "*", alternating between two users.
    const registryExport: ModelExport = {
      namespace: SOURCE_NAMESPACES[0]!,
      name: 'registry',
      exported: false,
      toNamespaces: ['*'],
      sourcePresent: false,
      kind: 'dockerconfigjson',
      host: registryHost,
      username: REGISTRY_USERS[0]!.username,
      password: REGISTRY_USERS[0]!.password,
    };
    const rotateRegistryCredential = () =>
      serial.run(async () => {
        const next = REGISTRY_USERS.find((u) => u.username !== registryExport.username)!;
        registryExport.username = next.username;
        registryExport.password = next.password;
        await writeSource(registryExport);
        actionCounts['rotate-registry-credential'] = (actionCounts['rotate-registry-credential'] ?? 0) + 1;
      });
    const probeExport: ModelExport = {
      namespace: PROBE_SRC_NS,
      name: 'probe',
      exported: false,
      toNamespaces: [PROBE_NS],
      sourcePresent: false,
      kind: 'dockerconfigjson',
      host: 'probe.soak.test',
      username: 'probe',
      password: 'probe-0',
    };
    for (const exp of [registryExport, probeExport]) {
      const key = `${exp.namespace}/${exp.name}`;
      protectedExports.add(key);
      model.exports.set(key, exp);
      await writeSource(exp);
      await writeExport(exp);
    }
    const probeNs: ModelNamespace = {
      name: PROBE_NS,
      excluded: false,
      placeholders: new Set(),
      imports: new Map(),
      apps: new Map(),
    };
    await create(client, NamespacesResource, nsObject(PROBE_NS));
    model.namespaces.set(PROBE_NS, probeNs);
    await addPlaceholder(probeNs, 'probe');
    for (let i = 0; i < 4; i++) {
      await serial.run(async () => {
        const exp = newExport();
        model.exports.set(`${exp.namespace}/${exp.name}`, exp);
        await writeSource(exp);
        await writeExport(exp);
      });
    }
    for (let i = 0; i < Math.min(6, MAX_NS); i++) await serial.run(createNamespace);

    // ------------------------------------------------------------------ operator, observers
    const counter = new WriteCounter(cp.auditLogPath!);
    operator = new OperatorProcess({
      kubeconfig: operatorKubeconfig,
      nodeFlags: OPERATOR_NODE_FLAGS,
      logFile: join(dirname(REPORT_FILE), `${basenameOf(REPORT_FILE)}.operator.log`),
      extraArgs: ['--fetch-timeout', FETCH_TIMEOUT],
      logLevel: 'info',
    });
    mkdirSync(dirname(REPORT_FILE), { recursive: true });
    log(`starting the operator (node ${OPERATOR_NODE_FLAGS.join(' ')})`);
    await operator.start();
    const op = operator;

    probeInformer = new Informer<V1Secret>(client, {
      resource: SecretsResource,
      namespace: PROBE_NS,
      labelSelector: 'soak-probe=placeholder',
      logger: silentLogger,
    });
    const probeWaiters: Array<{ password: string; done: () => void }> = [];
    const onProbe = (s: V1Secret) => {
      const pw = passwordFor(s, probeExport.host);
      for (let i = probeWaiters.length - 1; i >= 0; i--) {
        if (probeWaiters[i]!.password === pw) probeWaiters.splice(i, 1)[0]!.done();
      }
    };
    probeInformer.addHandlers({ onAdd: onProbe, onUpdate: (_o, s) => onProbe(s) });
    probeInformer.start();
    await probeInformer.synced;

    const faults: FaultRecord[] = [];
    let faultOn = false;
    let lastFaultEnd = -Infinity;
    const samples: Sample[] = [];
    const probes: ProbeResult[] = [];
    let stopping = false;
    let samplingOver = false;
    const errors: string[] = [];

    const sampler = (async () => {
      while (!samplingOver) {
        try {
          counter.poll();
          if (await op.restartIfExited())
            log(`the operator exited on its own; restarted (incarnation ${op.incarnation})`);
        } catch (err) {
          errors.push(`sampler: ${err instanceof Error ? err.message : String(err)}`);
        }
        const pid = op.pid;
        if (pid !== undefined) {
          try {
            samples.push({
              atS: elapsedS(),
              incarnation: op.incarnation,
              phase: faultOn ? 'fault' : stopping ? 'converging' : 'churn',
              rssMb: rssMb(pid),
              fds: sampleFds(pid, { apiserver: apiProxy.port, registry: registryProxy.port }),
            });
          } catch {
            // exited between pid and read
          }
        }
        await sleep(5000);
      }
    })();

    const prober = (async () => {
      let seq = 0;
      while (!stopping) {
        const password = `probe-${++seq}`;
        let start = 0;
        const startS = elapsedS();
        const seen = new Promise<void>((done) => probeWaiters.push({ password, done }));
        try {
          await serial.run(async () => {
            probeExport.password = password;
            await api('probe rotation', () => {
              start = performance.now();
              return client.mergePatch(SecretsResource, PROBE_SRC_NS, 'probe', {
                data: sourceData(probeExport),
              });
            });
          });
        } catch (err) {
          errors.push(`probe: ${err instanceof Error ? err.message : String(err)}`);
          await sleep(5000);
          continue;
        }
        const timedOut = await Promise.race([seen.then(() => false), sleep(120_000).then(() => true)]);
        const ms = performance.now() - start;
        const duringFault = faultOn || startS - lastFaultEnd < 30;
        probes.push({ atS: round1(startS), ms: round1(ms), duringFault, timedOut });
        if (timedOut) log(`probe ${seq} not reflected within 120 s`);
        await sleep(5000);
      }
    })();

    const faultCtx: FaultContext = {
      cluster,
      apiProxy,
      registryProxy,
      operator: op,
      operatorUser: OPERATOR_USER,
      rng: faultRng,
      rotateRegistryCredential,
      async churnBurst(n) {
        // Deletes among them: an informer that relists after 410 must notice what vanished meanwhile.
        for (const only of [
          'delete-export',
          'delete-or-restore-source',
          'delete-placeholder',
          'delete-import',
        ])
          await churnStep(only);
        for (let i = 4; i < n; i++) await churnStep();
      },
    };
    const faulter = (async () => {
      while (!stopping) {
        const waitS = faultRng.int(FAULT_MIN_S, FAULT_MAX_S);
        const until = performance.now() + waitS * 1000;
        while (!stopping && performance.now() < until) await sleep(500);
        if (stopping) break;
        // Operator restarts only early on, so the last process runs long enough to judge its RSS slope.
        const allowed = ENABLED_FAULTS.filter(
          (f) => f.name !== 'operator-sigkill' || elapsedS() * 1000 < DURATION_MS * 0.4,
        );
        const fault = faultRng.pick(allowed);
        if (!fault) continue;
        const record: FaultRecord = { name: fault.name, startS: round1(elapsedS()), endS: 0, detail: '' };
        log(`fault ${fault.name}`);
        faultOn = true;
        try {
          record.detail = await fault.run(faultCtx);
        } catch (err) {
          record.error = err instanceof Error ? err.message : String(err);
          errors.push(`fault ${fault.name}: ${record.error}`);
          log(`fault ${fault.name} failed: ${record.error}`);
        } finally {
          faultOn = false;
          record.endS = round1(elapsedS());
          lastFaultEnd = record.endS;
          faults.push(record);
          log(`fault ${fault.name} over: ${record.detail}`);
        }
      }
    })();

    log(`churn for ${args.duration}`);
    const churnEnd = performance.now() + DURATION_MS;
    let lastStatus = 0;
    while (performance.now() < churnEnd) {
      try {
        await churnStep();
      } catch (err) {
        errors.push(`churn: ${err instanceof Error ? err.message : String(err)}`);
        log(`churn step failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (performance.now() - lastStatus > 60_000) {
        lastStatus = performance.now();
        const last = samples[samples.length - 1];
        log(
          `model ${JSON.stringify(model.counts())}; RSS ${last ? round1(last.rssMb) : '?'} MB, ` +
            `fds ${last?.fds.total ?? '?'}; writes ${counter.total}; probes ${probes.length}`,
        );
      }
      await sleep(rng.int(300, 1500));
    }

    log('churn over; waiting for the current fault, then for convergence');
    stopping = true;
    await Promise.all([faulter, prober]);
    const churnStoppedAt = performance.now();
    let verification = await verifySafely(client, model, registryHost);
    const convergeDeadline = performance.now() + (SHORT ? 180_000 : 300_000);
    while (verification.problems.length > 0 && performance.now() < convergeDeadline) {
      await sleep(5000);
      await op.restartIfExited();
      verification = await verifySafely(client, model, registryHost);
    }
    const convergedS = verification.problems.length === 0 ? (performance.now() - churnStoppedAt) / 1000 : NaN;
    log(
      verification.problems.length === 0
        ? `converged ${round1(convergedS)} s after the churn stopped; ${verification.checked} objects checked`
        : `NOT converged: ${verification.problems.length} problems`,
    );

    // Quiet: no write at all for placeholders, imports and exports; no object written more than twice.
    const IDLE_S = SHORT ? 30 : 60;
    await sleep(3000);
    counter.mark();
    await sleep(IDLE_S * 1000);
    counter.poll();
    const idleWrites = [...counter.sinceMark.entries()];
    // Secret sharing writes nothing once converged. An App whose run fails (here always: the template
    // step is not supported) runs again after a backoff of 2^n s, two status writes a run; more than
    // that in the window is a hot loop.
    const hotLoop = idleWrites.filter(([key, n]) => (/^apps/.test(key.split(' ')[1] ?? '') ? n > 8 : true));
    const finalVerification = await verifySafely(client, model, registryHost);
    samplingOver = true;
    await sampler.catch(() => undefined);

    // ------------------------------------------------------------------ analysis
    const incarnations = [...new Set(samples.map((s) => s.incarnation))];
    const perProcess = incarnations.map((inc) => {
      const all = samples.filter((s) => s.incarnation === inc);
      const startS = all[0]!.atS;
      const steady = all.filter((s) => s.phase !== 'fault' && s.atS - startS >= WARMUP_MS / 1000);
      const windowS = steady.length > 1 ? steady[steady.length - 1]!.atS - steady[0]!.atS : 0;
      const rssSlope = slope(steady.map((s) => [s.atS / 3600, s.rssMb] as const));
      const quarter = Math.max(1, Math.floor(steady.length / 4));
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
      const sockets = (s: Sample) => s.fds.apiserver + s.fds.registry + s.fds.otherTcp + s.fds.otherSocket;
      const first = steady.slice(0, quarter);
      const last = steady.slice(-quarter);
      return {
        incarnation: inc,
        samples: all.length,
        steadyWindowS: round1(windowS),
        judged: windowS * 1000 >= MIN_JUDGED_WINDOW_MS,
        rssMb: {
          min: round1(Math.min(...all.map((s) => s.rssMb))),
          max: round1(Math.max(...all.map((s) => s.rssMb))),
        },
        rssSlopeMbPerHour: round1(rssSlope),
        rssFirstQuarterMedianMb: round1(median(first.map((s) => s.rssMb))),
        rssLastQuarterMedianMb: round1(median(last.map((s) => s.rssMb))),
        fdsFirstQuarterMedian: median(first.map((s) => s.fds.total)),
        fdsLastQuarterMedian: median(last.map((s) => s.fds.total)),
        fdsMax: Math.max(...all.map((s) => s.fds.total)),
        socketsFirstQuarterMedian: median(first.map(sockets)),
        socketsLastQuarterMedian: median(last.map(sockets)),
        socketsMax: Math.max(...all.map(sockets)),
        apiserverSocketsMax: Math.max(...all.map((s) => s.fds.apiserver)),
        registrySocketsMax: Math.max(...all.map((s) => s.fds.registry)),
      };
    });
    const judged = perProcess.filter((p) => p.judged);
    const growth: string[] = [];
    for (const p of judged) {
      // Both: a steep fit and a real rise between the first and last quarter (not one GC sawtooth).
      if (p.rssSlopeMbPerHour > MAX_RSS_SLOPE && p.rssLastQuarterMedianMb - p.rssFirstQuarterMedianMb > 5)
        growth.push(
          `operator #${p.incarnation}: RSS grows ${p.rssSlopeMbPerHour} MB/hour (limit ${MAX_RSS_SLOPE})`,
        );
      if (p.fdsLastQuarterMedian > p.fdsFirstQuarterMedian + 10)
        growth.push(
          `operator #${p.incarnation}: file descriptors ${p.fdsFirstQuarterMedian} → ${p.fdsLastQuarterMedian}`,
        );
      if (p.socketsLastQuarterMedian > p.socketsFirstQuarterMedian + 10)
        growth.push(
          `operator #${p.incarnation}: sockets ${p.socketsFirstQuarterMedian} → ${p.socketsLastQuarterMedian}`,
        );
    }
    const latency = (list: ProbeResult[]) => {
      const ms = list
        .filter((p) => !p.timedOut)
        .map((p) => p.ms)
        .sort((a, b) => a - b);
      return {
        count: list.length,
        timedOut: list.filter((p) => p.timedOut).length,
        p50Ms: round1(percentile(ms, 50)),
        p99Ms: round1(percentile(ms, 99)),
        maxMs: round1(percentile(ms, 100)),
      };
    };
    const failures = [
      ...finalVerification.problems.map((p) => `wrong at the end: ${p}`),
      ...op.unexpectedExits.map(
        (e) => `operator #${e.incarnation} exited on its own (code ${e.code}, signal ${e.signal})`,
      ),
      ...growth,
      ...hotLoop.map(([key, n]) => `written ${n}× after convergence: ${key}`),
      ...probes
        .filter((p) => p.timedOut && !p.duringFault)
        .map((p) => `probe at ${p.atS} s not reflected in 120 s`),
      ...errors.map((e) => `harness: ${e}`),
    ];
    const report = {
      seed: SEED,
      durationS: DURATION_MS / 1000,
      machine: { cores: (await import('node:os')).cpus().length, node: process.version },
      operatorNodeFlags: OPERATOR_NODE_FLAGS.join(' '),
      warmupS: WARMUP_MS / 1000,
      finalModel: model.counts(),
      actions: actionCounts,
      faults,
      convergedSeconds: round1(convergedS),
      objectsChecked: finalVerification.checked,
      checkedByKind: finalVerification.tally,
      latency: {
        all: latency(probes),
        quiet: latency(probes.filter((p) => !p.duringFault)),
        duringFaults: latency(probes.filter((p) => p.duringFault)),
      },
      writes: {
        total: counter.total,
        rejected429: counter.rejected429,
        byResource: counter.byResource,
        idleWindowS: IDLE_S,
        idle: Object.fromEntries(idleWrites),
      },
      operatorProcesses: perProcess,
      unexpectedExits: op.unexpectedExits,
      /** Operator log lines that show how the faults were seen (e.g. relists after 410 Gone). */
      operatorLog: op.countLogMessages([
        'watch resourceVersion expired; relisting',
        'list/watch failed; restarting with backoff',
        'reconcile failed; will retry',
      ]),
      failures,
      samples: samples.map((s) => ({ ...s, atS: round1(s.atS), rssMb: round1(s.rssMb) })),
      probes,
    };
    mkdirSync(dirname(REPORT_FILE), { recursive: true });
    writeFileSync(REPORT_FILE, JSON.stringify(report, null, 2));
    printSummary(report);
    console.log(`\nJSON: ${REPORT_FILE}`);
    if (failures.length > 0) {
      console.log(`\nFAILED (${failures.length}):`);
      for (const f of failures.slice(0, 50)) console.log(`  - ${f}`);
      return 1;
    }
    console.log('\nPASSED');
    return 0;
  } finally {
    await probeInformer?.stop();
    await operator?.close();
    await apiProxyHolder.proxy?.stop();
    await registryProxyHolder.proxy?.stop();
    await registry?.stop();
    await cluster?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

function basenameOf(path: string): string {
  return path.replace(/^.*\//, '').replace(/\.json$/, '');
}

// ---------------------------------------------------------------------------
// verification: every object of the model as it must be once converged

interface Condition {
  type?: string;
  status?: string;
  message?: string;
}
interface WithStatus {
  metadata?: { name?: string; namespace?: string; generation?: number; deletionTimestamp?: string };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    usefulErrorMessage?: string;
    fetch?: { exitCode?: number };
  };
}

async function listAll<T>(client: KubeClient, rt: ResourceType, namespace?: string): Promise<T[]> {
  const items: T[] = [];
  let cont: string | undefined;
  do {
    const page = await api(`list ${rt.plural}`, () =>
      client.list<T & { metadata?: object }>(rt, { namespace, limit: 500, continue: cont }),
    );
    items.push(...page.items);
    cont = page.continue;
  } while (cont);
  return items;
}

async function verify(
  client: KubeClient,
  model: SoakModel,
  registryHost: string,
): Promise<{ problems: string[]; checked: number; tally: Record<string, number> }> {
  const problems: string[] = [];
  let checked = 0;
  const tally: Record<string, number> = {};
  const count = (what: string) => (tally[what] = (tally[what] ?? 0) + 1);
  const [secrets, imports, apps, exports, namespaces] = await Promise.all([
    listAll<V1Secret>(client, SecretsResource),
    listAll<WithStatus>(client, SecretImports),
    listAll<WithStatus>(client, Apps),
    listAll<WithStatus>(client, SecretExports),
    listAll<V1Namespace>(client, NamespacesResource),
  ]);
  const key = (o: { metadata?: { namespace?: string; name?: string } }) =>
    `${o.metadata?.namespace}/${o.metadata?.name}`;
  const secretsByKey = new Map(secrets.map((s) => [key(s), s]));
  const importsByKey = new Map(imports.map((s) => [key(s), s]));
  const appsByKey = new Map(apps.map((s) => [key(s), s]));
  const exportsByKey = new Map(exports.map((s) => [key(s), s]));
  const namespaceNames = new Set(namespaces.map((n) => n.metadata!.name!));

  for (const gone of model.deletedNamespaces) {
    if (namespaceNames.has(gone))
      problems.push(`namespace ${gone} was deleted but is still there (a finalizer left?)`);
  }
  for (const exp of model.exports.values()) {
    if (!exp.exported) continue;
    checked++;
    const obj = exportsByKey.get(`${exp.namespace}/${exp.name}`);
    const want = exp.sourcePresent ? 'ReconcileSucceeded' : 'ReconcileFailed';
    const cond = obj?.status?.conditions?.[0]?.type;
    if (!obj) problems.push(`SecretExport ${exp.namespace}/${exp.name} missing`);
    else if (obj.status?.observedGeneration !== obj.metadata?.generation || cond !== want)
      problems.push(`SecretExport ${exp.namespace}/${exp.name}: ${cond ?? 'no condition'}, want ${want}`);
  }
  for (const ns of model.namespaces.values()) {
    const expected = model.expectedPlaceholder(ns);
    const expectedNames = [...model.exports.values()]
      .filter((e) => e.kind === 'dockerconfigjson' && model.reaches(e, ns))
      .map((e) => `${e.namespace}/${e.name}`)
      .sort();
    for (const name of ns.placeholders) {
      checked++;
      const s = secretsByKey.get(`${ns.name}/${name}`);
      if (!s) {
        problems.push(`placeholder ${ns.name}/${name} missing`);
        continue;
      }
      count(expected.size === 0 ? 'placeholders empty' : 'placeholders with credentials');
      const diffs = placeholderDifferences(s.data?.['.dockerconfigjson'], expected);
      if (diffs.length > 0) problems.push(`placeholder ${ns.name}/${name}: ${diffs.join(', ')}`);
      let status: { conditions?: Condition[]; secretNames?: string[] } = {};
      try {
        status = JSON.parse(s.metadata?.annotations?.[STATUS_ANNOTATION] ?? '{}') as typeof status;
      } catch {
        // reported below
      }
      if (status.conditions?.[0]?.type !== 'ReconcileSucceeded')
        problems.push(`placeholder ${ns.name}/${name}: status ${status.conditions?.[0]?.type ?? 'missing'}`);
      else if (JSON.stringify(status.secretNames ?? []) !== JSON.stringify(expectedNames))
        problems.push(
          `placeholder ${ns.name}/${name}: secretNames ${JSON.stringify(status.secretNames ?? [])}, want ${JSON.stringify(expectedNames)}`,
        );
    }
    for (const imp of ns.imports.values()) {
      checked++;
      const source = model.expectedImportSource(ns, imp);
      const obj = importsByKey.get(`${ns.name}/${imp.name}`);
      const copy = secretsByKey.get(`${ns.name}/${imp.name}`);
      const cond = obj?.status?.conditions?.[0]?.type;
      if (!obj) {
        problems.push(`SecretImport ${ns.name}/${imp.name} missing`);
        continue;
      }
      count(source ? 'imports copied' : 'imports without a match');
      if (source) {
        if (!copy) problems.push(`import copy ${ns.name}/${imp.name} missing`);
        else if (
          copy.type !== sourceType(source) ||
          JSON.stringify(sortKeys(copy.data)) !== JSON.stringify(sortKeys(sourceData(source)))
        )
          problems.push(
            `import copy ${ns.name}/${imp.name}: type or data differs from ${imp.fromNamespace}/${imp.name}`,
          );
        if (cond !== 'ReconcileSucceeded')
          problems.push(
            `SecretImport ${ns.name}/${imp.name}: ${cond ?? 'no condition'}, want ReconcileSucceeded`,
          );
      } else {
        if (copy) problems.push(`import copy ${ns.name}/${imp.name} exists but nothing is exported to it`);
        if (cond !== 'ReconcileFailed')
          problems.push(
            `SecretImport ${ns.name}/${imp.name}: ${cond ?? 'no condition'}, want ReconcileFailed`,
          );
      }
    }
    for (const app of ns.apps.values()) {
      checked++;
      const obj = appsByKey.get(`${ns.name}/${app.name}`);
      if (!obj) {
        problems.push(`App ${ns.name}/${app.name} missing`);
        continue;
      }
      if (!secretsByKey.has(`${ns.name}/${app.secretName}`))
        problems.push(`App ${ns.name}/${app.name}: fetch secret ${app.secretName} missing`);
      const st = obj.status;
      const canFetch = expected.has(registryHost);
      count(canFetch ? 'apps fetching' : 'apps without the registry credential');
      if (st?.observedGeneration !== obj.metadata?.generation)
        problems.push(
          `App ${ns.name}/${app.name}: generation ${obj.metadata?.generation} not observed (${st?.observedGeneration})`,
        );
      else if (canFetch && !(st?.fetch?.exitCode === 0 && st.usefulErrorMessage === TEMPLATE_UNSUPPORTED))
        problems.push(
          `App ${ns.name}/${app.name}: fetch exit ${st?.fetch?.exitCode}, "${(st?.usefulErrorMessage ?? '').slice(0, 200)}"`,
        );
      else if (!canFetch && !(st?.fetch?.exitCode === 1 && /UNAUTHORIZED/.test(st.usefulErrorMessage ?? '')))
        problems.push(
          `App ${ns.name}/${app.name} (no credential): fetch exit ${st?.fetch?.exitCode}, "${(st?.usefulErrorMessage ?? '').slice(0, 200)}"`,
        );
    }
    // Nothing else: no copy of an import that went away, no stray Secret.
    const known = new Set([...ns.placeholders, ...ns.imports.keys()]);
    for (const s of secrets) {
      if (s.metadata?.namespace !== ns.name || known.has(s.metadata.name!)) continue;
      if (s.type === 'kubernetes.io/service-account-token') continue;
      problems.push(`unexpected Secret ${ns.name}/${s.metadata.name}`);
    }
  }
  return { problems, checked, tally };
}

/** verify(), with a failure to read the cluster reported as a problem rather than ending the run. */
async function verifySafely(
  client: KubeClient,
  model: SoakModel,
  registryHost: string,
): ReturnType<typeof verify> {
  try {
    return await verify(client, model, registryHost);
  } catch (err) {
    return {
      problems: [`could not read the cluster: ${err instanceof Error ? err.message : String(err)}`],
      checked: 0,
      tally: {},
    };
  }
}

function sortKeys(data: Record<string, string> | undefined): Array<[string, string]> {
  return Object.entries(data ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
}

// ---------------------------------------------------------------------------

function printSummary(r: {
  seed: number;
  durationS: number;
  finalModel: Record<string, number>;
  faults: FaultRecord[];
  convergedSeconds: number;
  objectsChecked: number;
  checkedByKind: Record<string, number>;
  operatorLog: Record<string, number>;
  latency: Record<string, { count: number; timedOut: number; p50Ms: number; p99Ms: number; maxMs: number }>;
  writes: { total: number; rejected429: number; idle: Record<string, number>; idleWindowS: number };
  operatorProcesses: Array<{
    incarnation: number;
    steadyWindowS: number;
    judged: boolean;
    rssMb: { min: number; max: number };
    rssSlopeMbPerHour: number;
    fdsFirstQuarterMedian: number;
    fdsLastQuarterMedian: number;
    fdsMax: number;
    socketsFirstQuarterMedian: number;
    socketsLastQuarterMedian: number;
    socketsMax: number;
  }>;
}): void {
  const faultCounts: Record<string, number> = {};
  for (const f of r.faults) faultCounts[f.name] = (faultCounts[f.name] ?? 0) + 1;
  const rows: Array<[string, string]> = [
    ['seed / duration', `${r.seed} / ${r.durationS} s`],
    [
      'objects at the end',
      Object.entries(r.finalModel)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
    [
      'faults injected',
      `${r.faults.length}: ${Object.entries(faultCounts)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ')}`,
    ],
    ['converged after churn stopped', `${r.convergedSeconds} s (${r.objectsChecked} objects checked)`],
    [
      'checked',
      Object.entries(r.checkedByKind)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
  ];
  for (const [what, l] of Object.entries(r.latency)) {
    rows.push([
      `reconcile latency (${what})`,
      `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms (${l.count} probes, ${l.timedOut} timed out)`,
    ]);
  }
  rows.push([
    'operator log',
    Object.entries(r.operatorLog)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; '),
  ]);
  rows.push([
    'operator writes (audit log)',
    `${r.writes.total} (+${r.writes.rejected429} rejected with 429)`,
  ]);
  rows.push([
    `writes in ${r.writes.idleWindowS} s after convergence`,
    `${Object.values(r.writes.idle).reduce((s, n) => s + n, 0)}`,
  ]);
  for (const p of r.operatorProcesses) {
    rows.push([
      `operator #${p.incarnation} (${p.steadyWindowS} s after warm-up${p.judged ? '' : ', not judged'})`,
      `RSS ${p.rssMb.min}-${p.rssMb.max} MB, slope ${p.rssSlopeMbPerHour} MB/h; fds ${p.fdsFirstQuarterMedian} → ${p.fdsLastQuarterMedian} (max ${p.fdsMax}); sockets ${p.socketsFirstQuarterMedian} → ${p.socketsLastQuarterMedian} (max ${p.socketsMax})`,
    ]);
  }
  console.log('\nSoak summary');
  for (const [what, value] of rows) console.log(`${what.padEnd(44)} ${value}`);
}

process.exitCode = await main();
