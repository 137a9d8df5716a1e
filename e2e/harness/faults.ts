// Fault injectors and the rotation fixture of the fault suite (e2e/faults)
// and the soak: the operator as its own process (SIGKILL-able), a placeholder
// fan-out whose convergence and write counts are read from the audit log,
// forced etcd compaction, a tightened API Priority and Fairness config, an
// HTTP(S) proxy in front of a registry that can go down, answer 500, stall or
// present a certificate from another CA, and TCP connection cuts.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import {
  request as httpsRequest,
  createServer as createHttpsServer,
  type Server as HttpsServer,
} from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import type { KubeClient, ResourceType } from '../../src/runtime/kube-client.js';
import { REPO_ROOT, type TestCluster } from './cluster.js';
import { freePort, type ControlPlane } from './control-plane.js';
import { describeAudit, type AuditEvent, type AuditLog } from './operator-env.js';
import type { TcpProxy } from './tcp-proxy.js';
import { waitFor } from './wait.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const Namespaces: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
};
export const Secrets: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  namespaced: true,
};
export const SecretExports: ResourceType = {
  group: 'secretgen.carvel.dev',
  version: 'v1alpha1',
  plural: 'secretexports',
  kind: 'SecretExport',
  namespaced: true,
};

/** Runs `fn` over `items` with at most `width` calls in flight. */
export async function pool<T>(items: T[], fn: (item: T) => Promise<unknown>, width = 16): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

// ---------------------------------------------------------------------------
// the operator as a process

export interface OperatorProcessOptions {
  /** Token user of the control plane the process authenticates as (its writes carry this name). */
  user: string;
  /** kubeconfig; default: the control plane's for `user`. */
  kubeconfig?: string;
  /** Further flags (e.g. --controllers, --leader-elect=true). */
  args?: string[];
  /** Operator namespace (Lease, config Secret). */
  namespace?: string;
  logLevel?: string;
}

/**
 * `node --import tsx src/main.ts` with its own user and health port; its output goes to
 * `<control plane dir or $E2E_FAULTS_LOG_DIR>/<user>-<n>.log`.
 */
export class OperatorProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly logPath: string;
  private readonly out: WriteStream;
  private static started = 0;

  private constructor(
    readonly user: string,
    readonly port: number,
    cp: ControlPlane,
    opts: OperatorProcessOptions,
  ) {
    // E2E_FAULTS_LOG_DIR keeps the logs (the control plane's directory is removed at the end).
    this.logPath = join(
      process.env.E2E_FAULTS_LOG_DIR ?? cp.dir,
      `${opts.user}-${++OperatorProcess.started}.log`,
    );
    this.out = createWriteStream(this.logPath);
    this.child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src', 'main.ts'),
        '--namespace',
        opts.namespace ?? 'regcred-operator',
        '--health-port',
        String(port),
        '--health-host',
        '127.0.0.1',
        // The Pod webhook (its own e2e) would race other processes for port 9443.
        '--webhook-port',
        '0',
        ...(opts.args ?? []),
      ],
      {
        env: {
          ...process.env,
          KUBECONFIG: opts.kubeconfig ?? cp.kubeconfigFor(opts.user),
          POD_NAME: opts.user,
          LOG_LEVEL: opts.logLevel ?? 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child.stdout!.pipe(this.out, { end: false });
    this.child.stderr!.pipe(this.out, { end: false });
    this.exited = new Promise((r) =>
      this.child.once('exit', (code) => {
        this.out.end();
        r(code);
      }),
    );
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  static async start(cp: ControlPlane, opts: OperatorProcessOptions): Promise<OperatorProcess> {
    return new OperatorProcess(opts.user, await freePort(), cp, opts);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The JSON log lines written so far. */
  lines(): Array<{ message: string; level: string; [key: string]: unknown }> {
    return readFileSync(this.logPath, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { message: string; level: string });
  }

  async readyz(): Promise<number | undefined> {
    return (await fetch(`http://127.0.0.1:${this.port}/readyz`).catch(() => undefined))?.status;
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `${this.user} /readyz 200`,
      async () => {
        if (!this.alive) throw new Error(`${this.user} exited: see ${this.logPath}`);
        return (await this.readyz()) === 200;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  /** SIGKILL (no drain, no Lease release), resolved once the process is gone. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM and wait for the exit code. */
  async stop(): Promise<number | null> {
    if (this.alive) this.child.kill('SIGTERM');
    return this.exited;
  }
}

const running = new Set<OperatorProcess>();
process.once('exit', () => {
  for (const p of running) p.child.kill('SIGKILL');
});

/** SIGKILLs every operator process still running (for after()). */
export async function killAllOperators(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

/** A kubeconfig for `user` that reaches the API server at `server` (e.g. through a TcpProxy). */
export function kubeconfigVia(cp: ControlPlane, user: string, server: string): string {
  const path = join(cp.dir, `${user}-via-${new URL(server).port}.kubeconfig`);
  writeFileSync(path, readFileSync(cp.kubeconfigFor(user), 'utf8').replace(cp.server, server));
  return path;
}

/** Binds cluster-admin to a token user that is NOT in system:masters (so API Priority and Fairness applies to it). */
export async function grantClusterAdmin(cluster: TestCluster, user: string): Promise<void> {
  await cluster.kubectl([
    'create',
    'clusterrolebinding',
    `${user}-cluster-admin`,
    '--clusterrole=cluster-admin',
    `--user=${user}`,
  ]);
}

// ---------------------------------------------------------------------------
// placeholder fan-out

export const FANOUT_REGISTRY = 'registry.faults.test';
const PLACEHOLDER_LABEL = 'regcred-faults/placeholder';

export const dockerConfigJson = (auths: Record<string, { username: string; password: string }>) =>
  JSON.stringify({ auths });

/** Registry → password of a placeholder's .dockerconfigjson. */
export function passwordsOf(secret: V1Secret | undefined): Record<string, string | undefined> {
  const data = secret?.data?.['.dockerconfigjson'];
  if (!data) return {};
  const parsed = JSON.parse(Buffer.from(data, 'base64').toString()) as {
    auths?: Record<string, { password?: string }>;
  };
  return Object.fromEntries(Object.entries(parsed.auths ?? {}).map(([k, v]) => [k, v.password]));
}

export interface Fanout {
  /** `<prefix>-src`: holds the source Secret `creds` and its SecretExport (toNamespaces "*"). */
  sourceNamespace: string;
  /** Namespaces with a placeholder `pull`, in creation order. */
  namespaces: string[];
  /** Writes the source Secret with a new password (one rotation). */
  rotate(password: string): Promise<void>;
  /** Creates `count` more namespaces with placeholders; resolves to their names. */
  addNamespaces(count: number): Promise<string[]>;
  /** Placeholders (namespace → registry → password), read with one list. */
  read(): Promise<Map<string, Record<string, string | undefined>>>;
  /** Namespaces whose placeholder does not yet equal `expected` (registry → password) exactly. */
  lagging(expected: Record<string, string>): Promise<string[]>;
  /** Waits until every placeholder of `namespaces` equals `expected`; resolves to the ms it took. */
  waitConverged(expected: Record<string, string>, timeoutMs?: number): Promise<number>;
  /** True once the SecretExport's status has observed its generation and the source Secret's current resourceVersion. */
  exportSettled(): Promise<boolean>;
}

/**
 * `count` namespaces `<prefix>-NNN`, each with a placeholder Secret `pull`,
 * and one source Secret exported to "*" from `<prefix>-src`, holding one
 * registry (FANOUT_REGISTRY) whose password `rotate` changes.
 */
export async function createFanout(
  client: KubeClient,
  opts: { prefix: string; count: number; password: string },
): Promise<Fanout> {
  const sourceNamespace = `${opts.prefix}-src`;
  const namespaces: string[] = [];
  let created = 0;
  const createNamespace = (name: string) =>
    client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  const addNamespaces = async (count: number) => {
    const names = Array.from({ length: count }, () => `${opts.prefix}-${String(created++).padStart(3, '0')}`);
    await pool(names, async (ns) => {
      await createNamespace(ns);
      await client.create<V1Secret>(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'pull',
          namespace: ns,
          labels: { [PLACEHOLDER_LABEL]: opts.prefix },
          annotations: { 'secretgen.carvel.dev/image-pull-secret': '' },
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': Buffer.from('{}\n').toString('base64') },
      });
    });
    namespaces.push(...names);
    return names;
  };
  const sourceData = (password: string) => ({
    '.dockerconfigjson': Buffer.from(
      dockerConfigJson({ [FANOUT_REGISTRY]: { username: 'faults', password } }),
    ).toString('base64'),
  });
  await createNamespace(sourceNamespace);
  await client.create<V1Secret>(Secrets, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'creds', namespace: sourceNamespace },
    type: 'kubernetes.io/dockerconfigjson',
    data: sourceData(opts.password),
  });
  await client.create(SecretExports, {
    apiVersion: 'secretgen.carvel.dev/v1alpha1',
    kind: 'SecretExport',
    metadata: { name: 'creds', namespace: sourceNamespace },
    spec: { toNamespaces: ['*'] },
  });
  await addNamespaces(opts.count);

  const read = async () => {
    const { items } = await client.list<V1Secret>(Secrets, {
      labelSelector: `${PLACEHOLDER_LABEL}=${opts.prefix}`,
    });
    return new Map(items.map((s) => [s.metadata!.namespace!, passwordsOf(s)]));
  };
  const lagging = async (expected: Record<string, string>) => {
    const want = JSON.stringify(Object.entries(expected).sort());
    const have = await read();
    return namespaces.filter((ns) => {
      const got = have.get(ns);
      return got === undefined || JSON.stringify(Object.entries(got).sort()) !== want;
    });
  };
  return {
    sourceNamespace,
    namespaces,
    async rotate(password) {
      await client.mergePatch(Secrets, sourceNamespace, 'creds', { data: sourceData(password) });
    },
    addNamespaces,
    read,
    lagging,
    async exportSettled() {
      const source = await client.get<V1Secret>(Secrets, sourceNamespace, 'creds');
      const exp = await client.get<{
        metadata?: { generation?: number };
        status?: { observedGeneration?: number; observedSecretResourceVersion?: string };
      }>(SecretExports, sourceNamespace, 'creds');
      return (
        exp?.status?.observedGeneration === exp?.metadata?.generation &&
        exp?.status?.observedSecretResourceVersion === source?.metadata?.resourceVersion
      );
    },
    async waitConverged(expected, timeoutMs = 120_000) {
      const started = performance.now();
      let last: string[] = [];
      await waitFor(
        `every placeholder to hold ${JSON.stringify(expected)}`,
        async () => {
          last = await lagging(expected).catch(() => ['(list failed)']);
          if (last.length === 0) return true;
          throw new Error(`${last.length} lagging, e.g. ${last.slice(0, 5).join(', ')}`);
        },
        { timeoutMs, intervalMs: 200 },
      );
      return Math.round(performance.now() - started);
    },
  };
}

// ---------------------------------------------------------------------------
// what the audit log says about the operator's writes

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

export interface WriteCounts {
  /** Write requests of the operator users (leases excluded: renewals are not work). */
  total: number;
  /** Of those, to Secrets. */
  secretWrites: number;
  /** Of those, accepted (2xx). */
  secretWritesAccepted: number;
  /** Write requests answered 429. */
  throttled: number;
  byUser: Record<string, number>;
}

/** The operator users' write requests after `offset`, Lease writes left out. */
export function operatorWrites(audit: AuditLog, users: string[], offset: number): AuditEvent[] {
  return audit
    .since(offset)
    .filter(
      (e) => users.includes(e.user.username) && WRITE_VERBS.has(e.verb) && e.objectRef?.resource !== 'leases',
    );
}

export function countWrites(events: AuditEvent[]): WriteCounts {
  const secrets = events.filter((e) => e.objectRef?.resource === 'secrets');
  const byUser: Record<string, number> = {};
  for (const e of events) byUser[e.user.username] = (byUser[e.user.username] ?? 0) + 1;
  return {
    total: events.length,
    secretWrites: secrets.length,
    secretWritesAccepted: secrets.filter((e) => (e.responseStatus?.code ?? 0) < 300).length,
    throttled: events.filter((e) => e.responseStatus?.code === 429).length,
    byUser,
  };
}

/** Resolves to the operator writes made during `quietMs` (expected: none). */
export async function writesDuring(audit: AuditLog, users: string[], quietMs: number): Promise<AuditEvent[]> {
  const offset = audit.offset();
  await sleep(quietMs);
  return operatorWrites(audit, users, offset);
}

export const describeWrites = (events: AuditEvent[], max = 10) =>
  events.slice(0, max).map(describeAudit).join('; ') +
  (events.length > max ? `; … ${events.length - max} more` : '');

// ---------------------------------------------------------------------------
// API server and etcd faults

/** Compacts etcd up to its current revision (its v3 JSON gateway), so older watch resourceVersions get 410 Gone. */
export async function compactEtcd(cp: ControlPlane): Promise<number> {
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${cp.etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as { header?: { revision?: string } };
  };
  const range = await post('/v3/kv/range', { key: Buffer.from('\0').toString('base64') });
  const revision = Number(range.header?.revision);
  if (!Number.isSafeInteger(revision) || revision <= 0)
    throw new Error(`etcd revision: ${JSON.stringify(range)}`);
  await post('/v3/kv/compaction', { revision, physical: true });
  return revision;
}

/** Drops every connection through `proxy` `times` times, refusing new ones for `downMs` each time. */
export async function cutConnections(
  proxy: TcpProxy,
  { times = 1, downMs = 500, upMs = 500 } = {},
): Promise<void> {
  for (let i = 0; i < times; i++) {
    proxy.cut();
    await sleep(downMs);
    proxy.restore();
    if (i < times - 1) await sleep(upMs);
  }
}

export interface FlowControlFault {
  name: string;
  remove(): Promise<void>;
}

/**
 * A FlowSchema matching `user` (it must not be in system:masters, which is
 * exempt) with a PriorityLevelConfiguration of one concurrency share, no
 * borrowing, and one queue of length one: concurrent requests of the user get
 * 429 with Retry-After. remove() deletes both.
 */
export async function tightenFlowControl(cluster: TestCluster, user: string): Promise<FlowControlFault> {
  const name = `faults-tight-${user}`;
  const docs = [
    {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'PriorityLevelConfiguration',
      metadata: { name },
      spec: {
        type: 'Limited',
        limited: {
          nominalConcurrencyShares: 1,
          lendablePercent: 0,
          borrowingLimitPercent: 0,
          limitResponse: { type: 'Queue', queuing: { queues: 1, handSize: 1, queueLengthLimit: 1 } },
        },
      },
    },
    {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'FlowSchema',
      metadata: { name },
      spec: {
        priorityLevelConfiguration: { name },
        matchingPrecedence: 100,
        distinguisherMethod: { type: 'ByUser' },
        rules: [
          {
            subjects: [{ kind: 'User', user: { name: user } }],
            resourceRules: [
              { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true },
            ],
            nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
          },
        ],
      },
    },
  ];
  await cluster.apply(docs.map((d) => JSON.stringify(d)).join('\n'));
  return {
    name,
    async remove() {
      await cluster.kubectl(['delete', 'flowschema', name, '--ignore-not-found']);
      await cluster.kubectl(['delete', 'prioritylevelconfiguration', name, '--ignore-not-found']);
    },
  };
}

// ---------------------------------------------------------------------------
// registry faults

export type RegistryFaultMode = 'pass' | 'down' | 'status500' | 'slow' | 'wrongCa';

export interface HttpsFaultProxyOptions {
  /** The real registry: host, port and the CA that signed its certificate. */
  target: { host: string; port: number; ca: string };
  /** Certificate and key the proxy serves in every mode but wrongCa (e.g. the registry's own, valid for 127.0.0.1). */
  tls: { cert: string; key: string };
  /** Certificate and key from another CA, served in wrongCa mode. */
  otherCaTls: { cert: string; key: string };
  /** How long a request waits in slow mode before it is forwarded. */
  slowMs?: number;
}

/**
 * An HTTPS proxy on a loopback port in front of an HTTPS registry, switched
 * between modes: pass (forward), down (port closed: connection refused),
 * status500 (every request answered 500), slow (each request held slowMs
 * before it is forwarded) and wrongCa (TLS with a certificate from another
 * CA). Switching drops open connections, so no request finishes in the old mode.
 */
export class HttpsFaultProxy {
  private server: HttpsServer | undefined;
  private readonly sockets = new Set<Socket>();
  private modeNow: RegistryFaultMode = 'pass';
  /** Requests seen per mode (down counts none). */
  readonly requests: Record<RegistryFaultMode, number> = {
    pass: 0,
    down: 0,
    status500: 0,
    slow: 0,
    wrongCa: 0,
  };
  port = 0;

  constructor(private readonly opts: HttpsFaultProxyOptions) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get mode(): RegistryFaultMode {
    return this.modeNow;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    await this.listen();
  }

  private async listen(): Promise<void> {
    const tls = this.modeNow === 'wrongCa' ? this.opts.otherCaTls : this.opts.tls;
    const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  private async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async setMode(mode: RegistryFaultMode): Promise<void> {
    this.modeNow = mode;
    await this.close();
    if (mode !== 'down') await this.listen();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const mode = this.modeNow;
    this.requests[mode] += 1;
    if (mode === 'status500') {
      req.resume();
      res.writeHead(500, { 'content-type': 'text/plain' }).end('injected fault: internal server error\n');
      return;
    }
    const forward = () => {
      const { host, port, ca } = this.opts.target;
      const upstream = httpsRequest(
        {
          host,
          port,
          ca,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: `${host}:${port}` },
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      res.on('close', () => upstream.destroy());
      req.pipe(upstream);
    };
    if (mode === 'slow') {
      const timer = setTimeout(forward, this.opts.slowMs ?? 10_000);
      res.on('close', () => clearTimeout(timer));
    } else {
      forward();
    }
  }

  async stop(): Promise<void> {
    await this.close();
  }
}

/** A fresh random password. */
export const newPassword = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

// ---------------------------------------------------------------------------
// one fault case during a rotation

export interface RotationCaseOptions {
  /** Printed in the summary line. */
  label: string;
  audit: AuditLog;
  /** Users whose writes are the operator's. */
  users: string[];
  fanout: Fanout;
  /**
   * Injects the fault once the rotation is written and (by default) the first
   * placeholders hold the new value; resolves when the fault is over.
   * `rotated` is how many placeholders held it when the fault began.
   */
  fault(ctx: { password: string; rotated: number }): Promise<void>;
  /** Placeholders that must hold the new value before the fault (default 1; 0: inject at once). */
  faultAfterRotated?: number;
  /** What every placeholder must hold in the end (default: the rotated registry's new password only). */
  expected?(password: string): Record<string, string>;
  /** Placeholders that have to change (default: all of the fan-out); the write bounds scale with it. */
  changed?: number;
  /** Write requests to Secrets allowed per changed placeholder (default 3; failed and 429 ones count too). */
  maxSecretWritesPerPlaceholder?: number;
  /** Accepted Secret writes allowed per changed placeholder (default 2). */
  maxAcceptedPerPlaceholder?: number;
  /**
   * Further conditions of a settled cluster, waited for after the placeholders
   * converged and before the quiet window (e.g. deleted namespaces gone). The
   * SecretExport's status observing the rotated Secret is always waited for.
   */
  settled?(): Promise<boolean>;
  quietMs?: number;
  convergeTimeoutMs?: number;
  /**
   * Longest allowed time from the end of the fault to convergence (default 30 s: client-go's
   * reflector backoff, 0.8 s doubling, is capped at 30 s; a longer gap after the API is back is a defect).
   */
  maxRecoveryMs?: number;
}

export interface RotationCaseResult {
  password: string;
  /** How many placeholders held the new value when the fault began. */
  rotatedAtFault: number;
  /** From the rotation write to every placeholder holding the new value. */
  convergedMs: number;
  /** From the end of the fault to every placeholder holding the new value. */
  recoveredMs: number;
  counts: WriteCounts;
  summary: string;
}

/**
 * Rotates the fan-out's credential, injects the fault mid-fan-out, and checks
 * the outcome: every placeholder holds the newest value, the operator's write
 * requests stay within a small multiple of the placeholders changed (no hot
 * loop), and it writes nothing during a quiet window after convergence.
 * Prints one summary line. Throws (an AssertionError-like Error) on failure.
 */
export async function runRotationCase(opts: RotationCaseOptions): Promise<RotationCaseResult> {
  const { fanout, audit, users } = opts;
  const n = opts.changed ?? fanout.namespaces.length;
  const password = newPassword(opts.label.replace(/[^a-z0-9]+/gi, '-').slice(0, 20));
  const expected = opts.expected?.(password) ?? { [FANOUT_REGISTRY]: password };
  const offset = audit.offset();
  const started = performance.now();
  await fanout.rotate(password);
  let rotated = 0;
  const minRotated = opts.faultAfterRotated ?? 1;
  if (minRotated > 0) {
    await waitFor(
      `${minRotated} placeholder(s) to hold the new value before the fault`,
      async () => {
        const have = await fanout.read();
        rotated = [...have.values()].filter((p) => p[FANOUT_REGISTRY] === password).length;
        return rotated >= minRotated;
      },
      { timeoutMs: 30_000, intervalMs: 10 },
    );
  }
  if (rotated >= fanout.namespaces.length)
    throw new Error(`${opts.label}: the fan-out had finished before the fault; the case tested nothing`);
  await opts.fault({ password, rotated });
  const faultEnded = performance.now();
  await fanout.waitConverged(expected, opts.convergeTimeoutMs ?? 120_000);
  const convergedMs = Math.round(performance.now() - started);
  const recoveredMs = Math.round(performance.now() - faultEnded);
  await waitFor('the SecretExport status to observe the rotated Secret', () => fanout.exportSettled(), {
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  if (opts.settled)
    await waitFor(`${opts.label}: settled`, () => opts.settled!(), { timeoutMs: 60_000, intervalMs: 200 });
  const quiet = await writesDuring(audit, users, opts.quietMs ?? 10_000);
  const counts = countWrites(operatorWrites(audit, users, offset));
  const summary =
    `${opts.label}: ${n} placeholders converged ${convergedMs} ms after the rotation ` +
    `(fault began with ${rotated} rotated, recovered ${recoveredMs} ms after it ended); operator writes: ${counts.total} ` +
    `(Secrets ${counts.secretWrites}, accepted ${counts.secretWritesAccepted}, 429 ${counts.throttled}; ` +
    `by user ${JSON.stringify(counts.byUser)}); after convergence ${quiet.length} in ${(opts.quietMs ?? 10_000) / 1000} s`;
  console.log(`# ${summary}`);
  const maxRecoveryMs = opts.maxRecoveryMs ?? 30_000;
  if (recoveredMs > maxRecoveryMs)
    throw new Error(
      `${opts.label}: converged ${recoveredMs} ms after the fault ended (> ${maxRecoveryMs} ms)`,
    );
  if (quiet.length > 0)
    throw new Error(`${opts.label}: the operator kept writing after convergence: ${describeWrites(quiet)}`);
  const maxAttempts = (opts.maxSecretWritesPerPlaceholder ?? 3) * n;
  if (counts.secretWrites > maxAttempts)
    throw new Error(
      `${opts.label}: ${counts.secretWrites} Secret write requests for ${n} placeholders (> ${maxAttempts}): hot loop`,
    );
  const maxAccepted = (opts.maxAcceptedPerPlaceholder ?? 2) * n;
  if (counts.secretWritesAccepted > maxAccepted)
    throw new Error(
      `${opts.label}: ${counts.secretWritesAccepted} accepted Secret writes for ${n} placeholders (> ${maxAccepted})`,
    );
  // Everything else the operator wrote (SecretExport status, Events) is per object, not per retry.
  const other = counts.total - counts.secretWrites;
  if (other > 20 + Math.ceil(n / 10))
    throw new Error(`${opts.label}: ${other} non-Secret writes during the case`);
  return { password, rotatedAtFault: rotated, convergedMs, recoveredMs, counts, summary };
}

export interface LoadResult {
  requests: number;
  /** Answered 429. */
  throttled: number;
}

/**
 * `concurrency` loops of GET `path` as `user`, straight to the API server, until
 * stop(): other clients of the same priority level (and flow) saturating it,
 * so the operator's own requests meet 429s.
 */
export function loadAsUser(
  cp: ControlPlane,
  user: string,
  { concurrency = 16, path = '/api/v1/namespaces?limit=500' } = {},
): { stop(): Promise<LoadResult> } {
  const token = /token: (\S+)/.exec(readFileSync(cp.kubeconfigFor(user), 'utf8'))![1]!;
  const ca = readFileSync(cp.caFile);
  const result: LoadResult = { requests: 0, throttled: 0 };
  let stopped = false;
  const once = () =>
    new Promise<void>((resolve) => {
      const req = httpsRequest(
        `${cp.server}${path}`,
        { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 10_000 },
        (res) => {
          result.requests += 1;
          if (res.statusCode === 429) result.throttled += 1;
          res.resume();
          res.on('end', resolve).on('error', () => resolve());
        },
      );
      req.on('error', () => resolve());
      req.on('timeout', () => req.destroy());
      req.end();
    });
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      await once();
      // A throttled client of a real storm comes straight back; keep a floor so this loop is not a busy one.
      await sleep(5);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return result;
    },
  };
}
