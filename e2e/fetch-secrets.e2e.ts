// Fetch Secrets of other types, tagSelection and plain-HTTP registries, by
// the whole operator on a real control plane against a REAL private registry
// (CNCF distribution, TLS + htpasswd), a REAL plain-HTTP registry (the same
// program without TLS or auth, as local mirrors run) and a loopback
// "recorder": an HTTP server that logs the Authorization header of every
// request it receives, answers a Basic challenge to anything else, and
// forwards to the plain registry only requests carrying the expected bearer
// token. Images are pushed with skopeo; our code never pushes.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';

import { Apps } from '../src/packaging/controllers/resources.js';
import type { RunStatus } from '../src/packaging/run-status.js';
import type { App } from '../src/packaging/types.js';
import { freePort } from './harness/control-plane.js';
import {
  createNamespace,
  eventsAbout,
  startPackagingEnv,
  waitForObject,
  type PackagingEnv,
} from './fixtures/packaging/env.js';
import { startRegistry, writeOciLayout, type TestRegistry } from './harness/registry.js';

const OPERATOR_NS = 'regcred-operator';
const CONFIG_SECRET = 'regcred-operator-config';
const NS = 'fetch-secrets';
const TEMPLATE_UNSUPPORTED = 'Templating dir: template stage 0 (ytt): not supported yet';

const ALICE = { username: 'alice', password: 'fetch-secrets-Alice-Pa55' };
const TOKEN = 'fetch-secrets-bearer-T0ken';
const SECRET_VALUES = [ALICE.password, TOKEN];

type AppObj = App & { metadata: { generation: number }; status?: RunStatus };

interface Recorded {
  method: string;
  path: string;
  authorization?: string;
}

let env: PackagingEnv;
let registry: TestRegistry;
let plain: TestRegistry;
let recorder: http.Server;
let recorderHost: string;
const recorded: Recorded[] = [];
let work: string;
let layouts = 0;
const digests: Record<string, string> = {};

async function push(target: TestRegistry, repository: string, tag: string, files: Record<string, string>) {
  const dir = join(work, `layout-${++layouts}`);
  await writeOciLayout(dir, files, { tag, bundle: true });
  digests[`${target.host}/${repository}:${tag}`] = await target.push(dir, tag, repository);
}

const pinned = (host: string, repository: string, tag: string) =>
  `${host}/${repository}@${digests[`${host}/${repository}:${tag}`]}`;

/** A loopback registry impostor: records Authorization headers; forwards to `plain` only with the token. */
async function startRecorder(): Promise<void> {
  const port = await freePort();
  recorderHost = `127.0.0.1:${port}`;
  recorder = http.createServer((req, res) => {
    const entry: Recorded = { method: req.method ?? '', path: req.url ?? '' };
    if (req.headers.authorization !== undefined) entry.authorization = req.headers.authorization;
    recorded.push(entry);
    if (req.headers.authorization === `Bearer ${TOKEN}`) {
      const { authorization: _token, ...headers } = req.headers;
      const upstream = http.request(
        {
          host: '127.0.0.1',
          port: plain.port,
          method: req.method,
          path: req.url,
          headers: { ...headers, host: plain.host },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
      return;
    }
    req.resume();
    res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Basic realm="recorder"' });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  });
  await new Promise<void>((resolve) => recorder.listen(port, '127.0.0.1', resolve));
}

const recordedUnder = (prefix: string) => recorded.filter((r) => r.path.startsWith(`/v2/${prefix}/`));

async function applyConfig(insecure: string[]): Promise<void> {
  await env.cluster.apply(
    stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CONFIG_SECRET, namespace: OPERATOR_NS },
      stringData: { caCerts: registry.caCert, dangerousAllowInsecureRegistries: insecure.join(', ') },
    }),
  );
}

async function applySecret(name: string, stringData: Record<string, string>): Promise<void> {
  await env.cluster.apply(
    stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: NS },
      type: 'Opaque',
      stringData,
    }),
  );
}

async function applyApp(name: string, fetch: unknown[]): Promise<void> {
  await env.cluster.apply(
    stringify({
      apiVersion: 'kappctrl.k14s.io/v1alpha1',
      kind: 'App',
      metadata: { name, namespace: NS },
      spec: { serviceAccountName: 'deployer', fetch, template: [{ ytt: {} }], deploy: [{ kapp: {} }] },
    }),
  );
}

function waitForApp(name: string, what: string, check: (a: AppObj) => boolean): Promise<AppObj> {
  return waitForObject<AppObj>(env, Apps, NS, name, `App ${NS}/${name}: ${what}`, check);
}

const current = (a: AppObj) => a.status?.observedGeneration === a.metadata.generation;
const fetched = (a: AppObj) =>
  current(a) && a.status?.fetch?.exitCode === 0 && a.status.usefulErrorMessage === TEMPLATE_UNSUPPORTED;
const fetchFailed = (a: AppObj) => current(a) && a.status?.fetch?.exitCode === 1;

async function assertNoSecretValues(name: string, app: AppObj): Promise<void> {
  const text = JSON.stringify([app.status, await eventsAbout(env, NS, name)]);
  for (const value of SECRET_VALUES)
    assert.ok(!text.includes(value), `a secret value leaked into App ${name}`);
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'regcred-fetch-secrets-e2e-'));
  const log = (line: string) => console.log(`# ${line}`);
  [env, registry, plain] = await Promise.all([
    startPackagingEnv(),
    startRegistry({ users: [ALICE], log }),
    startRegistry({ plainHttp: true, log }),
  ]);
  await startRecorder();
  await createNamespace(env, OPERATOR_NS);
  await createNamespace(env, NS);
  // The recorder speaks plain HTTP: listed, so that a leaked credential would really reach it.
  await applyConfig([recorderHost]);

  await push(registry, 'team/app', '1.0.0', { 'config/app.yml': 'kind: ConfigMap\n' });
  for (const tag of ['0.9.0', '1.0.0', '1.2.0', '2.0.0-rc.1', 'latest']) {
    await push(registry, 'tagged/app', tag, { 'config/version.yml': `version: ${tag}\n` });
  }
  await push(plain, 'mirror/app', '1.0.0', { 'config/app.yml': 'kind: ConfigMap\n' });
});

after(async () => {
  await env?.stop();
  recorder?.closeAllConnections();
  await new Promise((resolve) => recorder?.close(resolve));
  await registry?.stop();
  await plain?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('username/password Secrets', () => {
  test('with hostname: the registry stage fetches with them and the recorder never receives an Authorization header', async () => {
    await applySecret('scoped', { ...ALICE, hostname: registry.host });
    await applyApp('scoped', [
      { image: { url: `${registry.host}/team/app:1.0.0`, secretRef: { name: 'scoped' } }, path: 'a' },
      { image: { url: `${recorderHost}/scoped/app:1.0.0`, secretRef: { name: 'scoped' } }, path: 'b' },
    ]);
    const app = await waitForApp('scoped', 'stage 1 failed', fetchFailed);
    assert.match(
      String(app.status?.fetch?.stdout),
      new RegExp(`^Fetched image ${escape(pinned(registry.host, 'team/app', '1.0.0'))} \\(`),
    );
    const message = String(app.status?.usefulErrorMessage);
    assert.match(message, /^Fetching resources: fetch stage 1 \(image\): .*UNAUTHORIZED/);
    assert.ok(
      message.endsWith(
        `(sent no credentials: Secret scoped holds credentials only for hostname "${registry.host}")`,
      ),
      message,
    );
    assert.ok(recordedUnder('scoped').length > 0, 'the recorder stage was attempted');
    assert.deepEqual(
      recordedUnder('scoped').filter((r) => r.authorization !== undefined),
      [],
      'a hostname-scoped credential reached another registry',
    );
    await assertNoSecretValues('scoped', app);
  });

  test('without hostname: sent to whatever registry the stage names, as upstream does (the recorder receives it)', async () => {
    await applySecret('unscoped', ALICE);
    await applyApp('unscoped', [
      { image: { url: `${recorderHost}/unscoped/app:1.0.0`, secretRef: { name: 'unscoped' } } },
    ]);
    const app = await waitForApp('unscoped', 'failed', fetchFailed);
    const basic = `Basic ${Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64')}`;
    assert.ok(
      recordedUnder('unscoped').some((r) => r.authorization === basic),
      'the recorder sees credentials when they are sent (so the scoped test can fail)',
    );
    await assertNoSecretValues('unscoped', app);
  });
});

describe('token Secrets', () => {
  test('a token with hostname is sent as a bearer token to that registry only', async () => {
    await applySecret('token', { token: TOKEN, hostname: recorderHost });
    await applyApp('token', [
      { image: { url: `${recorderHost}/mirror/app:1.0.0`, secretRef: { name: 'token' } }, path: 'a' },
      { image: { url: `${registry.host}/team/app:1.0.0`, secretRef: { name: 'token' } }, path: 'b' },
    ]);
    const app = await waitForApp('token', 'stage 1 failed', fetchFailed);
    assert.match(
      String(app.status?.fetch?.stdout),
      new RegExp(
        `^Fetched image ${escape(recorderHost)}/mirror/app@${escape(digests[`${plain.host}/mirror/app:1.0.0`]!)} \\(`,
      ),
    );
    assert.ok(recordedUnder('mirror').every((r) => r.authorization === `Bearer ${TOKEN}`));
    const message = String(app.status?.usefulErrorMessage);
    assert.match(message, /^Fetching resources: fetch stage 1 \(image\): .*UNAUTHORIZED/);
    assert.ok(
      message.endsWith(
        `(sent no credentials: Secret token holds credentials only for hostname "${recorderHost}")`,
      ),
      message,
    );
    await assertNoSecretValues('token', app);
  });
});

describe('tagSelection', () => {
  test('an imgpkgBundle stage pulls the highest tag matching the constraints and reports it', async () => {
    await applySecret('tags', { ...ALICE, hostname: registry.host });
    await applyApp('tags', [
      {
        imgpkgBundle: {
          image: `${registry.host}/tagged/app`,
          tagSelection: { semver: { constraints: '>=1.0.0' } },
          secretRef: { name: 'tags' },
        },
      },
    ]);
    const app = await waitForApp('tags', 'fetched', fetched);
    assert.match(
      String(app.status?.fetch?.stdout),
      new RegExp(
        `^Fetched imgpkgBundle ${escape(pinned(registry.host, 'tagged/app', '1.2.0'))} ` +
          '\\(tag 1\\.2\\.0, selected by tagSelection among 5 tags; ',
      ),
    );
  });

  test("no matching tag fails with version selection's message", async () => {
    await applyApp('no-tag', [
      {
        image: {
          url: `${registry.host}/tagged/app`,
          tagSelection: { semver: { constraints: '>=3.0.0' } },
          secretRef: { name: 'tags' },
        },
      },
    ]);
    const app = await waitForApp('no-tag', 'failed', fetchFailed);
    assert.equal(
      app.status?.usefulErrorMessage,
      `Fetching resources: fetch stage 0 (image): ${registry.host}/tagged/app: tagSelection: ` +
        'Expected to find at least one version, but did not ' +
        '(details: all=4 -> after-prereleases-filter=3 -> after-constraints-filter=0)',
    );
  });
});

describe('plain-HTTP registries', () => {
  test('refused (TLS) unless listed in dangerousAllowInsecureRegistries; listing it fetches without a restart', async () => {
    await applyApp('mirror', [{ image: { url: `${plain.host}/mirror/app:1.0.0` } }]);
    const refused = await waitForApp('mirror', 'failed', fetchFailed);
    assert.match(
      String(refused.status?.usefulErrorMessage),
      new RegExp(
        `^Fetching resources: fetch stage 0 \\(image\\): .*TLS handshake with ${escape(plain.host)} failed: .*` +
          'must be listed in dangerousAllowInsecureRegistries',
      ),
    );
    await applyConfig([recorderHost, plain.host]);
    const app = await waitForApp('mirror', 'fetched', fetched);
    assert.match(
      String(app.status?.fetch?.stdout),
      new RegExp(`^Fetched image ${escape(pinned(plain.host, 'mirror/app', '1.0.0'))} \\(`),
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
