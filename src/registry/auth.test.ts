import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';

import type { RegistryCredential } from './auth-match.js';

import {
  CLIENT_ID,
  credentialFingerprint,
  parseWwwAuthenticate,
  RegistryAuth,
  TokenCache,
  type Challenge,
} from './auth.js';
import { HttpTransport, type SendOptions } from './http.js';

describe('parseWwwAuthenticate', () => {
  const cases: Array<{ name: string; header: string | string[] | undefined; want: Challenge[] }> = [
    { name: 'no header', header: undefined, want: [] },
    {
      name: 'Basic with a realm',
      header: 'Basic realm="test"',
      want: [{ scheme: 'basic', params: { realm: 'test' } }],
    },
    {
      name: 'Bearer with realm, service and scope (Docker Hub style)',
      header:
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      want: [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:library/nginx:pull',
          },
        },
      ],
    },
    {
      name: 'scope with several actions and a comma inside quotes',
      header: 'Bearer realm="https://a/token", scope="repository:x:pull,push"',
      want: [{ scheme: 'bearer', params: { realm: 'https://a/token', scope: 'repository:x:pull,push' } }],
    },
    {
      name: 'two challenges in one header, any case, spaces around =',
      header: 'BASIC realm = "r1", bearer REALM="https://b/token",service=svc',
      want: [
        { scheme: 'basic', params: { realm: 'r1' } },
        { scheme: 'bearer', params: { realm: 'https://b/token', service: 'svc' } },
      ],
    },
    {
      name: 'unquoted URL values and escaped quotes',
      header: 'Bearer realm=https://c/token,error="a \\"b\\""',
      want: [{ scheme: 'bearer', params: { realm: 'https://c/token', error: 'a "b"' } }],
    },
    {
      name: 'several header lines',
      header: ['Basic realm="x"', 'Bearer realm="y"'],
      want: [
        { scheme: 'basic', params: { realm: 'x' } },
        { scheme: 'bearer', params: { realm: 'y' } },
      ],
    },
    { name: 'a scheme without parameters', header: 'Negotiate', want: [{ scheme: 'negotiate', params: {} }] },
  ];
  for (const { name, header, want } of cases) {
    it(name, () => assert.deepEqual(parseWwwAuthenticate(header), want));
  }
});

describe('TokenCache', () => {
  it('returns tokens until they expire and evicts the oldest past its size', () => {
    let now = 1000;
    const cache = new TokenCache(2, () => now);
    cache.set('a', 'ta', 100);
    cache.set('b', 'tb', 100);
    assert.equal(cache.get('a'), 'ta');
    now += 100;
    assert.equal(cache.get('a'), undefined);
    cache.set('c', 'tc', 100);
    cache.set('d', 'td', 100);
    assert.equal(cache.size, 2);
    assert.equal(cache.get('c'), 'tc');
    cache.delete('c');
    assert.equal(cache.get('c'), undefined);
  });
});

describe('credentialFingerprint', () => {
  it('differs per credential, is stable, and does not contain the secret', () => {
    const a = credentialFingerprint({ kind: 'basic', username: 'u', password: 'Secr3t' });
    assert.equal(a, credentialFingerprint({ kind: 'basic', username: 'u', password: 'Secr3t' }));
    assert.notEqual(a, credentialFingerprint({ kind: 'basic', username: 'u', password: 'other' }));
    assert.notEqual(
      credentialFingerprint({ kind: 'identityToken', token: 't' }),
      credentialFingerprint({ kind: 'registryToken', token: 't' }),
    );
    assert.ok(!a.includes('Secr3t'));
  });
});

interface SentRequest {
  method: string;
  url: string;
  authorization?: string;
  form?: Record<string, string>;
}

/** A transport answering token requests from a script, recording what was sent. */
class FakeTokenTransport extends HttpTransport {
  readonly sent: SentRequest[] = [];

  constructor(
    private readonly answers: (request: SentRequest) => { status: number; body: unknown },
    plainHttp: string[] = [],
  ) {
    super({ plainHttp });
  }

  override async send(url: URL, options: SendOptions = {}): Promise<IncomingMessage> {
    const request: SentRequest = { method: options.method ?? 'GET', url: url.href };
    const authorization = options.headers?.['Authorization'];
    if (authorization !== undefined) request.authorization = authorization;
    if (options.body !== undefined)
      request.form = Object.fromEntries(new URLSearchParams(options.body.toString()));
    this.sent.push(request);
    const { status, body } = this.answers(request);
    const response = Readable.from([Buffer.from(JSON.stringify(body))]) as unknown as IncomingMessage;
    response.statusCode = status;
    response.headers = {};
    return response;
  }
}

describe('RegistryAuth: answering a Bearer challenge', () => {
  const challenge =
    'Bearer realm="https://auth.example/token",service="reg",scope="repository:team/app:pull"';
  const request = (credential: RegistryCredential) => ({
    origin: 'https://reg.example',
    credential,
    repository: 'team/app',
  });
  const retry = { retries: 0, baseDelayMs: 1, maxDelayMs: 1 };
  const cases: Array<{
    name: string;
    credential: RegistryCredential;
    answers: (r: SentRequest) => { status: number; body: unknown };
    want: string;
    sent: SentRequest[];
  }> = [
    {
      name: 'an identity token is exchanged with grant_type=refresh_token (POST, form)',
      credential: { kind: 'identityToken', token: 'refresh-1' },
      answers: () => ({ status: 200, body: { access_token: 'access-1' } }),
      want: 'Bearer access-1',
      sent: [
        {
          method: 'POST',
          url: 'https://auth.example/token',
          form: {
            grant_type: 'refresh_token',
            refresh_token: 'refresh-1',
            client_id: CLIENT_ID,
            scope: 'repository:team/app:pull',
            service: 'reg',
          },
        },
      ],
    },
    {
      name: 'a token server without OAuth2 (405) gets the GET form instead',
      credential: { kind: 'identityToken', token: 'refresh-1' },
      answers: (r) =>
        r.method === 'POST' ? { status: 405, body: {} } : { status: 200, body: { token: 't' } },
      want: 'Bearer t',
      sent: [
        {
          method: 'POST',
          url: 'https://auth.example/token',
          form: {
            grant_type: 'refresh_token',
            refresh_token: 'refresh-1',
            client_id: CLIENT_ID,
            scope: 'repository:team/app:pull',
            service: 'reg',
          },
        },
        { method: 'GET', url: 'https://auth.example/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull' },
      ],
    },
    {
      name: 'username/password go to the realm as Basic with account',
      credential: { kind: 'basic', username: 'u', password: 'p' },
      answers: () => ({ status: 200, body: { token: 't' } }),
      want: 'Bearer t',
      sent: [
        {
          method: 'GET',
          url: 'https://auth.example/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull&account=u',
          authorization: `Basic ${Buffer.from('u:p').toString('base64')}`,
        },
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const transport = new FakeTokenTransport(c.answers);
      const auth = new RegistryAuth(transport, retry);
      assert.equal(await auth.answer(request(c.credential), challenge), c.want);
      assert.deepEqual(transport.sent, c.sent);
      transport.close();
    });
  }

  it('sends a refresh token to a plain-http realm only when that host is allowed plain http', async () => {
    const plainChallenge = 'Bearer realm="http://auth.local:8080/token",service="reg"';
    const refused = new FakeTokenTransport(() => ({ status: 200, body: { token: 't' } }));
    await assert.rejects(
      new RegistryAuth(refused, retry).answer(request({ kind: 'identityToken', token: 'r' }), plainChallenge),
      /refusing to send credentials to the plain-http token realm http:\/\/auth\.local:8080\/token/,
    );
    assert.deepEqual(refused.sent, []);
    const allowed = new FakeTokenTransport(
      () => ({ status: 200, body: { access_token: 'a' } }),
      ['auth.local:8080'],
    );
    assert.equal(
      await new RegistryAuth(allowed, retry).answer(
        request({ kind: 'identityToken', token: 'r' }),
        plainChallenge,
      ),
      'Bearer a',
    );
    refused.close();
    allowed.close();
  });
});
