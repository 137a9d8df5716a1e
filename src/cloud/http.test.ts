import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import {
  CloudCredentialError,
  CloudRequestAborted,
  FailureCache,
  isLabelUnder,
  MAX_CLOUD_RESPONSE_BYTES,
  normalizeHost,
  redact,
  sendCloudRequest,
  unverifiedJwtPayload,
} from './http.js';

describe('sendCloudRequest', () => {
  let server: http.Server;
  let silent: net.Server;
  let base = '';
  let silentUrl = '';
  const sockets = new Set<net.Socket>();

  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200);
        res.end(Buffer.alloc(MAX_CLOUD_RESPONSE_BYTES + 1, 'a'));
      } else if (req.url === '/redirect') {
        res.writeHead(302, { location: 'http://elsewhere.invalid/' }).end();
      } else {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () =>
          res.writeHead(200, { 'x-seen': req.headers['x-test'] ?? '' }).end(`echo:${body}`),
        );
      }
    });
    // Accepts connections and never answers: a black-holed metadata address.
    silent = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await new Promise((r) => silent.close(r));
  });

  const request = (url: string, extra: Partial<Parameters<typeof sendCloudRequest>[0]> = {}) =>
    sendCloudRequest({
      url: new URL(url),
      method: 'GET',
      timeoutMs: 1000,
      signal: new AbortController().signal,
      ...extra,
    });

  it('sends headers and body and returns status, headers and body', async () => {
    const response = await request(`${base}/echo`, {
      method: 'POST',
      body: 'a=b',
      headers: { 'x-test': 'yes' },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-seen'], 'yes');
    assert.equal(response.body.toString(), 'echo:a=b');
  });

  it('refuses a body over the cap', async () => {
    await assert.rejects(request(`${base}/big`), (error: Error) => {
      assert.ok(error instanceof CloudCredentialError);
      assert.match(error.message, /larger than 65536 bytes/);
      return true;
    });
  });

  it('does not follow redirects', async () => {
    assert.equal((await request(`${base}/redirect`)).status, 302);
  });

  it('gives up on a server that never answers within the deadline', async () => {
    const started = performance.now();
    await assert.rejects(request(silentUrl, { timeoutMs: 300 }), /no answer within 300 ms/);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 1500, `took ${elapsed} ms`);
  });

  it('stops when the caller aborts', async () => {
    const controller = new AbortController();
    const pending = request(silentUrl, { timeoutMs: 10_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(pending, /aborted/);
    await assert.rejects(request(silentUrl, { signal: AbortSignal.abort() }), /aborted/);
  });

  it('names the network error without a URL query', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await assert.rejects(request(`http://127.0.0.1:${port}/t?secret=x`), (error: Error) => {
      assert.match(error.message, /ECONNREFUSED/);
      assert.doesNotMatch(error.message, /secret=x/);
      return true;
    });
  });
});

describe('FailureCache', () => {
  it('remembers a failure for its TTL, then tries again', async () => {
    let clock = 0;
    const cache = new FailureCache(5000, () => clock);
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new CloudCredentialError('metadata: ECONNREFUSED');
    };
    await assert.rejects(cache.run(failing), /ECONNREFUSED/);
    clock = 4999;
    await assert.rejects(cache.run(failing), /ECONNREFUSED \(remembered for 5 s\)/);
    assert.equal(calls, 1);
    clock = 5000;
    assert.equal(await cache.run(async () => 'ok'), 'ok');
    assert.equal(calls, 1);
  });

  it('does not remember an abort by the caller', async () => {
    const cache = new FailureCache(5000, () => 0);
    await assert.rejects(
      cache.run(async () => {
        throw new CloudRequestAborted('GET x: aborted');
      }),
    );
    assert.equal(await cache.run(async () => 'ok'), 'ok');
  });
});

describe('host helpers', () => {
  const cases: Array<[string, string, boolean]> = [
    ['eu.gcr.io', 'gcr.io', true],
    ['gcr.io', 'gcr.io', false],
    ['a.b.gcr.io', 'gcr.io', false],
    ['-a.gcr.io', 'gcr.io', false],
    ['a_b.gcr.io', 'gcr.io', false],
    ['evilgcr.io', 'gcr.io', false],
    ['eu.gcr.io:5000', 'gcr.io', false],
    [`${'a'.repeat(64)}.gcr.io`, 'gcr.io', false],
  ];
  for (const [host, suffix, want] of cases) {
    it(`isLabelUnder(${host.slice(0, 20)}, ${suffix}) is ${want}`, () =>
      assert.equal(isLabelUnder(host, suffix), want));
  }
  it('normalizeHost lower-cases and drops :443', () => {
    assert.equal(normalizeHost(' Reg.Example:443 '), 'reg.example');
    assert.equal(normalizeHost('reg.example:5000'), 'reg.example:5000');
  });
});

describe('redact', () => {
  it('cuts out secrets and control characters and bounds the length', () => {
    assert.equal(redact('bad s3cr3t-value\nend', ['s3cr3t-value']), 'bad [redacted] end');
    assert.equal(redact('x'.repeat(500), []).length, 201);
  });
});

describe('unverifiedJwtPayload', () => {
  it('reads the payload of a JWT-shaped string, and nothing else', () => {
    const payload = Buffer.from('{"exp":5,"tid":"t"}').toString('base64url');
    assert.deepEqual(unverifiedJwtPayload(`h.${payload}.s`), { exp: 5, tid: 't' });
    assert.equal(unverifiedJwtPayload('opaque-token'), undefined);
    assert.equal(unverifiedJwtPayload('a.!!.c'), undefined);
    assert.equal(unverifiedJwtPayload(`a.${Buffer.from('[1]').toString('base64url')}.c`), undefined);
  });
});
