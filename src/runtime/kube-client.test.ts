// The API client against real local servers: throttling (429 / 5xx with
// Retry-After), credentials that rotate (exec plugin and certificate files,
// 401 re-authentication) and proxies (kubeconfig proxy-url, CONNECT tunnels).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  createSecureServer as createSecureHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from 'node:http2';
import { connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import {
  ApiError,
  isTransportFailure,
  KubeClient,
  parseRetryAfter,
  retryDelayMs,
  type ClientOptions,
} from './kube-client.js';
import { loadKubeAuth, type KubeAuth } from './kubeconfig.js';
import { plainHttpAuth, ConfigMaps } from './test-clients.js';

const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'ns', name: 'x' } };
const OPTIONS: ClientOptions = { qps: 0, burst: 1, timeoutMs: 5000, userAgent: 'test' };

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const close = (server: Server) => new Promise<void>((r) => server.close(() => r()));

const fakeAuth = (server: string, token = (): string => 'token'): KubeAuth => plainHttpAuth(server, token);

/** A plain-http API server whose n-th request (from 1) is answered by `handler`. */
async function apiServer(handler: Handler) {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res, seen.length);
  });
  server.keepAliveTimeout = 60_000;
  const port = await listen(server);
  return { seen, url: `http://127.0.0.1:${port}`, close: () => close(server) };
}

function answer(res: ServerResponse, code: number, retryAfter?: string): void {
  if (retryAfter !== undefined) res.setHeader('Retry-After', retryAfter);
  res.setHeader('Content-Type', 'application/json');
  res.statusCode = code;
  res.end(
    code === 200
      ? JSON.stringify(cm)
      : JSON.stringify({
          kind: 'Status',
          code,
          reason: code === 429 ? 'TooManyRequests' : 'ServiceUnavailable',
          message: `answer ${code}`,
        }),
  );
}

function captureLogger() {
  const lines: Array<{ level: string; message: string; meta?: Record<string, unknown> }> = [];
  return {
    lines,
    warn: (message: string, meta?: Record<string, unknown>) => lines.push({ level: 'warn', message, meta }),
    info: (message: string, meta?: Record<string, unknown>) => lines.push({ level: 'info', message, meta }),
  };
}

test('parseRetryAfter reads whole seconds, as client-go does', () => {
  const cases: Array<[string | undefined, number | undefined]> = [
    ['1', 1000],
    [' 3 ', 3000],
    ['0', 0],
    [undefined, undefined],
    ['', undefined],
    ['1.5', undefined],
    ['-1', undefined],
    ['Wed, 21 Oct 2015 07:28:00 GMT', undefined],
    ['9999999', undefined],
  ];
  for (const [header, ms] of cases) assert.equal(parseRetryAfter(header), ms, String(header));
});

test('retryDelayMs: which answers are retried, after how long, within which bounds', () => {
  const base = { attempt: 0, waitedMs: 0, maxRetries: 10, maxRetryWaitMs: 60_000 };
  const cases: Array<[string, Parameters<typeof retryDelayMs>[0], number | undefined]> = [
    ['GET 429 with Retry-After', { ...base, method: 'GET', code: 429, retryAfterMs: 2000 }, 2000],
    ['PUT 429 (refused before processing)', { ...base, method: 'PUT', code: 429, retryAfterMs: 1000 }, 1000],
    [
      'POST 429 without Retry-After: 1 s',
      { ...base, method: 'POST', code: 429, retryAfterMs: undefined },
      1000,
    ],
    [
      '429 without Retry-After doubles',
      { ...base, attempt: 2, method: 'GET', code: 429, retryAfterMs: undefined },
      4000,
    ],
    [
      '429 without Retry-After caps at 8 s',
      { ...base, attempt: 6, method: 'GET', code: 429, retryAfterMs: undefined },
      8000,
    ],
    ['GET 503 with Retry-After', { ...base, method: 'GET', code: 503, retryAfterMs: 1000 }, 1000],
    ['GET 500 with Retry-After', { ...base, method: 'GET', code: 500, retryAfterMs: 1000 }, 1000],
    ['GET 504 with Retry-After', { ...base, method: 'GET', code: 504, retryAfterMs: 1000 }, 1000],
    [
      'GET 503 without Retry-After',
      { ...base, method: 'GET', code: 503, retryAfterMs: undefined },
      undefined,
    ],
    [
      'PUT 503 with Retry-After (may have been applied)',
      { ...base, method: 'PUT', code: 503, retryAfterMs: 1000 },
      undefined,
    ],
    ['PATCH 504 with Retry-After', { ...base, method: 'PATCH', code: 504, retryAfterMs: 1000 }, undefined],
    ['GET 409', { ...base, method: 'GET', code: 409, retryAfterMs: 1000 }, undefined],
    ['Retry-After capped at 30 s', { ...base, method: 'GET', code: 429, retryAfterMs: 3_600_000 }, 30_000],
    ['retries exhausted', { ...base, attempt: 10, method: 'GET', code: 429, retryAfterMs: 1000 }, undefined],
    [
      'total wait exhausted',
      { ...base, waitedMs: 59_500, method: 'GET', code: 429, retryAfterMs: 1000 },
      undefined,
    ],
  ];
  for (const [name, input, want] of cases) assert.equal(retryDelayMs(input), want, name);
});

test('throttled requests are retried after the server’s Retry-After, reads and writes alike', async () => {
  const cases: Array<{
    name: string;
    code: number;
    retryAfter?: string;
    write: boolean;
    waitAtLeastMs: number;
  }> = [
    { name: 'GET 429 Retry-After 1', code: 429, retryAfter: '1', write: false, waitAtLeastMs: 900 },
    { name: 'POST 429 Retry-After 1', code: 429, retryAfter: '1', write: true, waitAtLeastMs: 900 },
    { name: 'GET 429 without Retry-After', code: 429, write: false, waitAtLeastMs: 900 },
    { name: 'GET 503 Retry-After 1', code: 503, retryAfter: '1', write: false, waitAtLeastMs: 900 },
  ];
  for (const c of cases) {
    const api = await apiServer((_req, res, n) =>
      n === 1 ? answer(res, c.code, c.retryAfter) : answer(res, 200),
    );
    const client = await KubeClient.create(fakeAuth(api.url), OPTIONS);
    try {
      const started = performance.now();
      const got = c.write ? await client.create(ConfigMaps, cm) : await client.get(ConfigMaps, 'ns', 'x');
      const elapsed = performance.now() - started;
      assert.equal(got?.metadata?.name, 'x', c.name);
      assert.equal(api.seen.length, 2, `${c.name}: ${api.seen.join(', ')}`);
      assert.ok(elapsed >= c.waitAtLeastMs, `${c.name}: retried after only ${Math.round(elapsed)} ms`);
    } finally {
      client.close();
      await api.close();
    }
  }
});

test('a write answered 503 with Retry-After is not repeated; the error carries retryAfterMs', async () => {
  const api = await apiServer((_req, res) => answer(res, 503, '2'));
  const client = await KubeClient.create(fakeAuth(api.url), OPTIONS);
  try {
    const err = await client.create(ConfigMaps, cm).then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApiError);
    assert.equal(err.code, 503);
    assert.equal(err.retryAfterMs, 2000);
    assert.deepEqual(api.seen, ['POST /api/v1/namespaces/ns/configmaps']);
  } finally {
    client.close();
    await api.close();
  }
});

test('a throttled request tries again as soon as its priority level serves another request, not only after Retry-After', async () => {
  const cases = [
    { name: 'same priority level', servedLevel: 'pl-a', retryAfter: '30', released: true },
    { name: 'another priority level', servedLevel: 'pl-b', retryAfter: '2', released: false },
  ];
  for (const c of cases) {
    let throttledOnce = false;
    const api = await apiServer((req, res) => {
      if (req.url?.endsWith('/throttled') && !throttledOnce) {
        throttledOnce = true;
        res.setHeader('X-Kubernetes-PF-PriorityLevel-UID', 'pl-a');
        answer(res, 429, c.retryAfter);
        return;
      }
      res.setHeader(
        'X-Kubernetes-PF-PriorityLevel-UID',
        req.url?.endsWith('/throttled') ? 'pl-a' : c.servedLevel,
      );
      answer(res, 200);
    });
    const client = await KubeClient.create(fakeAuth(api.url), OPTIONS);
    // The client has read the 429 (and started its wait): only a request sent after that counts as served.
    let throttleSeen = false;
    client.observeRequests((o) => (throttleSeen ||= o.code === '429'));
    try {
      const started = performance.now();
      const throttled = client.get(ConfigMaps, 'ns', 'throttled');
      while (!throttleSeen) await new Promise((r) => setTimeout(r, 5));
      await client.get(ConfigMaps, 'ns', 'other');
      assert.equal((await throttled)?.metadata?.name, 'x', c.name);
      const elapsed = performance.now() - started;
      assert.deepEqual(
        api.seen.map((s) => s.split('/').pop()),
        ['throttled', 'other', 'throttled'],
        c.name,
      );
      if (c.released) assert.ok(elapsed < 1000, `${c.name}: retried after ${Math.round(elapsed)} ms`);
      else assert.ok(elapsed >= 1900, `${c.name}: released early, after ${Math.round(elapsed)} ms`);
    } finally {
      client.close();
      await api.close();
    }
  }
});

test('retries are bounded: by count, and by total wait', async () => {
  const always0 = await apiServer((_req, res) => answer(res, 429, '0'));
  const always5 = await apiServer((_req, res) => answer(res, 429, '5'));
  const byCount = await KubeClient.create(fakeAuth(always0.url), { ...OPTIONS, maxRetries: 3 });
  const byWait = await KubeClient.create(fakeAuth(always5.url), { ...OPTIONS, maxRetryWaitMs: 2000 });
  try {
    await assert.rejects(
      byCount.get(ConfigMaps, 'ns', 'x'),
      (e: unknown) => e instanceof ApiError && e.code === 429,
    );
    assert.equal(always0.seen.length, 4, 'one try and 3 retries');
    const started = performance.now();
    await assert.rejects(
      byWait.get(ConfigMaps, 'ns', 'x'),
      (e: unknown) => e instanceof ApiError && e.code === 429 && e.retryAfterMs === 5000,
    );
    assert.equal(always5.seen.length, 1, 'a 5 s wait does not fit a 2 s budget');
    assert.ok(performance.now() - started < 1000);
  } finally {
    byCount.close();
    byWait.close();
    await always0.close();
    await always5.close();
  }
});

test('a wait for Retry-After ends with the abort signal, and with close()', async () => {
  const api = await apiServer((_req, res) => answer(res, 429, '20'));
  const client = await KubeClient.create(fakeAuth(api.url), OPTIONS);
  try {
    const abort = new AbortController();
    const started = performance.now();
    const aborted = client.request('GET', '/api/v1/namespaces/ns/configmaps/x', { signal: abort.signal });
    setTimeout(() => abort.abort(new Error('stopping')), 200);
    await assert.rejects(aborted, /stopping/);
    const closing = client.get(ConfigMaps, 'ns', 'x');
    setTimeout(() => client.close(), 200);
    await assert.rejects(closing, /API client closed/);
    assert.ok(performance.now() - started < 5000, 'waited out the Retry-After');
    assert.equal(api.seen.length, 2);
  } finally {
    client.close();
    await api.close();
  }
});

test('a throttling burst is logged once, not once per request', async () => {
  const api = await apiServer((_req, res, n) => (n <= 5 ? answer(res, 429, '1') : answer(res, 200)));
  const logger = captureLogger();
  const client = await KubeClient.create(fakeAuth(api.url), { ...OPTIONS, logger });
  try {
    await Promise.all(Array.from({ length: 5 }, () => client.get(ConfigMaps, 'ns', 'x')));
    assert.equal(api.seen.length, 10);
    assert.deepEqual(
      logger.lines.map((l) => `${l.level} ${l.message}`),
      ['warn API server is throttling requests; retrying after its Retry-After'],
    );
    assert.equal(logger.lines[0]!.meta?.status, 429);
  } finally {
    client.close();
    await api.close();
  }
});

test('a watch answered 429 throws an ApiError carrying retryAfterMs (the informer backs off by it)', async () => {
  const api = await apiServer((_req, res) => answer(res, 429, '3'));
  const client = await KubeClient.create(fakeAuth(api.url), OPTIONS);
  try {
    await assert.rejects(
      client.watch(ConfigMaps, { resourceVersion: '1' }, () => undefined, new AbortController().signal),
      (e: unknown) => e instanceof ApiError && e.code === 429 && e.retryAfterMs === 3000,
    );
    assert.equal(api.seen.length, 1, 'the client itself does not retry a watch');
  } finally {
    client.close();
    await api.close();
  }
});

test('a 401 re-reads credentials once and retries; a second 401 is returned', async () => {
  let current = 'old';
  let accepted = 'new';
  const api = await apiServer((req, res) => {
    if (req.headers.authorization === `Bearer ${accepted}`) answer(res, 200);
    else answer(res, 401);
  });
  const client = await KubeClient.create(
    fakeAuth(api.url, () => current),
    { ...OPTIONS, credentialRefreshMs: 3_600_000 },
  );
  try {
    current = 'new';
    const got = await client.create(ConfigMaps, cm);
    assert.equal(got.metadata?.name, 'x');
    assert.equal(api.seen.length, 2);
    accepted = 'rotated';
    current = 'still-wrong';
    await assert.rejects(
      client.get(ConfigMaps, 'ns', 'x'),
      (e: unknown) => e instanceof ApiError && e.code === 401,
    );
    assert.equal(api.seen.length, 4, 'one retry, not more');
  } finally {
    client.close();
    await api.close();
  }
});

// ---- TLS: client certificates that rotate, and proxies ----

let pki: string;
const pem = (name: string) => execFileSync('cat', [join(pki, name)], { encoding: 'utf8' });

before(() => {
  pki = mkdtempSync(join(tmpdir(), 'kube-client-test-'));
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=test-ca',
  ]);
  writeFileSync(join(pki, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const signed = (name: string, ext?: string) => {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      ...(ext ? ['-extfile', ext] : []),
    ]);
  };
  signed('server', 'server.ext');
  signed('client-1');
  signed('client-2');
});

after(() => rmSync(pki, { recursive: true, force: true }));

/**
 * An https API server that asks for a client certificate and answers with its CN; `revoked` CNs get 401.
 * With `http2`, it offers HTTP/2 (and HTTP/1.1) as kube-apiserver does; `versions` lists each request's.
 */
async function tlsApiServer(revoked: Set<string> = new Set(), opts: { http2?: boolean } = {}) {
  const seen: string[] = [];
  const versions: string[] = [];
  const tlsOptions = {
    key: pem('server.key'),
    cert: pem('server.crt'),
    ca: pem('ca.crt'),
    requestCert: true,
    rejectUnauthorized: false,
  };
  const handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    {
      const socket = req.socket as TLSSocket;
      const cn = socket.authorized ? String(socket.getPeerCertificate().subject.CN) : 'anonymous';
      seen.push(cn);
      versions.push(req.httpVersion);
      res.setHeader('Content-Type', 'application/json');
      if (cn === 'anonymous' || revoked.has(cn)) {
        res.statusCode = 401;
        res.end(
          JSON.stringify({ kind: 'Status', code: 401, reason: 'Unauthorized', message: 'Unauthorized' }),
        );
        return;
      }
      if (req.url?.includes('watch=true')) {
        res.end(
          `${JSON.stringify({ type: 'ADDED', object: { ...cm, metadata: { ...cm.metadata, name: cn } } })}\n`,
        );
        return;
      }
      res.end(JSON.stringify({ ...cm, metadata: { ...cm.metadata, name: cn } }));
    }
  };
  const server = opts.http2
    ? createSecureHttp2Server({ ...tlsOptions, allowHTTP1: true }, handler)
    : createHttpsServer(tlsOptions, handler);
  const sessions = new Set<Http2Session>();
  if (opts.http2) server.on('session', (session: Http2Session) => sessions.add(session));
  const port = await listen(server);
  return {
    seen,
    versions,
    port,
    close: async () => {
      for (const session of sessions) session.destroy();
      await close(server);
    },
  };
}

/** A kubeconfig for the server; `user` is the YAML of the user entry. */
function kubeconfig(port: number, user: string, clusterExtra = ''): string {
  const file = join(pki, `kubeconfig-${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:${port}
    certificate-authority: ${join(pki, 'ca.crt')}
${clusterExtra}
users:
- name: test
  user:
${user}
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`,
  );
  return file;
}

/** An exec plugin printing an ExecCredential with the client certificate named in `which`. */
function execPlugin(expiresInMs: number): { which: string; user: string } {
  const which = join(pki, `which-${Math.random().toString(36).slice(2)}`);
  const script = join(pki, `plugin-${Math.random().toString(36).slice(2)}.cjs`);
  writeFileSync(which, 'client-1');
  writeFileSync(
    script,
    `const fs = require('fs'); const path = require('path');
const name = fs.readFileSync(${JSON.stringify(which)}, 'utf8').trim();
const read = (f) => fs.readFileSync(path.join(${JSON.stringify(pki)}, f), 'utf8');
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential',
  status: { clientCertificateData: read(name + '.crt'), clientKeyData: read(name + '.key'),
    expirationTimestamp: new Date(Date.now() + ${expiresInMs}).toISOString() } }));
`,
  );
  const user = `    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${process.execPath}
      args: [${JSON.stringify(script)}]
      interactiveMode: Never`;
  return { which, user };
}

for (const http2 of [false, true])
  test(`client certificates that rotate are picked up by new connections: exec plugin and certificate files (server ${http2 ? 'with' : 'without'} HTTP/2)`, async () => {
    const server = await tlsApiServer(new Set(), { http2 });
    const certFile = join(pki, 'rotating.crt');
    const keyFile = join(pki, 'rotating.key');
    writeFileSync(certFile, pem('client-1.crt'));
    writeFileSync(keyFile, pem('client-1.key'));
    const plugin = execPlugin(50);
    const cases = [
      {
        name: 'exec plugin returning clientCertificateData',
        user: plugin.user,
        rotate: () => writeFileSync(plugin.which, 'client-2'),
      },
      {
        name: 'client-certificate / client-key files',
        user: `    client-certificate: ${certFile}\n    client-key: ${keyFile}`,
        rotate: () => {
          writeFileSync(certFile, pem('client-2.crt'));
          writeFileSync(keyFile, pem('client-2.key'));
        },
      },
    ];
    try {
      for (const c of cases) {
        const client = await KubeClient.create(loadKubeAuth(kubeconfig(server.port, c.user)), {
          ...OPTIONS,
          credentialRefreshMs: 100,
        });
        try {
          assert.equal((await client.get(ConfigMaps, 'ns', 'x'))?.metadata?.name, 'client-1', c.name);
          c.rotate();
          await new Promise((r) => setTimeout(r, 200));
          assert.equal((await client.get(ConfigMaps, 'ns', 'x'))?.metadata?.name, 'client-2', c.name);
          const events: string[] = [];
          await client.watch(
            ConfigMaps,
            { resourceVersion: '1' },
            (e: { object: { metadata: { name: string } } }) => events.push(e.object.metadata.name),
            new AbortController().signal,
          );
          assert.deepEqual(events, ['client-2'], `${c.name}: watch`);
        } finally {
          client.close();
        }
      }
      // Requests use HTTP/2 where the server offers it; watches always stream over HTTP/1.1.
      const want = http2 ? ['2.0', '2.0', '1.1'] : ['1.1', '1.1', '1.1'];
      assert.deepEqual(server.versions, [...want, ...want]);
    } finally {
      await server.close();
    }
  });

test('HTTP/2: one connection carries concurrent requests; DISABLE_HTTP2 keeps HTTP/1.1', async () => {
  const server = await tlsApiServer(new Set(), { http2: true });
  const user = `    client-certificate: ${join(pki, 'client-1.crt')}\n    client-key: ${join(pki, 'client-1.key')}`;
  const cases = [
    { name: 'default', env: {}, want: '2.0' },
    { name: 'DISABLE_HTTP2=1', env: { DISABLE_HTTP2: '1' }, want: '1.1' },
  ];
  try {
    for (const c of cases) {
      server.versions.length = 0;
      const client = await KubeClient.create(loadKubeAuth(kubeconfig(server.port, user)), {
        ...OPTIONS,
        env: c.env,
      });
      try {
        const names = await Promise.all(
          Array.from({ length: 20 }, () => client.get(ConfigMaps, 'ns', 'x').then((o) => o?.metadata?.name)),
        );
        assert.deepEqual(new Set(names), new Set(['client-1']), c.name);
        assert.deepEqual(new Set(server.versions), new Set([c.want]), c.name);
        assert.equal(server.versions.length, 20, c.name);
      } finally {
        client.close();
      }
    }
  } finally {
    await server.close();
  }
});

test('a 401 runs the exec plugin again (its cached credential had not expired) and retries once', async () => {
  const revoked = new Set<string>();
  const server = await tlsApiServer(revoked);
  const plugin = execPlugin(3_600_000);
  const client = await KubeClient.create(loadKubeAuth(kubeconfig(server.port, plugin.user)), {
    ...OPTIONS,
    credentialRefreshMs: 3_600_000,
  });
  try {
    assert.equal((await client.get(ConfigMaps, 'ns', 'x'))?.metadata?.name, 'client-1');
    revoked.add('client-1');
    writeFileSync(plugin.which, 'client-2');
    assert.equal((await client.get(ConfigMaps, 'ns', 'x'))?.metadata?.name, 'client-2');
    assert.deepEqual(server.seen, ['client-1', 'client-1', 'client-2']);
  } finally {
    client.close();
    await server.close();
  }
});

/** A CONNECT proxy that counts tunnels and, with credentials set, demands them. */
async function connectProxy(credentials?: string) {
  const tunnels: string[] = [];
  const proxy = createServer((_req, res) => {
    res.statusCode = 405;
    res.end();
  });
  proxy.on('connect', (req: IncomingMessage, client: import('node:net').Socket, head: Buffer) => {
    const auth = req.headers['proxy-authorization'];
    if (credentials && auth !== `Basic ${Buffer.from(credentials).toString('base64')}`) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
      return;
    }
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  const port = await listen(proxy);
  return {
    tunnels,
    port,
    close: () => {
      proxy.closeAllConnections();
      return close(proxy);
    },
  };
}

test('proxy-url from the kubeconfig: requests and watches go through CONNECT tunnels, kept alive', async () => {
  const server = await tlsApiServer();
  const proxy = await connectProxy('user:p@ss');
  const user = `    client-certificate: ${join(pki, 'client-1.crt')}\n    client-key: ${join(pki, 'client-1.key')}`;
  const file = kubeconfig(server.port, user, `    proxy-url: http://user:p%40ss@127.0.0.1:${proxy.port}`);
  const client = await KubeClient.create(loadKubeAuth(file), OPTIONS);
  try {
    assert.equal(client.proxyDescription, `http://127.0.0.1:${proxy.port}`);
    for (let i = 0; i < 3; i++)
      assert.equal((await client.get(ConfigMaps, 'ns', 'x'))?.metadata?.name, 'client-1');
    const events: string[] = [];
    await client.watch(
      ConfigMaps,
      { resourceVersion: '1' },
      (e: { object: { metadata: { name: string } } }) => events.push(e.object.metadata.name),
      new AbortController().signal,
    );
    assert.deepEqual(events, ['client-1']);
    assert.deepEqual(
      proxy.tunnels,
      [`127.0.0.1:${server.port}`, `127.0.0.1:${server.port}`],
      'one per agent',
    );
    assert.equal(server.seen.length, 4);
  } finally {
    client.close();
    await proxy.close();
    await server.close();
  }
});

test('a proxy that refuses the tunnel fails the request with a clear error, without its credentials', async () => {
  const server = await tlsApiServer();
  const proxy = await connectProxy('user:right');
  const user = `    client-certificate: ${join(pki, 'client-1.crt')}\n    client-key: ${join(pki, 'client-1.key')}`;
  const file = kubeconfig(server.port, user, `    proxy-url: http://user:wrong@127.0.0.1:${proxy.port}`);
  const client = await KubeClient.create(loadKubeAuth(file), OPTIONS);
  try {
    const err = await client.get(ConfigMaps, 'ns', 'x').then(
      () => assert.fail('resolved'),
      (e: unknown) => e as Error,
    );
    assert.match(
      err.message,
      new RegExp(
        `^proxy http://127\\.0\\.0\\.1:${proxy.port}: refused the tunnel: HTTP/1\\.1 407 Proxy Authentication Required \\(CONNECT 127\\.0\\.0\\.1:${server.port}\\)$`,
      ),
    );
    assert.doesNotMatch(err.message, /wrong/);
    assert.equal(server.seen.length, 0);
  } finally {
    client.close();
    await proxy.close();
    await server.close();
  }
});

test('a plain-http API server behind proxy-url is reached through a CONNECT tunnel too', async () => {
  const api = await apiServer((_req, res) => answer(res, 200));
  const proxy = await connectProxy();
  const auth = fakeAuth(api.url);
  const client = await KubeClient.create(
    { ...auth, getCurrentCluster: () => ({ server: api.url, proxyUrl: `127.0.0.1:${proxy.port}` }) },
    OPTIONS,
  );
  try {
    await client.get(ConfigMaps, 'ns', 'x');
    await client.get(ConfigMaps, 'ns', 'x');
    assert.deepEqual(proxy.tunnels, [new URL(api.url).host]);
    assert.equal(api.seen.length, 2);
  } finally {
    client.close();
    await proxy.close();
    await api.close();
  }
});

test('a success answer that is not JSON fails with a fixed message that quotes none of the body (it may be Secret data)', async () => {
  const api = await apiServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end('{"data":{".dockerconfigjson":"c2VjcmV0LXZhbHVl"'); // cut short
  });
  const client = await KubeClient.create(fakeAuth(api.url), OPTIONS);
  try {
    const err = await client.get(ConfigMaps, 'ns', 'x').then(
      () => assert.fail('resolved'),
      (e: unknown) => e as Error,
    );
    assert.match(err.message, /the API server sent a response that is not valid JSON$/);
    assert.doesNotMatch(err.message, /c2VjcmV0|dockerconfigjson/);
  } finally {
    client.close();
    await api.close();
  }
});

test('maxInFlight caps the requests the API server sees at once (what Priority and Fairness meters)', async () => {
  let open = 0;
  let most = 0;
  const api = await apiServer((_req, res) => {
    open += 1;
    most = Math.max(most, open);
    setTimeout(() => {
      open -= 1;
      answer(res, 200);
    }, 20);
  });
  const client = await KubeClient.create(fakeAuth(api.url), { ...OPTIONS, maxInFlight: 3 });
  try {
    await Promise.all(Array.from({ length: 20 }, () => client.get(ConfigMaps, 'ns', 'x')));
    assert.equal(api.seen.length, 20);
    assert.equal(most, 3);
  } finally {
    client.close();
    await api.close();
  }
});

test('isTransportFailure: a request nobody answered (connection cut or refused) is one; an error answer is not', async () => {
  const api = await apiServer((req, res, n) => (n === 1 ? answer(res, 500) : req.socket.destroy()));
  const client = await KubeClient.create(fakeAuth(api.url), OPTIONS);
  const closedServer = createServer();
  const closedPort = await listen(closedServer);
  await close(closedServer);
  const refusing = await KubeClient.create(fakeAuth(`http://127.0.0.1:${closedPort}`), OPTIONS);
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
  try {
    const answered = await failure(client.create(ConfigMaps, cm));
    assert.ok(answered instanceof ApiError && answered.code === 500);
    assert.equal(isTransportFailure(answered), false);
    const cut = await failure(client.create(ConfigMaps, cm));
    assert.ok(!(cut instanceof ApiError), String(cut));
    assert.equal(isTransportFailure(cut), true);
    const refused = await failure(refusing.create(ConfigMaps, cm));
    assert.match(String(refused), /ECONNREFUSED/);
    assert.equal(isTransportFailure(refused), true);
    assert.equal(isTransportFailure(new Error('reconcile failed')), false);
    assert.equal(isTransportFailure(undefined), false);
  } finally {
    client.close();
    refusing.close();
    await api.close();
  }
});
