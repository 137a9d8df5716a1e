// The bad-input catalogue: what a hostile or careless tenant can put into its
// own namespaces, one table row each, against a real control plane (audit log
// on) with the whole operator in-process and a real TLS + htpasswd registry.
//
// Every row asserts three things:
//   1. the clear report of the bad input (status condition, status annotation,
//      Event text, or the admission error);
//   2. nothing else changed: the operator wrote nothing outside the row's own
//      namespaces (audit log), and the objects the row names as bystanders
//      kept their resourceVersion;
//   3. a canary placeholder in another namespace still gets a rotated
//      credential within 1 s, once while the operator handles the bad input
//      and once after it reported it.
// The control plane, the registry and the operator start once. Each row gets
// fresh namespaces (annotated as excluded from "*" so one row's wildcard
// exports cannot reach another row's placeholders) and deletes them when it ends.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { CoreV1Event, KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { SecretExportSpec } from '../generated/index.js';
import {
  Apps,
  PackageInstalls,
  PackageRepositories,
  Packages,
} from '../src/packaging/controllers/resources.js';
import type { ResourceType } from '../src/runtime/kube-client.js';
import {
  b64,
  createNamespace,
  dockerConfigSecret,
  Events,
  eventually,
  EXCLUDED,
  IMAGE_PULL_SECRET,
  Namespaces,
  placeholderSecret,
  readPlaceholder,
  secretExport,
  shareSecret,
  SecretExports,
  secretImport,
  SecretImports,
  Secrets,
  sleep,
  STATUS,
  succeededStatus,
  userPass,
} from './fixtures/sharing/env.js';
import {
  describeAudit,
  startOperatorEnv,
  type AuditEvent,
  type OperatorEnv,
} from './harness/operator-env.js';
import { startRegistry, writeOciLayout, type TestRegistry } from './harness/registry.js';

// ---------------------------------------------------------------------------
// environment

const OPERATOR_USER = 'operator';
const OPERATOR_NS = 'regcred-operator';
const CONFIG_SECRET = 'regcred-operator-config';
const CANARY_SRC = 'bi-canary-src';
const CANARY = 'bi-canary';
const BYSTANDER = 'bi-bystander';
const CANARY_REGISTRY = 'canary.example.com';
/** The canary's bound: a rotated credential reaches its placeholder within this. */
const CANARY_MS = 1000;
/** How long a row waits for the operator's report of its bad input. */
const REPORT_MS = 8000;
const FETCH_REPORT_MS = 20_000;
/** The operator's --fetch-timeout here: short, so the slow-registry row ends quickly. */
const FETCH_TIMEOUT_MS = 3000;
/** --max-concurrent-fetches here; one namespace gets at most half. */
const MAX_CONCURRENT_FETCHES = 4;
/** --fetch-disk-budget here: each running fetch may use a quarter, 16 MiB. */
const FETCH_DISK_BUDGET = 64 * 1024 * 1024;
const ALICE = { username: 'alice', password: 'bad-input-Alice-Pa55' };
const PKG_API = 'packaging.carvel.dev/v1alpha1';
const DATA_API = 'data.packaging.carvel.dev/v1alpha1';
const APP_API = 'kappctrl.k14s.io/v1alpha1';
const SEE = 'Error (see .status.usefulErrorMessage for details)';
const TEMPLATE_UNSUPPORTED = 'Templating dir: template stage 0 (ytt): not supported yet';
const WRONG_TYPE_STATUS =
  '{"conditions":[{"type":"ReconcileFailed","status":"True","message":"Expected secret to have type=corev1.SecretTypeDockerConfigJson, but did not"}]}';
const NO_CREDENTIAL = 'no credential (none of username, password, auth, identitytoken, registrytoken)';

let env: OperatorEnv;
let registry: TestRegistry;
let work: string;
/** A TLS server (the registry's certificate) that answers every request one byte per 300 ms. */
let slowServer: TlsServer | undefined;
let slowPort = 0;
const slowSockets = new Set<Socket>();
let canaryRound = 0;
/** What the operator did while the last canary round filled. */
let lastDiagnosis = '';
let bystanderVersion = '';
/** The operator's API requests by verb when the current row started. */
let requestsBefore: Record<string, number> = {};
/** Namespaces of rows that ended; deleting them may still cause writes there (finalizers, retries). */
const retired = new Set<string>();

interface Condition {
  type: string;
  status?: string;
  reason?: string;
  message?: string;
}
interface Status {
  observedGeneration?: number;
  conditions?: Condition[];
  friendlyDescription?: string;
  usefulErrorMessage?: string;
  reachedNamespaceCount?: number;
  fetch?: { exitCode?: number; error?: string; stdout?: string };
  [key: string]: unknown;
}
type Obj = KubernetesObject & { spec?: Record<string, unknown>; status?: Status };

const canaryConfig = (round: number) => ({
  auths: { [CANARY_REGISTRY]: { username: 'canary', password: `canary-pw-${round}` } },
});

/** Where the operator extracts fetches; empty whenever no fetch runs. */
const fetchTmp = () => join(work, 'fetch-tmp');

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'regcred-bad-input-'));
  mkdirSync(fetchTmp());
  const [started, startedRegistry] = await Promise.all([
    startOperatorEnv({
      operatorUser: OPERATOR_USER,
      config: {
        resyncPeriodMs: 10 * 60_000,
        concurrency: 16,
        kubeApiQps: 500,
        kubeApiBurst: 1000,
        fetchTimeoutMs: FETCH_TIMEOUT_MS,
        maxConcurrentFetches: MAX_CONCURRENT_FETCHES,
        fetchDiskBudgetBytes: FETCH_DISK_BUDGET,
        fetchTmpDir: fetchTmp(),
      },
    }),
    startRegistry({ users: [ALICE] }),
  ]);
  env = started;
  registry = startedRegistry;
  slowServer = await startSlowServer();
  await createNamespace(env.client, OPERATOR_NS);
  await env.client.create(Secrets, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { namespace: OPERATOR_NS, name: CONFIG_SECRET },
    stringData: { caCerts: registry.caCert },
  });
  for (const ns of [CANARY_SRC, CANARY, BYSTANDER])
    await createNamespace(env.client, ns, { annotations: { [EXCLUDED]: '' } });
  await env.client.create(Secrets, dockerConfigSecret(CANARY_SRC, 'canary', canaryConfig(0)));
  await env.client.create(SecretExports, secretExport(CANARY_SRC, 'canary', { toNamespaces: [CANARY] }));
  await env.client.create(Secrets, placeholderSecret(CANARY, 'creds'));
  const bystander = { auths: { 'bystander.example.com': { auth: b64('by:stander') } } };
  await env.client.create(Secrets, dockerConfigSecret(CANARY_SRC, 'bystander', bystander));
  await env.client.create(
    SecretExports,
    secretExport(CANARY_SRC, 'bystander', { toNamespaces: [BYSTANDER] }),
  );
  await env.client.create(Secrets, placeholderSecret(BYSTANDER, 'creds'));
  await eventually(
    'the canary and bystander placeholders to fill',
    async () => {
      const canary = await readPlaceholder(env.client, CANARY, 'creds');
      assert.deepEqual(canary.config, {
        auths: { [CANARY_REGISTRY]: userPass('canary', 'canary-pw-0') },
      });
      const filled = await readPlaceholder(env.client, BYSTANDER, 'creds');
      assert.deepEqual(filled.config, bystander);
      bystanderVersion = filled.resourceVersion;
    },
    { timeoutMs: 20_000 },
  );
});

after(async () => {
  for (const socket of slowSockets) socket.destroy();
  slowServer?.close();
  await env?.stop();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Sends the status line, then one header byte every 300 ms, for as long as the client stays. */
async function startSlowServer(): Promise<TlsServer> {
  const tls = join(registry.dir, 'tls');
  const server = createTlsServer(
    { cert: readFileSync(join(tls, 'server.crt')), key: readFileSync(join(tls, 'server.key')) },
    (socket) => {
      slowSockets.add(socket);
      socket.on('error', () => undefined);
      socket.write('HTTP/1.1 200 OK\r\nX-Slow: ');
      const timer = setInterval(() => socket.write('a'), 300);
      socket.on('close', () => {
        clearInterval(timer);
        slowSockets.delete(socket);
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  slowPort = (server.address() as { port: number }).port;
  return server;
}

/**
 * Rotates the canary's source and waits at most CANARY_MS for the canary
 * placeholder to hold the new password; returns the time it took.
 */
async function canaryFills(when: string): Promise<number> {
  const round = ++canaryRound;
  await env.client.mergePatch(Secrets, CANARY_SRC, 'canary', {
    data: { '.dockerconfigjson': b64(JSON.stringify(canaryConfig(round))) },
  });
  const started = performance.now();
  const requestsAtStart = { ...env.operator.client.counts };
  // The operator runs in this process: a blocked event loop shows as a late tick.
  let lastTick = performance.now();
  let longestStall = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestStall = Math.max(longestStall, now - lastTick - 10);
    lastTick = now;
  }, 10);
  const diagnosis = () => {
    const counts = env.operator.client.counts;
    const delta = Object.keys(counts)
      .map((verb) => `${verb} ${(counts[verb] ?? 0) - (requestsAtStart[verb] ?? 0)}`)
      .join(', ');
    return `operator API requests meanwhile: ${delta}; longest event-loop stall ${Math.round(longestStall)} ms`;
  };
  let seen: string;
  try {
    for (;;) {
      const state = await readPlaceholder(env.client, CANARY, 'creds');
      seen = state.raw;
      const elapsed = performance.now() - started;
      if (seen.includes(`"canary-pw-${round}"`)) {
        // Measured when the read that saw it returned: the fill happened before, maybe a little.
        if (elapsed > CANARY_MS)
          assert.fail(
            `${when}: the canary placeholder ${CANARY}/creds got round ${round} after ${Math.round(elapsed)} ms, more than ${CANARY_MS} ms (${diagnosis()})`,
          );
        lastDiagnosis = diagnosis();
        return elapsed;
      }
      if (elapsed > 10 * CANARY_MS) {
        assert.fail(
          `${when}: the canary placeholder ${CANARY}/creds did not get round ${round} within ${10 * CANARY_MS} ms; it holds ${seen.slice(0, 300)} (${diagnosis()})`,
        );
      }
      await sleep(10);
    }
  } finally {
    clearInterval(ticker);
  }
}

// ---------------------------------------------------------------------------
// the rows

interface Row {
  /** The row's namespaces; the first is the main one. */
  nss: string[];
  ns: string;
  ns2: string;
  /** Objects that must keep the resourceVersion they have once `setup` returned. */
  untouched: Array<[ResourceType, string | undefined, string]>;
  /** Further operator writes this row allows outside its namespaces. */
  allowWrite?: (e: AuditEvent) => boolean;
}

interface BadInputCase {
  name: string;
  /** Set while the behaviour this row asserts waits for a fix; the row still runs. */
  todo?: string;
  /** Explicit namespace names (for the length-limit rows); default `<id>` and `<id>-b`. */
  namespaces?: (id: string) => string[];
  /** Creates the bad input (and whatever it needs around it). */
  setup(r: Row): Promise<void>;
  /** Waits for the clear report of the bad input. */
  expect(r: Row): Promise<void>;
  /** Checks made after the canary (e.g. that something settled). */
  settle?(r: Row): Promise<void>;
}

async function resourceVersionOf(rt: ResourceType, namespace: string | undefined, name: string) {
  const obj = await env.client.get(rt, namespace, name);
  return `${rt.plural} ${namespace ?? ''}/${name}@${obj?.metadata?.resourceVersion ?? '(absent)'}`;
}

const canaryWrite = (e: AuditEvent) => {
  const ref = e.objectRef ?? {};
  return (
    (ref.namespace === CANARY && ref.resource === 'secrets' && ref.name === 'creds') ||
    (ref.namespace === CANARY_SRC && ref.resource === 'secretexports' && ref.name === 'canary')
  );
};

/** Waits (at most `timeoutMs`, without failing) until the operator has written nothing for `quietMs`. */
async function waitForQuiet(quietMs: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const offset = env.audit.offset();
    await sleep(quietMs);
    if (env.operatorWritesSince(offset).length === 0) return;
  }
}

async function runCase(index: number, c: BadInputCase): Promise<void> {
  const id = `bi-${String(index).padStart(2, '0')}`;
  const nss = c.namespaces?.(id) ?? [id, `${id}-b`];
  // Start from a quiet operator, so the canary measures this row's bad input and not the previous row's clean-up.
  await waitForQuiet(300, 5000);
  for (const ns of nss) await createNamespace(env.client, ns, { annotations: { [EXCLUDED]: '' } });
  const row: Row = { nss, ns: nss[0]!, ns2: nss[1] ?? nss[0]!, untouched: [] };
  const offset = env.audit.offset();
  try {
    await c.setup(row);
    const untouchedBefore = await Promise.all(
      row.untouched.map(([rt, ns, n]) => resourceVersionOf(rt, ns, n)),
    );
    const during = await canaryFills('while the operator handles the bad input');
    const duringDiagnosis = lastDiagnosis;
    await c.expect(row);
    const reported = await canaryFills('with the bad input reported');
    console.log(
      `# ${id}: canary filled in ${Math.round(during)} ms (${duringDiagnosis}), then ${Math.round(reported)} ms`,
    );
    await c.settle?.(row);

    // Nothing else changed.
    const untouchedAfter = await Promise.all(
      row.untouched.map(([rt, ns, n]) => resourceVersionOf(rt, ns, n)),
    );
    assert.deepEqual(untouchedAfter, untouchedBefore, 'objects the bad input must not touch were written');
    const bystander = await readPlaceholder(env.client, BYSTANDER, 'creds');
    assert.equal(bystander.resourceVersion, bystanderVersion, `the bystander placeholder was written`);
    await sleep(100); // the audit log is written asynchronously
    const mine = new Set(nss);
    const stray = env
      .operatorWritesSince(offset)
      .filter((e) => !mine.has(e.objectRef?.namespace ?? '') && !retired.has(e.objectRef?.namespace ?? ''))
      .filter((e) => !canaryWrite(e) && !(row.allowWrite?.(e) ?? false));
    assert.deepEqual(
      stray.map(describeAudit),
      [],
      'the operator wrote outside the namespaces of the bad input',
    );
  } finally {
    for (const ns of nss) {
      retired.add(ns);
      await env.client.delete(Namespaces, undefined, ns).catch(() => undefined);
    }
  }
}

// ---------------------------------------------------------------------------
// helpers for the rows

/** Pushes a repository bundle of `files` and a PackageRepository fetching it with Alice's credentials. */
async function createRepository(
  namespace: string,
  name: string,
  repository: string,
  files: Record<string, string>,
): Promise<void> {
  const bundle = await pushBundle(repository, files);
  await env.client.create(Secrets, aliceSecret(namespace, 'creds'));
  await env.client.create(PackageRepositories, {
    apiVersion: PKG_API,
    kind: 'PackageRepository',
    metadata: { namespace, name },
    spec: { fetch: { imgpkgBundle: { image: bundle, secretRef: { name: 'creds' } } } },
  });
}

const share = (
  namespace: string,
  name: string,
  config: unknown,
  spec: SecretExportSpec,
  annotations?: Record<string, string>,
) => shareSecret(env.client, namespace, name, config, spec, annotations);

async function getStatus(rt: ResourceType, namespace: string, name: string): Promise<Status | undefined> {
  return (await env.client.get<Obj>(rt, namespace, name))?.status;
}

/** `type reason: message` of the Events about one object. */
async function eventTexts(namespace: string, name: string): Promise<string[]> {
  const { items } = await env.client.list<CoreV1Event>(Events, {
    namespace,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return items.map((e) => `${e.type} ${e.reason}: ${e.message}`);
}

async function expectEvent(namespace: string, name: string, text: string, timeoutMs = REPORT_MS) {
  await eventually(
    `Event "${text}" about ${namespace}/${name}`,
    async () => {
      const texts = await eventTexts(namespace, name);
      assert.ok(texts.includes(text), `Events about ${namespace}/${name}: ${JSON.stringify(texts, null, 1)}`);
    },
    { timeoutMs },
  );
}

/** A status for an assertion message: long texts as their head, tail and length. */
function showStatus(status: Status | undefined): string {
  return JSON.stringify(
    status,
    (_key, value: unknown) =>
      typeof value === 'string' && value.length > 1200
        ? `${value.slice(0, 600)} [… ${value.length} characters in all …] ${value.slice(-400)}`
        : value,
    1,
  );
}

/** Waits for a one-condition status of the given type (and message, when given). */
async function expectCondition(
  rt: ResourceType,
  namespace: string,
  name: string,
  want: { type: string; message?: string | RegExp; useful?: string | RegExp },
  timeoutMs = REPORT_MS,
): Promise<Status> {
  let status: Status | undefined;
  await eventually(
    `${rt.kind} ${namespace}/${name} to report ${want.type}`,
    async () => {
      const obj = await env.client.get<Obj>(rt, namespace, name);
      status = obj?.status;
      const shown = showStatus(status);
      assert.ok(obj, `${rt.kind} ${namespace}/${name} does not exist`);
      assert.equal(status?.conditions?.length, 1, `conditions of ${rt.kind} ${namespace}/${name}: ${shown}`);
      const condition = status.conditions[0]!;
      assert.equal(condition.type, want.type, `condition of ${rt.kind} ${namespace}/${name}: ${shown}`);
      const match = (actual: string | undefined, expected: string | RegExp | undefined, what: string) => {
        if (expected === undefined) return;
        if (typeof expected === 'string') assert.equal(actual, expected, `${what}: ${shown}`);
        else assert.match(actual ?? '', expected, `${what}: ${shown}`);
      };
      match(condition.message, want.message, 'condition message');
      match(status.usefulErrorMessage, want.useful, 'usefulErrorMessage');
      if (obj.metadata?.generation !== undefined && status.observedGeneration !== undefined)
        assert.equal(status.observedGeneration, obj.metadata.generation, `observedGeneration: ${shown}`);
    },
    { timeoutMs },
  );
  return status!;
}

/** Waits until the placeholder holds `config` (parsed) and exactly `status`. */
async function expectPlaceholderState(
  namespace: string,
  name: string,
  config: unknown,
  status: string,
  timeoutMs = REPORT_MS,
) {
  await eventually(
    `placeholder ${namespace}/${name}`,
    async () => {
      const state = await readPlaceholder(env.client, namespace, name);
      assert.deepEqual(state.config, config, `content of ${namespace}/${name}`);
      assert.equal(state.status, status, `status annotation of ${namespace}/${name}`);
    },
    { timeoutMs },
  );
}

/** The operator wrote nothing in `namespaces` for `quietMs` (within `timeoutMs`). */
async function expectSettled(namespaces: string[], quietMs = 2000, timeoutMs = 10_000) {
  const started = Date.now();
  let last: string[];
  for (;;) {
    const offset = env.audit.offset();
    await sleep(quietMs);
    last = env
      .operatorWritesSince(offset)
      .filter((e) => namespaces.includes(e.objectRef?.namespace ?? ''))
      .map(describeAudit);
    if (last.length === 0) return;
    if (Date.now() - started > timeoutMs)
      assert.fail(
        `the operator kept writing (${last.length} writes in ${quietMs} ms): ${last.slice(0, 10).join(', ')}`,
      );
  }
}

const GOOD = { auths: { 'good.example.com': { username: 'good', password: 'good-pw' } } };
const GOOD_FILLED = { auths: { 'good.example.com': userPass('good', 'good-pw') } };

/**
 * A malformed source next to a good one, both exported to a placeholder: the
 * good one still fills it, the bad one is skipped and named in the status
 * annotation, and its export reports the problem (or succeeds when the source
 * is usable).
 */
function malformedSource(
  name: string,
  config: unknown,
  want: { exportError?: string; skipped?: { registry?: string; reason: string }; used?: boolean },
): BadInputCase {
  return {
    name,
    async setup(r) {
      await share(r.ns2, 'good', GOOD, { toNamespaces: [r.ns] });
      await share(r.ns2, 'bad', config, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
      r.untouched.push([Secrets, r.ns2, 'bad'], [Secrets, r.ns2, 'good']);
    },
    async expect(r) {
      const bad = `${r.ns2}/bad`;
      const used = want.used ?? want.exportError === undefined;
      const skipped = want.skipped ? [{ source: bad, ...want.skipped }] : [];
      await expectPlaceholderState(
        r.ns,
        'creds',
        GOOD_FILLED,
        succeededStatus(used ? [bad, `${r.ns2}/good`] : [`${r.ns2}/good`], { skipped }),
      );
      if (want.exportError) {
        const message = `Exported secret is not valid kubernetes.io/dockerconfigjson: ${want.exportError}`;
        await expectCondition(SecretExports, r.ns2, 'bad', { type: 'ReconcileFailed', message });
        await expectEvent(r.ns2, 'bad', `Warning ReconcileFailed: ${message}`);
      } else {
        await expectCondition(SecretExports, r.ns2, 'bad', { type: 'ReconcileSucceeded' });
      }
      if (want.skipped) {
        const where = want.skipped.registry ? ` registry ${want.skipped.registry}` : '';
        await expectEvent(
          r.ns,
          'creds',
          `Warning SourceSkipped: Skipped ${bad}${where}: ${want.skipped.reason}`,
        );
      }
    },
  };
}

/** A source of another Secret type exported next to a good one: not merged, the export itself is fine. */
function wrongSourceType(name: string, type: string, data: Record<string, string>): BadInputCase {
  return {
    name,
    async setup(r) {
      await share(r.ns2, 'good', GOOD, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace: r.ns2, name: 'other' },
        type,
        data,
      });
      await env.client.create(SecretExports, secretExport(r.ns2, 'other', { toNamespaces: [r.ns] }));
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
      r.untouched.push([Secrets, r.ns2, 'other']);
    },
    async expect(r) {
      await expectPlaceholderState(r.ns, 'creds', GOOD_FILLED, succeededStatus([`${r.ns2}/good`]));
      await expectCondition(SecretExports, r.ns2, 'other', { type: 'ReconcileSucceeded' });
    },
  };
}

/** An annotated Secret of another type: data untouched, upstream's failure annotation. */
function wrongPlaceholderType(name: string, type: string, data: Record<string, string>): BadInputCase {
  let marked = '';
  return {
    name,
    async setup(r) {
      await share(r.ns2, 'good', GOOD, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace: r.ns, name: 'wrong', annotations: { [IMAGE_PULL_SECRET]: '' } },
        type,
        data,
      });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'right'));
    },
    async expect(r) {
      await eventually('the wrong-type status annotation', async () => {
        const s = await env.client.get<V1Secret>(Secrets, r.ns, 'wrong');
        assert.equal(s?.metadata?.annotations?.[STATUS], WRONG_TYPE_STATUS, JSON.stringify(s?.metadata));
        assert.equal(s?.type, type);
        assert.deepEqual(s?.data, data, 'the data of a wrong-type placeholder was changed');
      });
      await expectPlaceholderState(r.ns, 'right', GOOD_FILLED, succeededStatus([`${r.ns2}/good`]));
      marked = await resourceVersionOf(Secrets, r.ns, 'wrong');
    },
    async settle(r) {
      // Marked once; the canary's rounds and the right placeholder's fill did not touch it again.
      assert.equal(await resourceVersionOf(Secrets, r.ns, 'wrong'), marked);
    },
  };
}

/** Registry entries `r<i>.example.com`, each a distinct auth. */
function manyRegistries(count: number, prefix = 'r', pad = 0): Record<string, { auth: string }> {
  const auths: Record<string, { auth: string }> = {};
  for (let i = 0; i < count; i++) {
    auths[`${prefix}${String(i).padStart(5, '0')}.example.com`] = {
      auth: b64(`u${i}:${'p'.repeat(pad)}${i}`),
    };
  }
  return auths;
}

/** A DNS-subdomain name of exactly `length` characters (labels of at most 63). */
function longName(length: number, seed: string): string {
  let name = seed;
  while (name.length < length) name += name.length % 64 === 63 ? '.' : 'x';
  return name.slice(0, length - 1) + 'z';
}

function appObject(namespace: string, name: string, spec: Record<string, unknown>): Obj {
  return { apiVersion: APP_API, kind: 'App', metadata: { namespace, name }, spec };
}

async function createApp(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await env.client.create(Apps, appObject(namespace, name, spec));
}

const TEMPLATE_AND_DEPLOY = { template: [{ ytt: {} }], deploy: [{ kapp: {} }] };

async function createPackageAndInstall(
  namespace: string,
  name: string,
  fetch: unknown[],
  extra: { annotations?: Record<string, string>; serviceAccountName?: string } = {},
): Promise<void> {
  const refName = `${name}.bad-input.carvel.dev`;
  await env.client.create(Packages, {
    apiVersion: DATA_API,
    kind: 'Package',
    metadata: { namespace, name: `${refName}.1.0.0` },
    spec: { refName, version: '1.0.0', template: { spec: { fetch, ...TEMPLATE_AND_DEPLOY } } },
  });
  await env.client.create(PackageInstalls, {
    apiVersion: PKG_API,
    kind: 'PackageInstall',
    metadata: { namespace, name, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      serviceAccountName: extra.serviceAccountName ?? 'installer',
      packageRef: { refName, versionSelection: { constraints: '1.0.0' } },
    },
  });
}

function fetchAnnotationCase(indexText: string, expected: string): BadInputCase {
  const annotation = `ext.packaging.carvel.dev/fetch-${indexText}-secret-name`;
  return {
    name: `PackageInstall annotation ${annotation}: ignored with a Warning Event naming it; stage 1 still gets its placeholder`,
    async setup(r) {
      await createPackageAndInstall(
        r.ns,
        'pkgi',
        [
          { inline: { paths: { 'a.yml': 'a: 1' } } },
          { imgpkgBundle: { image: `${registry.host}/none/bundle:1.0.0` } },
        ],
        {
          annotations: { [annotation]: 'elsewhere' },
        },
      );
    },
    async expect(r) {
      await expectEvent(r.ns, 'pkgi', expected);
      await eventually('the App with the placeholder at stage 1', async () => {
        const app = await env.client.get<Obj>(Apps, r.ns, 'pkgi');
        const fetch = app?.spec?.['fetch'] as
          Array<Record<string, { secretRef?: { name?: string } }>> | undefined;
        assert.equal(
          fetch?.[1]?.['imgpkgBundle']?.secretRef?.name,
          'pkgi-fetch-1',
          JSON.stringify(app?.spec),
        );
        assert.ok(await env.client.get(Secrets, r.ns, 'pkgi-fetch-1'), 'placeholder pkgi-fetch-1 missing');
      });
    },
  };
}

/** An object the CRD schema refuses: the API server's message names the field; nothing is stored. */
function rejectedAtAdmission(
  name: string,
  rt: ResourceType,
  build: (namespace: string) => Obj,
  message: RegExp,
): BadInputCase {
  return {
    name,
    async setup(r) {
      await assert.rejects(env.client.create(rt, build(r.ns)), (err: Error) => {
        assert.match(err.message, message);
        return true;
      });
    },
    async expect(r) {
      const { items } = await env.client.list(rt, { namespace: r.ns });
      assert.deepEqual(
        items.map((o) => o.metadata?.name),
        [],
      );
    },
  };
}

/** Every Event in the cluster, as text. */
async function allEventText(): Promise<string> {
  const { items } = await env.client.list<CoreV1Event>(Events, {});
  return JSON.stringify(
    items.map((e) => [e.metadata?.namespace, e.involvedObject.name, e.reason, e.message]),
  );
}

async function pushBundle(repository: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = mkdtempSync(join(work, 'layout-'));
  await writeOciLayout(dir, files, { tag: '1.0.0', bundle: true });
  const digest = await registry.push(dir, '1.0.0', repository);
  return `${registry.host}/${repository}@${digest}`;
}

const aliceSecret = (namespace: string, name: string, key = registry.host, password = ALICE.password) =>
  dockerConfigSecret(namespace, name, { auths: { [key]: { username: ALICE.username, password } } });

// ---------------------------------------------------------------------------
// the catalogue

const LEAK_USER = 'leakuser';
const LEAK_PASSWORD = 'leakpass-9f3c';
const USERINFO = `${LEAK_USER}:${LEAK_PASSWORD}`;

const cases: BadInputCase[] = [
  // --- malformed .dockerconfigjson ----------------------------------------
  malformedSource('source {"auths":[]}: skipped, export reports auths is not an object', '{"auths":[]}', {
    exportError: 'expected "auths" to be an object, got array',
    skipped: { reason: 'expected "auths" to be an object, got array' },
  }),
  malformedSource('source {"auths":"x"}: skipped, export reports a string', '{"auths":"x"}', {
    exportError: 'expected "auths" to be an object, got string',
    skipped: { reason: 'expected "auths" to be an object, got string' },
  }),
  malformedSource('source {"auths":null}: skipped, export reports null', '{"auths":null}', {
    exportError: 'expected "auths" to be an object, got null',
    skipped: { reason: 'expected "auths" to be an object, got null' },
  }),
  malformedSource(
    'source whose auths entry is a string: skipped, entry named',
    '{"auths":{"e.example.com":"x"}}',
    {
      exportError: 'auths["e.example.com"]: expected an object, got string',
      skipped: { reason: 'auths["e.example.com"]: expected an object, got string' },
    },
  ),
  malformedSource(
    'source whose auths entry is an array: skipped, entry named',
    '{"auths":{"e.example.com":[1]}}',
    {
      exportError: 'auths["e.example.com"]: expected an object, got array',
      skipped: { reason: 'auths["e.example.com"]: expected an object, got array' },
    },
  ),
  malformedSource(
    'source with a numeric username: skipped, field named',
    { auths: { 'n.example.com': { username: 5, password: 'p' } } },
    {
      exportError: 'auths["n.example.com"].username: expected a string, got number',
      skipped: { reason: 'auths["n.example.com"].username: expected a string, got number' },
    },
  ),
  malformedSource(
    'source with an object password: skipped, field named',
    { auths: { 'o.example.com': { username: 'u', password: { nested: 'p' } } } },
    {
      exportError: 'auths["o.example.com"].password: expected a string, got object',
      skipped: { reason: 'auths["o.example.com"].password: expected a string, got object' },
    },
  ),
  malformedSource(
    'source with a boolean auth: skipped, field named',
    { auths: { 'b.example.com': { auth: true } } },
    {
      exportError: 'auths["b.example.com"].auth: expected a string, got boolean',
      skipped: { reason: 'auths["b.example.com"].auth: expected a string, got boolean' },
    },
  ),
  malformedSource('source {} (no registries): used, contributes nothing, export succeeds', '{}', {}),
  malformedSource('source without "auths": skipped, export says none found', '{"credsStore":"desktop"}', {
    exportError: 'expected an "auths" object, found none',
    skipped: { reason: 'expected an "auths" object, found none' },
  }),
  // The API server accepts any JSON that decodes into a map, and `null` does.
  malformedSource('source that is JSON null: skipped, export reports it', 'null', {
    exportError: 'expected a JSON object, got null',
    skipped: { reason: 'expected a JSON object, got null' },
  }),
  malformedSource(
    'source entry with no credential: that registry skipped and named, the source still used',
    { auths: { 'nocred.example.com': { email: 'e@example.com' } } },
    { skipped: { registry: 'nocred.example.com', reason: NO_CREDENTIAL }, used: true },
  ),
  {
    name: 'placeholder whose own content is garbage ({"auths":[]}, extra keys): replaced by the merge',
    async setup(r) {
      await share(r.ns2, 'good', GOOD, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, {
        ...placeholderSecret(r.ns, 'creds', { extra: b64('junk') }),
        data: { '.dockerconfigjson': b64('{"auths":[]}'), extra: b64('junk') },
      });
    },
    async expect(r) {
      await expectPlaceholderState(r.ns, 'creds', GOOD_FILLED, succeededStatus([`${r.ns2}/good`]));
      const state = await readPlaceholder(env.client, r.ns, 'creds');
      assert.deepEqual(Object.keys(state.secret.data ?? {}), ['.dockerconfigjson']);
    },
  },

  // --- wrong Secret types ---------------------------------------------------
  wrongPlaceholderType(
    'Opaque Secret with the placeholder annotation: data untouched, upstream failure annotation',
    'Opaque',
    {
      '.dockerconfigjson': b64('{}'),
      keep: b64('me'),
    },
  ),
  wrongPlaceholderType(
    'basic-auth Secret with the placeholder annotation: data untouched, failure annotation',
    'kubernetes.io/basic-auth',
    {
      username: b64('u'),
      password: b64('p'),
    },
  ),
  wrongSourceType('Opaque export source holding a .dockerconfigjson: not merged, export succeeds', 'Opaque', {
    '.dockerconfigjson': b64(JSON.stringify({ auths: { 'opaque.example.com': { auth: b64('o:p') } } })),
  }),
  wrongSourceType(
    'legacy kubernetes.io/dockercfg export source: not merged, export succeeds',
    'kubernetes.io/dockercfg',
    {
      '.dockercfg': b64(JSON.stringify({ 'legacy.example.com': { auth: b64('l:p') } })),
    },
  ),
  {
    name: 'SecretExport whose Secret does not exist: "Missing exported secret", placeholder gets the rest',
    async setup(r) {
      await share(r.ns2, 'good', GOOD, { toNamespaces: [r.ns] });
      await env.client.create(SecretExports, secretExport(r.ns2, 'ghost', { toNamespaces: [r.ns] }));
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
    },
    async expect(r) {
      await expectCondition(SecretExports, r.ns2, 'ghost', {
        type: 'ReconcileFailed',
        message: 'Missing exported secret',
      });
      await expectEvent(r.ns2, 'ghost', 'Warning ReconcileFailed: Missing exported secret');
      await expectPlaceholderState(r.ns, 'creds', GOOD_FILLED, succeededStatus([`${r.ns2}/good`]));
    },
  },

  // --- sizes ------------------------------------------------------------------
  {
    name: '10,000 registries in one source: all merged into the placeholder, status lists the source',
    async setup(r) {
      await share(r.ns2, 'many', { auths: manyRegistries(10_000) }, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
      r.untouched.push([Secrets, r.ns2, 'many']);
    },
    async expect(r) {
      await eventually(
        'the placeholder with 10,000 registries',
        async () => {
          const state = await readPlaceholder(env.client, r.ns, 'creds');
          assert.equal(state.status, succeededStatus([`${r.ns2}/many`]), 'status annotation');
          const auths = (state.config as { auths?: Record<string, unknown> }).auths ?? {};
          assert.equal(Object.keys(auths).length, 10_000);
          assert.deepEqual(auths['r09999.example.com'], { auth: b64('u9999:9999') });
        },
        { timeoutMs: 15_000 },
      );
      await expectCondition(SecretExports, r.ns2, 'many', { type: 'ReconcileSucceeded' });
    },
  },
  {
    name: 'a source of nearly 1 MiB: merged whole into the placeholder (still under the Secret limit)',
    async setup(r) {
      // 7,500 entries of ~130 bytes: about 975,000 bytes, written as the operator writes it.
      await share(r.ns2, 'big', { auths: manyRegistries(7500, 'r', 60) }, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
      r.untouched.push([Secrets, r.ns2, 'big']);
    },
    async expect(r) {
      await eventually(
        'the nearly-1-MiB placeholder',
        async () => {
          const state = await readPlaceholder(env.client, r.ns, 'creds');
          assert.equal(state.status, succeededStatus([`${r.ns2}/big`]), 'status annotation');
          assert.ok(state.raw.length > 900_000 && state.raw.length < 1_048_576, `size ${state.raw.length}`);
        },
        { timeoutMs: 15_000 },
      );
    },
  },
  {
    name: 'two sources whose merge exceeds the 1 MiB Secret limit: placeholder keeps its data, ReconcileFailed annotation and a PlaceholderTooLarge Event, then settles',
    async setup(r) {
      await share(r.ns2, 'half-a', { auths: manyRegistries(5500, 'a', 60) }, { toNamespaces: [r.ns] });
      await share(r.ns2, 'half-b', { auths: manyRegistries(5500, 'b', 60) }, { toNamespaces: [r.ns] });
      // Both exports in the operator's cache first: a placeholder seen with only half-a would be
      // filled with it (that fits), which is right, but not the case under test.
      for (const name of ['half-a', 'half-b'])
        await expectCondition(SecretExports, r.ns2, name, { type: 'ReconcileSucceeded' });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
      r.untouched.push([Secrets, r.ns2, 'half-a'], [Secrets, r.ns2, 'half-b']);
    },
    async expect(r) {
      const tooLarge = new RegExp(
        '^merged credentials are (\\d+) bytes, over the 1 MiB Secret limit \\(1048576 bytes\\), from 2 exported Secrets; ' +
          `the placeholder keeps its previous data until the exports reaching namespace ${r.ns} give fewer credentials$`,
      );
      let message = '';
      await eventually(
        'the ReconcileFailed status annotation',
        async () => {
          const state = await readPlaceholder(env.client, r.ns, 'creds');
          const status = JSON.parse(state.status ?? '{}') as { conditions?: Condition[] };
          assert.equal(status.conditions?.length, 1, `status annotation: ${state.status}`);
          assert.equal(status.conditions[0]!.type, 'ReconcileFailed', `status annotation: ${state.status}`);
          const match = tooLarge.exec(status.conditions[0]!.message ?? '');
          assert.ok(match, `status annotation: ${state.status}`);
          assert.ok(Number(match[1]) > 1_048_576, `merged size ${match[1]}`);
          message = status.conditions[0]!.message!;
          assert.equal(state.raw, '{}\n', 'the placeholder data was changed');
        },
        { timeoutMs: 15_000 },
      );
      await expectEvent(r.ns, 'creds', `Warning PlaceholderTooLarge: ${message}`);
    },
    async settle(r) {
      await expectSettled([r.ns]);
    },
  },
  {
    name: 'SecretImport of a nearly-1-MiB Opaque Secret: copied whole, status succeeded',
    async setup(r) {
      const blob = Buffer.alloc(1_000_000, 'x').toString('base64');
      await env.client.create(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace: r.ns2, name: 'blob' },
        type: 'Opaque',
        data: { blob },
      });
      await env.client.create(SecretExports, secretExport(r.ns2, 'blob', { toNamespaces: [r.ns] }));
      await env.client.create(SecretImports, secretImport(r.ns, 'blob', r.ns2));
      r.untouched.push([Secrets, r.ns2, 'blob']);
    },
    async expect(r) {
      await expectCondition(SecretImports, r.ns, 'blob', { type: 'ReconcileSucceeded' });
      const copy = await env.client.get<V1Secret>(Secrets, r.ns, 'blob');
      assert.equal(Buffer.from(copy?.data?.['blob'] ?? '', 'base64').length, 1_000_000);
    },
  },

  // --- names at length limits ---------------------------------------------------
  {
    name: '253-character Secret and export names in 63-character namespaces: placeholder filled, status names the source',
    namespaces: (id) => [
      `${id}-${'p'.repeat(63 - id.length - 2)}z`,
      `${id}-${'s'.repeat(63 - id.length - 2)}z`,
    ],
    async setup(r) {
      const name = longName(253, 'long');
      assert.equal(name.length, 253);
      assert.equal(r.ns.length, 63);
      await share(r.ns2, name, GOOD, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, placeholderSecret(r.ns, longName(253, 'holder')));
    },
    async expect(r) {
      const name = longName(253, 'long');
      await expectPlaceholderState(
        r.ns,
        longName(253, 'holder'),
        GOOD_FILLED,
        succeededStatus([`${r.ns2}/${name}`]),
      );
      await expectCondition(SecretExports, r.ns2, name, { type: 'ReconcileSucceeded' });
    },
  },
  {
    name: 'SecretImport with a 253-character name between 63-character namespaces: copy created and owned',
    namespaces: (id) => [
      `${id}-${'i'.repeat(63 - id.length - 2)}z`,
      `${id}-${'e'.repeat(63 - id.length - 2)}z`,
    ],
    async setup(r) {
      const name = longName(253, 'imported');
      await env.client.create(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace: r.ns2, name },
        type: 'Opaque',
        data: { token: b64('t') },
      });
      await env.client.create(SecretExports, secretExport(r.ns2, name, { toNamespaces: [r.ns] }));
      await env.client.create(SecretImports, secretImport(r.ns, name, r.ns2));
    },
    async expect(r) {
      const name = longName(253, 'imported');
      await expectCondition(SecretImports, r.ns, name, { type: 'ReconcileSucceeded' });
      const copy = await env.client.get<V1Secret>(Secrets, r.ns, name);
      assert.deepEqual(copy?.data, { token: b64('t') });
      assert.equal(copy?.metadata?.ownerReferences?.[0]?.name, name);
    },
  },

  // --- registry keys ----------------------------------------------------------
  {
    name: 'unicode registry keys: kept as written, sorted, and case variants reported as one registry',
    async setup(r) {
      await share(
        r.ns2,
        'a',
        { auths: { 'régistry.例え.jp': { auth: b64('a:1') }, '🐳.example.com': { auth: b64('a:2') } } },
        { toNamespaces: [r.ns] },
      );
      await share(
        r.ns2,
        'b',
        { auths: { 'RÉGISTRY.例え.jp': { auth: b64('b:1') } } },
        { toNamespaces: [r.ns] },
      );
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
    },
    async expect(r) {
      const conflicts = [{ registry: 'régistry.例え.jp', winner: `${r.ns2}/b`, losers: [`${r.ns2}/a`] }];
      await expectPlaceholderState(
        r.ns,
        'creds',
        {
          auths: {
            'RÉGISTRY.例え.jp': { auth: b64('b:1') },
            '🐳.example.com': { auth: b64('a:2') },
          },
        },
        succeededStatus([`${r.ns2}/a`, `${r.ns2}/b`], { conflicts }),
      );
      await expectEvent(
        r.ns,
        'creds',
        `Warning RegistryConflict: Several exports give credentials for registry régistry.例え.jp: using ${r.ns2}/b, ignoring ${r.ns2}/a`,
      );
    },
  },
  ...(
    [
      [
        'pathological glob key *a*a*a*a*a*a*a*a*a*a*b.example.com in an exported source',
        '*a*a*a*a*a*a*a*a*a*a*b.example.com',
        'a host label of the key has more than 4 "*" wildcards',
      ],
      [
        'a 300-character registry key in an exported source',
        `${'k'.repeat(60)}.${'e'.repeat(60)}.${'y'.repeat(60)}.${'s'.repeat(60)}.${'z'.repeat(50)}.example.com`,
        'key is longer than 255 characters without its scheme, user info and /v1/ or /v2/ suffix; no image name is that long',
      ],
    ] as const
  ).map(([what, key, reason]): BadInputCase => ({
    name: `${what}: that entry skipped with the cap as reason, the rest of the source merged`,
    async setup(r) {
      await share(
        r.ns2,
        'keys',
        { auths: { [key]: { auth: b64('k:1') }, 'fine.example.com': { auth: b64('f:1') } } },
        { toNamespaces: [r.ns] },
      );
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
    },
    async expect(r) {
      const shown = key.length > 128 ? undefined : key;
      await eventually('the capped key skipped', async () => {
        const state = await readPlaceholder(env.client, r.ns, 'creds');
        assert.deepEqual(state.config, { auths: { 'fine.example.com': { auth: b64('f:1') } } });
        const status = JSON.parse(state.status ?? '{}') as {
          secretNames?: string[];
          skipped?: Array<{ source: string; registry?: string; reason: string }>;
        };
        assert.deepEqual(status.secretNames, [`${r.ns2}/keys`], state.status);
        assert.equal(status.skipped?.length, 1, state.status);
        assert.equal(status.skipped[0]!.source, `${r.ns2}/keys`, state.status);
        assert.equal(status.skipped[0]!.reason, reason, state.status);
        if (shown) assert.equal(status.skipped[0]!.registry, shown, state.status);
        else assert.ok((status.skipped[0]!.registry ?? '').length <= 128, state.status);
      });
      await expectCondition(SecretExports, r.ns2, 'keys', { type: 'ReconcileSucceeded' });
    },
  })),
  {
    name: 'pathological glob key *a*a*a*a*a*a*a*a*a*a*b.example.com in an App secretRef: no freeze, the App fails clearly',
    async setup(r) {
      const glob = '*a*a*a*a*a*a*a*a*a*a*b.example.com';
      await env.client.create(
        Secrets,
        dockerConfigSecret(r.ns, 'globby', { auths: { [glob]: { auth: b64('g:p') } } }),
      );
      await createApp(r.ns, 'glob', {
        serviceAccountName: 'deployer',
        fetch: [{ image: { url: `${'a'.repeat(40)}.example.com/x/y:1`, secretRef: { name: 'globby' } } }],
        ...TEMPLATE_AND_DEPLOY,
      });
      r.untouched.push([Secrets, r.ns, 'globby']);
    },
    async expect(r) {
      await expectCondition(
        Apps,
        r.ns,
        'glob',
        { type: 'ReconcileFailed', useful: /^Fetching resources: fetch stage 0 \(image\): / },
        FETCH_REPORT_MS,
      );
    },
  },
  {
    name: 'https://user:pass@host keys in exported sources: the userinfo appears in no annotation, Event or status anywhere',
    async setup(r) {
      await share(
        r.ns2,
        'a',
        { auths: { [`https://${USERINFO}@dup.example.com`]: { auth: b64('a:1') } } },
        { toNamespaces: [r.ns] },
      );
      await share(
        r.ns2,
        'b',
        { auths: { 'dup.example.com': { auth: b64('b:1') } } },
        { toNamespaces: [r.ns] },
      );
      await share(
        r.ns2,
        'c',
        { auths: { [`https://${USERINFO}@nocred.example.com`]: { email: 'e@example.com' } } },
        { toNamespaces: [r.ns] },
      );
      await share(
        r.ns2,
        'd',
        { auths: { [`https://${USERINFO}@bad.example.com`]: { username: 7 } } },
        { toNamespaces: [r.ns] },
      );
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
    },
    async expect(r) {
      const parseError = 'auths["https://***@bad.example.com"].username: expected a string, got number';
      await expectPlaceholderState(
        r.ns,
        'creds',
        { auths: { 'dup.example.com': { auth: b64('b:1') } } },
        succeededStatus([`${r.ns2}/a`, `${r.ns2}/b`, `${r.ns2}/c`], {
          skipped: [
            { source: `${r.ns2}/c`, registry: 'https://***@nocred.example.com', reason: NO_CREDENTIAL },
            { source: `${r.ns2}/d`, reason: parseError },
          ],
          conflicts: [{ registry: 'dup.example.com', winner: `${r.ns2}/b`, losers: [`${r.ns2}/a`] }],
        }),
      );
      const message = `Exported secret is not valid kubernetes.io/dockerconfigjson: ${parseError}`;
      await expectCondition(SecretExports, r.ns2, 'd', { type: 'ReconcileFailed', message });
      await expectEvent(r.ns2, 'd', `Warning ReconcileFailed: ${message}`);
      await expectEvent(
        r.ns,
        'creds',
        `Warning RegistryConflict: Several exports give credentials for registry dup.example.com: using ${r.ns2}/b, ignoring ${r.ns2}/a`,
      );
      await expectEvent(
        r.ns,
        'creds',
        `Warning SourceSkipped: Skipped ${r.ns2}/c registry https://***@nocred.example.com: ${NO_CREDENTIAL}`,
      );
      // Everything the operator wrote about it, in every namespace.
      const state = await readPlaceholder(env.client, r.ns, 'creds');
      const statuses = await Promise.all(['a', 'b', 'c', 'd'].map((n) => getStatus(SecretExports, r.ns2, n)));
      const everything = [
        JSON.stringify(state.secret.metadata),
        JSON.stringify(statuses),
        await allEventText(),
      ];
      for (const text of everything)
        assert.ok(!text.includes(LEAK_PASSWORD), `the user info leaked: ${text.slice(0, 3000)}`);
    },
  },
  {
    name: 'https://user:pass@host key in an App secretRef refused by the registry: the hint names the entry without its userinfo',
    async setup(r) {
      const bundle = await pushBundle('bad-input/hint', { 'config/a.yml': 'a: 1\n' });
      await env.client.create(
        Secrets,
        aliceSecret(r.ns, 'leaky', `https://${USERINFO}@${registry.host}`, 'wrong-password'),
      );
      await createApp(r.ns, 'hint', {
        serviceAccountName: 'deployer',
        fetch: [{ imgpkgBundle: { image: bundle, secretRef: { name: 'leaky' } } }],
        ...TEMPLATE_AND_DEPLOY,
      });
    },
    async expect(r) {
      const status = await expectCondition(
        Apps,
        r.ns,
        'hint',
        {
          type: 'ReconcileFailed',
          useful: new RegExp(
            `UNAUTHORIZED.* \\(sent the credentials of entry "https://\\*\\*\\*@${registry.host.replace(/\./g, '\\.')}" of Secret leaky\\)$`,
            's',
          ),
        },
        FETCH_REPORT_MS,
      );
      const everything = JSON.stringify(status) + (await allEventText());
      assert.ok(!everything.includes(LEAK_PASSWORD), `the userinfo leaked: ${status.usefulErrorMessage}`);
    },
  },

  // --- semantically invalid specs that pass the schema -------------------------
  {
    name: 'SecretImport whose fromNamespace is its own namespace: refuses to touch the Secret it would copy onto itself',
    async setup(r) {
      await env.client.create(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace: r.ns, name: 'self' },
        type: 'Opaque',
        data: { token: b64('t') },
      });
      await env.client.create(SecretExports, secretExport(r.ns, 'self', { toNamespaces: [r.ns] }));
      await env.client.create(SecretImports, secretImport(r.ns, 'self', r.ns));
      r.untouched.push([Secrets, r.ns, 'self']);
    },
    async expect(r) {
      const message = `Secret ${r.ns}/self already exists and is not controlled by this SecretImport; it is left untouched`;
      await expectCondition(SecretImports, r.ns, 'self', { type: 'ReconcileFailed', message });
      await expectEvent(r.ns, 'self', `Warning ReconcileFailed: ${message}`);
    },
  },
  {
    name: 'SecretImport from a namespace that does not exist: "No matching export/secret", nothing created',
    async setup(r) {
      await env.client.create(SecretImports, secretImport(r.ns, 'nowhere', `${r.ns}-missing`));
    },
    async expect(r) {
      await expectCondition(SecretImports, r.ns, 'nowhere', {
        type: 'ReconcileFailed',
        message: 'No matching export/secret',
      });
      assert.equal(await env.client.get(Secrets, r.ns, 'nowhere'), undefined);
    },
  },
  {
    name: 'SecretExport toNamespaces ["*", name]: accepted, "*" reaches every namespace not excluded, the named one too',
    async setup(r) {
      await share(r.ns2, 'both', GOOD, { toNamespaces: ['*', r.ns] });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
    },
    async expect(r) {
      await expectPlaceholderState(r.ns, 'creds', GOOD_FILLED, succeededStatus([`${r.ns2}/both`]));
      await eventually('the reached count', async () => {
        const { items } = await env.client.list(Namespaces, {});
        const open = items.filter((ns) => ns.metadata?.annotations?.[EXCLUDED] === undefined);
        const status = await getStatus(SecretExports, r.ns2, 'both');
        assert.equal(status?.conditions?.[0]?.type, 'ReconcileSucceeded', JSON.stringify(status));
        assert.equal(status?.reachedNamespaceCount, open.length + 1, JSON.stringify(status));
      });
    },
    async settle(r) {
      // A "*" export must not outlive its row: later rows count namespaces.
      await env.client.delete(SecretExports, r.ns2, 'both');
    },
  },
  ...(
    [
      ['metadata.labels[*]', 'wildcards ([*]) are not supported'],
      ['metadata..name', 'recursive descent (..) is not supported'],
      [
        'metadata.labels["team"]',
        `double-quoted keys are not accepted (upstream cannot parse them); write ['...']`,
      ],
    ] as const
  ).map(([key, problem]): BadInputCase => ({
    name: `dangerousToNamespacesSelector key ${key}: export reports the JSONPath error and reaches nothing`,
    async setup(r) {
      await share(r.ns2, 'sel', GOOD, {
        dangerousToNamespacesSelector: [{ key, operator: 'NotIn', values: ['nothing'] }],
      });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
    },
    async expect(r) {
      const message = `Validation errors:\n- Invalid dangerousToNamespacesSelector[0].key: JSONPath ${JSON.stringify(key)}: ${problem}`;
      const status = await expectCondition(SecretExports, r.ns2, 'sel', { type: 'ReconcileFailed', message });
      assert.equal(status.reachedNamespaceCount, 0);
      await expectEvent(r.ns2, 'sel', `Warning ReconcileFailed: ${message}`);
      await expectPlaceholderState(r.ns, 'creds', { auths: {} }, succeededStatus([]));
    },
  })),
  {
    name: 'App with fetch path ../../x: rejected at admission',
    async setup(r) {
      const app = appObject(r.ns, 'escape', {
        serviceAccountName: 'deployer',
        fetch: [
          { inline: { paths: { 'a.yml': 'a: 1' } }, path: '../../x' },
          { inline: { paths: { 'b.yml': 'b: 1' } }, path: 'ok' },
        ],
        ...TEMPLATE_AND_DEPLOY,
      });
      await assert.rejects(env.client.create(Apps, app), (err: Error) => {
        assert.match(
          err.message,
          /spec\.fetch\[0\]\.path: Invalid value: "\.\.\/\.\.\/x": .*should match/,
          err.message,
        );
        return true;
      });
    },
    async expect(r) {
      assert.equal(await env.client.get(Apps, r.ns, 'escape'), undefined);
    },
  },
  rejectedAtAdmission(
    'App with 101 fetch stages: rejected at admission (at most 100)',
    Apps,
    (ns) =>
      appObject(ns, 'stages', {
        serviceAccountName: 'deployer',
        fetch: Array.from({ length: 101 }, (_, i) => ({ inline: { paths: { [`f${i}.yml`]: 'a: 1' } } })),
        ...TEMPLATE_AND_DEPLOY,
      }),
    /spec\.fetch: Too many: 101: must have at most 100 items/,
  ),
  rejectedAtAdmission(
    'App with 101 inline.pathsFrom Secrets in one stage: rejected at admission (at most 100)',
    Apps,
    (ns) =>
      appObject(ns, 'paths-from', {
        serviceAccountName: 'deployer',
        fetch: [
          {
            inline: { pathsFrom: Array.from({ length: 101 }, (_, i) => ({ secretRef: { name: `s${i}` } })) },
          },
        ],
        ...TEMPLATE_AND_DEPLOY,
      }),
    /spec\.fetch\[0\]\.inline\.pathsFrom: Too many: 101: must have at most 100 items/,
  ),
  rejectedAtAdmission(
    'App with an absolute image.subPath /etc: rejected at admission',
    Apps,
    (ns) =>
      appObject(ns, 'subpath', {
        serviceAccountName: 'deployer',
        fetch: [{ image: { url: `${registry.host}/x/y:1`, subPath: '/etc' } }],
        ...TEMPLATE_AND_DEPLOY,
      }),
    /spec\.fetch\[0\]\.image\.subPath: Invalid value: "\/etc": .*should match/,
  ),
  rejectedAtAdmission(
    'PackageInstall with 101 values Secrets: rejected at admission (at most 100)',
    PackageInstalls,
    (ns) => ({
      apiVersion: PKG_API,
      kind: 'PackageInstall',
      metadata: { namespace: ns, name: 'values' },
      spec: {
        serviceAccountName: 'installer',
        packageRef: { refName: 'x.bad-input.carvel.dev', versionSelection: { constraints: '1.0.0' } },
        values: Array.from({ length: 101 }, (_, i) => ({ secretRef: { name: `v${i}` } })),
      },
    }),
    /spec\.values: Too many: 101: must have at most 100 items/,
  ),
  rejectedAtAdmission(
    'SecretExport with 1,001 toNamespaces: rejected at admission (at most 1000)',
    SecretExports,
    (ns) =>
      secretExport(ns, 'wide', { toNamespaces: Array.from({ length: 1001 }, (_, i) => `ns-${i}`) }) as Obj,
    /spec\.toNamespaces: Too many: 1001: must have at most 1000 items/,
  ),
  {
    name: 'SecretExport with 100 unparsable selector keys: the status message is cut at 10 KiB and the Event at 1 KiB, each with a marker',
    async setup(r) {
      await share(r.ns2, 'noisy', GOOD, {
        dangerousToNamespacesSelector: Array.from({ length: 100 }, (_, i) => ({
          key: `metadata..x${i}${'y'.repeat(150)}`,
          operator: 'Exists',
        })),
      });
    },
    async expect(r) {
      const marker = /… \(\d+ more characters\)$/;
      const status = await expectCondition(SecretExports, r.ns2, 'noisy', {
        type: 'ReconcileFailed',
        message:
          /^Validation errors:\n- Invalid dangerousToNamespacesSelector\[0\]\.key: JSONPath "metadata\.\.x0y+": recursive descent \(\.\.\) is not supported\n/,
      });
      const message = status.conditions![0]!.message!;
      assert.ok(message.length <= 10 * 1024, `${message.length} characters`);
      assert.match(message, marker);
      assert.equal(status.friendlyDescription, 'Reconcile failed: Validation errors:...');
      await eventually('the truncated Event', async () => {
        const events = await eventTexts(r.ns2, 'noisy');
        assert.equal(events.length, 1, JSON.stringify(events));
        assert.ok(events[0]!.startsWith('Warning ReconcileFailed: Validation errors:\n- Invalid'), events[0]);
        const text = events[0]!.slice('Warning ReconcileFailed: '.length);
        assert.ok(text.length <= 1024, `${text.length} characters`);
        assert.match(text, marker);
      });
    },
  },
  {
    name: 'gzip bomb (32 MiB of zeros in a 32 KiB layer): the fetch stops at its 16 MiB disk share and leaves no files behind',
    async setup(r) {
      const bomb = await pushBundle('bad-input/bomb', { 'config/zeros.bin': Buffer.alloc(32 * 1024 * 1024) });
      await env.client.create(Secrets, aliceSecret(r.ns, 'creds'));
      await createApp(r.ns, 'bomb', {
        serviceAccountName: 'deployer',
        fetch: [{ imgpkgBundle: { image: bomb, secretRef: { name: 'creds' } } }],
        ...TEMPLATE_AND_DEPLOY,
      });
    },
    async expect(r) {
      const share = FETCH_DISK_BUDGET / MAX_CONCURRENT_FETCHES;
      await expectCondition(
        Apps,
        r.ns,
        'bomb',
        {
          type: 'ReconcileFailed',
          useful: new RegExp(
            `^Fetching resources: fetch stage 0 \\(imgpkgBundle\\): .*extracting needs more than the ${share} bytes of disk this fetch may use`,
          ),
        },
        FETCH_REPORT_MS,
      );
      await eventually('the fetch directory to be empty', () => {
        assert.deepEqual(readdirSync(fetchTmp()), []);
        return Promise.resolve();
      });
    },
  },
  {
    name: 'PackageRepository whose packages file is over the size cap: ReconcileFailed with the cap message, nothing parsed',
    async setup(r) {
      const big = `${'# padding\n'.repeat(1024 * 1024)}`; // 10 MiB of YAML comments
      await createRepository(r.ns, 'huge', 'bad-input/huge-repo', { 'packages/huge.yml': big });
    },
    async expect(r) {
      await expectCondition(
        PackageRepositories,
        r.ns,
        'huge',
        {
          type: 'ReconcileFailed',
          useful:
            /Invalid package repository content: packages\/huge\.yml is 10 MiB, more than the limit of 1 MiB per file$/,
        },
        FETCH_REPORT_MS,
      );
      const { items } = await env.client.list(Packages, { namespace: r.ns });
      assert.deepEqual(
        items.map((p) => p.metadata?.name),
        [],
      );
    },
  },
  {
    name: 'App whose secretRef names a missing Secret: ReconcileFailed naming the Secret and namespace',
    async setup(r) {
      await createApp(r.ns, 'nosecret', {
        serviceAccountName: 'deployer',
        fetch: [{ image: { url: `${registry.host}/none/image:1`, secretRef: { name: 'not-there' } } }],
        ...TEMPLATE_AND_DEPLOY,
      });
    },
    async expect(r) {
      const useful = `Fetching resources: fetch stage 0 (image): Secret not-there not found in namespace ${r.ns}`;
      await expectCondition(
        Apps,
        r.ns,
        'nosecret',
        { type: 'ReconcileFailed', message: useful, useful },
        FETCH_REPORT_MS,
      );
      assert.equal(
        await env.client.get(Secrets, r.ns, 'not-there'),
        undefined,
        'the operator created the missing Secret',
      );
    },
  },
  {
    name: 'PackageInstall whose serviceAccountName does not exist: passed to the App unchanged, no ServiceAccount created, status mirrors the App',
    async setup(r) {
      await createPackageAndInstall(r.ns, 'nosa', [{ inline: { paths: { 'a.yml': 'a: 1' } } }], {
        serviceAccountName: 'no-such-sa',
      });
    },
    async expect(r) {
      // Deploying (where the ServiceAccount is used) is not implemented: the run stops at templating.
      await expectCondition(
        PackageInstalls,
        r.ns,
        'nosa',
        { type: 'ReconcileFailed', message: SEE, useful: TEMPLATE_UNSUPPORTED },
        FETCH_REPORT_MS,
      );
      const app = await env.client.get<Obj>(Apps, r.ns, 'nosa');
      assert.equal(app?.spec?.['serviceAccountName'], 'no-such-sa');
      const { items } = await env.client.list(
        { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
        { namespace: r.ns },
      );
      assert.ok(!items.some((sa) => sa.metadata?.name === 'no-such-sa'), 'a ServiceAccount was created');
    },
  },
  fetchAnnotationCase(
    '99',
    'Warning FetchSecretIndexOutOfRange: Ignoring annotation ext.packaging.carvel.dev/fetch-99-secret-name: the package has 2 fetch stages, so there is no fetch stage 99',
  ),
  fetchAnnotationCase(
    '-1',
    "Warning InvalidFetchSecretIndex: Ignoring annotation ext.packaging.carvel.dev/fetch--1-secret-name: fetch stage index '-1' is not a non-negative integer (expected e.g. ext.packaging.carvel.dev/fetch-0-secret-name)",
  ),
  fetchAnnotationCase(
    'x',
    "Warning InvalidFetchSecretIndex: Ignoring annotation ext.packaging.carvel.dev/fetch-x-secret-name: fetch stage index 'x' is not a non-negative integer (expected e.g. ext.packaging.carvel.dev/fetch-0-secret-name)",
  ),

  // --- users fighting the operator ----------------------------------------------
  {
    name: 'a user edits a placeholder (other content, an extra key): restored at once',
    async setup(r) {
      await share(r.ns2, 'good', GOOD, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
      await expectPlaceholderState(r.ns, 'creds', GOOD_FILLED, succeededStatus([`${r.ns2}/good`]));
      await env.client.mergePatch(Secrets, r.ns, 'creds', {
        data: {
          '.dockerconfigjson': b64('{"auths":{"evil.example.com":{"auth":"ZXZpbDpldmls"}}}'),
          extra: b64('x'),
        },
      });
    },
    async expect(r) {
      await expectPlaceholderState(r.ns, 'creds', GOOD_FILLED, succeededStatus([`${r.ns2}/good`]), 5000);
      const state = await readPlaceholder(env.client, r.ns, 'creds');
      assert.deepEqual(Object.keys(state.secret.data ?? {}), ['.dockerconfigjson']);
    },
  },
  {
    name: 'a user removes the placeholder annotation: the Secret is no longer managed (a source change leaves it alone)',
    async setup(r) {
      await share(r.ns2, 'good', GOOD, { toNamespaces: [r.ns] });
      await env.client.create(Secrets, placeholderSecret(r.ns, 'creds'));
      await expectPlaceholderState(r.ns, 'creds', GOOD_FILLED, succeededStatus([`${r.ns2}/good`]));
      await env.client.mergePatch(Secrets, r.ns, 'creds', {
        metadata: { annotations: { [IMAGE_PULL_SECRET]: null } },
      });
      r.untouched.push([Secrets, r.ns, 'creds']);
    },
    async expect(r) {
      await env.client.mergePatch(Secrets, r.ns2, 'good', {
        data: {
          '.dockerconfigjson': b64(
            JSON.stringify({ auths: { 'good.example.com': { auth: b64('new:pw') } } }),
          ),
        },
      });
      await expectCondition(SecretExports, r.ns2, 'good', { type: 'ReconcileSucceeded' });
      await sleep(500);
      const state = await readPlaceholder(env.client, r.ns, 'creds');
      assert.deepEqual(state.config, GOOD_FILLED, 'the released Secret got the new credential');
    },
  },
  {
    name: 'a Secret squatting the name of a SecretImport: not owned, left untouched, status and Event say so',
    async setup(r) {
      await env.client.create(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace: r.ns2, name: 'shared' },
        type: 'Opaque',
        data: { token: b64('exported') },
      });
      await env.client.create(SecretExports, secretExport(r.ns2, 'shared', { toNamespaces: [r.ns] }));
      await env.client.create(Secrets, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace: r.ns, name: 'shared' },
        type: 'Opaque',
        data: { token: b64('squatter') },
      });
      await env.client.create(SecretImports, secretImport(r.ns, 'shared', r.ns2));
      r.untouched.push([Secrets, r.ns, 'shared'], [Secrets, r.ns2, 'shared']);
    },
    async expect(r) {
      const message = `Secret ${r.ns}/shared already exists and is not controlled by this SecretImport; it is left untouched`;
      await expectCondition(SecretImports, r.ns, 'shared', { type: 'ReconcileFailed', message });
      await expectEvent(r.ns, 'shared', `Warning ReconcileFailed: ${message}`);
      const squatter = await env.client.get<V1Secret>(Secrets, r.ns, 'shared');
      assert.deepEqual(squatter?.data, { token: b64('squatter') });
    },
  },
  {
    name: 'export source carrying the placeholder annotation, imported elsewhere: settles, no write loop',
    async setup(r) {
      await env.client.create(Secrets, {
        ...dockerConfigSecret(r.ns2, 'marked', GOOD),
        metadata: { namespace: r.ns2, name: 'marked', annotations: { [IMAGE_PULL_SECRET]: '' } },
      });
      await env.client.create(SecretExports, secretExport(r.ns2, 'marked', { toNamespaces: [r.ns] }));
      await env.client.create(SecretImports, secretImport(r.ns, 'marked', r.ns2));
    },
    async expect(r) {
      // The source is a placeholder in its own namespace, which no export reaches: it becomes {"auths":{}}.
      await expectPlaceholderState(r.ns2, 'marked', { auths: {} }, succeededStatus([]));
      await expectCondition(SecretImports, r.ns, 'marked', { type: 'ReconcileSucceeded' });
      await eventually('the copy to match the source', async () => {
        const copy = await env.client.get<V1Secret>(Secrets, r.ns, 'marked');
        assert.equal(
          Buffer.from(copy?.data?.['.dockerconfigjson'] ?? '', 'base64').toString(),
          '{"auths":{}}',
        );
      });
    },
    async settle(r) {
      await expectSettled(r.nss);
    },
  },
  {
    name: "SecretImport carrying the placeholder annotation: the copy stays the import's (source data), a Warning says the annotation is ignored, no write fight",
    async setup(r) {
      await share(r.ns2, 'creds', GOOD, { toNamespaces: [r.ns] });
      // A second export reaching the namespace: filling the copy as a placeholder would change it.
      await share(
        r.ns2,
        'other',
        { auths: { 'other.example.com': { auth: b64('o:p') } } },
        { toNamespaces: [r.ns] },
      );
      await env.client.create(
        SecretImports,
        secretImport(r.ns, 'creds', r.ns2, { annotations: { [IMAGE_PULL_SECRET]: '' } }),
      );
    },
    async expect(r) {
      await expectCondition(SecretImports, r.ns, 'creds', { type: 'ReconcileSucceeded' });
      await expectEvent(
        r.ns,
        'creds',
        `Warning PlaceholderAnnotationIgnored: Secret ${r.ns}/creds is this SecretImport's copy of ${r.ns2}/creds; ` +
          "its secretgen.carvel.dev/image-pull-secret annotation is ignored and the copy holds the source's data. " +
          'To merge exported credentials, annotate a Secret of another name instead',
      );
      await eventually('the copy to hold the source data', async () => {
        const copy = await env.client.get<V1Secret>(Secrets, r.ns, 'creds');
        const source = await env.client.get<V1Secret>(Secrets, r.ns2, 'creds');
        assert.deepEqual(copy?.data, source?.data);
      });
    },
    async settle(r) {
      await expectSettled(r.nss, 2000, 10_000);
    },
  },
  {
    name: `a registry that answers one byte per 300 ms, behind 4 Apps of one namespace: each fails at --fetch-timeout, another namespace's fetch still runs`,
    async setup(r) {
      for (let i = 0; i < MAX_CONCURRENT_FETCHES; i++) {
        await createApp(r.ns, `slow-${i}`, {
          serviceAccountName: 'deployer',
          fetch: [{ image: { url: `127.0.0.1:${slowPort}/slow/image-${i}:1` } }],
          ...TEMPLATE_AND_DEPLOY,
        });
      }
      const bundle = await pushBundle('bad-input/fair', { 'config/a.yml': 'a: 1\n' });
      await env.client.create(Secrets, aliceSecret(r.ns2, 'creds'));
      // Created once the slow fetches hold their slots.
      await sleep(500);
      await createApp(r.ns2, 'fair', {
        serviceAccountName: 'deployer',
        fetch: [{ imgpkgBundle: { image: bundle, secretRef: { name: 'creds' } } }],
        ...TEMPLATE_AND_DEPLOY,
      });
    },
    async expect(r) {
      const fetched = await expectCondition(
        Apps,
        r.ns2,
        'fair',
        { type: 'ReconcileFailed', useful: TEMPLATE_UNSUPPORTED },
        FETCH_TIMEOUT_MS,
      );
      assert.equal(fetched.fetch?.exitCode, 0);
      for (let i = 0; i < MAX_CONCURRENT_FETCHES; i++) {
        await expectCondition(
          Apps,
          r.ns,
          `slow-${i}`,
          {
            type: 'ReconcileFailed',
            useful:
              /^Fetching resources: fetch stage 0 \(image\): .*fetch timed out after 3s \(--fetch-timeout\)/,
          },
          4 * FETCH_TIMEOUT_MS,
        );
      }
    },
  },
  {
    name: 'App naming 2,000 Secrets (20 inline stages x 100 pathsFrom): fetches them all, without a list or watch per Secret',
    async setup(r) {
      requestsBefore = { ...env.operator.client.counts };
      const names = Array.from({ length: 2000 }, (_, i) => `s${String(i).padStart(4, '0')}`);
      for (let i = 0; i < names.length; i += 100) {
        await Promise.all(
          names.slice(i, i + 100).map((name) =>
            env.client.create(Secrets, {
              apiVersion: 'v1',
              kind: 'Secret',
              metadata: { namespace: r.ns, name },
              type: 'Opaque',
              data: { [`${name}.yml`]: b64(`${name}: 1\n`) },
            }),
          ),
        );
      }
      const fetch = Array.from({ length: 20 }, (_, stage) => ({
        inline: {
          pathsFrom: names.slice(stage * 100, stage * 100 + 100).map((name) => ({ secretRef: { name } })),
        },
      }));
      await createApp(r.ns, 'many', { serviceAccountName: 'deployer', fetch, ...TEMPLATE_AND_DEPLOY });
    },
    async expect(r) {
      await eventually(
        'the App to fetch every Secret and stop at templating',
        async () => {
          const app = await env.client.get<Obj>(Apps, r.ns, 'many');
          const shown = JSON.stringify(app?.status, null, 1)?.slice(0, 2000);
          assert.equal(app?.status?.fetch?.exitCode, 0, `status: ${shown}`);
          assert.equal(app.status.usefulErrorMessage, TEMPLATE_UNSUPPORTED, `status: ${shown}`);
          assert.equal((app.status.fetch.stdout?.match(/Wrote 100 inline files/g) ?? []).length, 20, shown);
        },
        { timeoutMs: 30_000 },
      );
      const after = env.operator.client.counts;
      const watches = (after['WATCH'] ?? 0) - (requestsBefore['WATCH'] ?? 0);
      const gets = (after['GET'] ?? 0) - (requestsBefore['GET'] ?? 0);
      console.log(
        `# 2,000 referenced Secrets: the operator made ${watches} watch and ${gets} GET/list requests`,
      );
      assert.ok(watches <= 3, `${watches} watch requests for an App naming 2,000 Secrets`);
    },
  },
  {
    name: 'PackageRepository with 1,000 documents of a kind it does not allow: ReconcileFailed, the message cut at 10 KiB with a marker',
    async setup(r) {
      const docs = Array.from(
        { length: 1000 },
        (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-a-package-${i}}\n`,
      ).join('---\n');
      await createRepository(r.ns, 'wrong', 'bad-input/wrong-kinds', { 'packages/wrong.yml': docs });
    },
    async expect(r) {
      const status = await expectCondition(
        PackageRepositories,
        r.ns,
        'wrong',
        {
          type: 'ReconcileFailed',
          useful:
            /^Deploying: Invalid package repository content: packages\/wrong\.yml \(document 1\).* is not allowed: .*… \(\d+ more characters\)$/s,
        },
        FETCH_REPORT_MS,
      );
      assert.ok(
        (status.usefulErrorMessage ?? '').length <= 10 * 1024,
        `${status.usefulErrorMessage?.length} characters`,
      );
      assert.ok((status.friendlyDescription ?? '').length <= 120, status.friendlyDescription);
    },
  },
  {
    name: 'PackageRepository with 2,001 Packages: ReconcileFailed with the per-repository cap, no Package written',
    async setup(r) {
      const docs = Array.from({ length: 2001 }, (_, i) =>
        [
          `apiVersion: ${DATA_API}`,
          'kind: Package',
          `metadata: {name: many.bad-input.carvel.dev.1.0.${i}}`,
          `spec: {refName: many.bad-input.carvel.dev, version: 1.0.${i}}`,
          '',
        ].join('\n'),
      ).join('---\n');
      await createRepository(r.ns, 'many', 'bad-input/many-packages', { 'packages/many.yml': docs });
    },
    async expect(r) {
      await expectCondition(
        PackageRepositories,
        r.ns,
        'many',
        {
          type: 'ReconcileFailed',
          useful:
            /Invalid package repository content: 2001 documents, more than the limit of 2000 Packages and PackageMetadatas per repository$/,
        },
        FETCH_REPORT_MS,
      );
      const { items } = await env.client.list(Packages, { namespace: r.ns });
      assert.equal(items.length, 0);
    },
  },
];

// ---------------------------------------------------------------------------

describe('bad-input catalogue', () => {
  test('the catalogue has at least 40 rows with distinct names', () => {
    assert.ok(cases.length >= 40, `only ${cases.length} rows`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
  });
  // BAD_INPUT_ONLY=<regex> runs only the matching rows (for diagnosing one).
  const only = process.env.BAD_INPUT_ONLY ? new RegExp(process.env.BAD_INPUT_ONLY) : undefined;
  cases.forEach((c, i) => {
    const skip = only !== undefined && !only.test(c.name);
    test(c.name, { ...(c.todo ? { todo: c.todo } : {}), skip }, () => runCase(i + 1, c));
  });
});
