import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RegistryError } from './errors.js';
import { HttpTransport, matchesAuthority, NoProxy, withRetries } from './http.js';

describe('NoProxy', () => {
  const cases: Array<{ name: string; noProxy: string; url: string; want: boolean }> = [
    { name: '* excludes everything', noProxy: '*', url: 'https://r.io/', want: true },
    { name: 'a domain matches itself', noProxy: 'r.io', url: 'https://r.io/', want: true },
    { name: 'a domain matches its subdomains', noProxy: 'r.io', url: 'https://a.b.r.io/', want: true },
    { name: 'a domain does not match a longer name', noProxy: 'r.io', url: 'https://bar.io/', want: false },
    { name: 'a leading dot matches subdomains only', noProxy: '.r.io', url: 'https://r.io/', want: false },
    { name: 'a leading dot matches a subdomain', noProxy: '.r.io', url: 'https://x.r.io/', want: true },
    { name: '*. is a leading dot', noProxy: '*.r.io', url: 'https://x.r.io/', want: true },
    { name: 'host:port matches that port', noProxy: 'r.io:5000', url: 'https://r.io:5000/', want: true },
    {
      name: 'host:port does not match another port',
      noProxy: 'r.io:5000',
      url: 'https://r.io/',
      want: false,
    },
    { name: 'the default port counts', noProxy: 'r.io:443', url: 'https://r.io/', want: true },
    { name: 'an IP matches exactly', noProxy: '10.1.2.3', url: 'http://10.1.2.3:5000/', want: true },
    { name: 'an IP with a port', noProxy: '10.1.2.3:5000', url: 'http://10.1.2.3:5000/', want: true },
    { name: 'an IP with another port', noProxy: '10.1.2.3:5001', url: 'http://10.1.2.3:5000/', want: false },
    { name: 'a CIDR matches inside', noProxy: '10.0.0.0/8', url: 'https://10.200.0.1/', want: true },
    { name: 'a CIDR does not match outside', noProxy: '10.0.0.0/8', url: 'https://11.0.0.1/', want: false },
    { name: 'an IPv6 CIDR', noProxy: 'fd00::/8', url: 'https://[fd00::1]:5000/', want: true },
    { name: 'a list with spaces and case', noProxy: ' a.io , R.IO ', url: 'https://r.io/', want: true },
    { name: 'loopback is not implicitly excluded', noProxy: 'r.io', url: 'https://127.0.0.1/', want: false },
    { name: 'empty excludes nothing', noProxy: '', url: 'https://r.io/', want: false },
  ];
  for (const { name, noProxy, url, want } of cases) {
    it(name, () => assert.equal(new NoProxy(noProxy).matches(new URL(url)), want));
  }
});

describe('matchesAuthority', () => {
  const cases: Array<{ entries: string[]; url: string; want: boolean }> = [
    { entries: ['r.io'], url: 'https://r.io:5000/', want: true },
    { entries: ['r.io:5000'], url: 'https://r.io:5000/', want: true },
    { entries: ['r.io:5000'], url: 'https://r.io/', want: false },
    { entries: ['r.io:443'], url: 'https://r.io/', want: true },
    { entries: ['q.io'], url: 'https://r.io/', want: false },
    { entries: ['[::1]:5000'], url: 'https://[::1]:5000/', want: true },
  ];
  for (const { entries, url, want } of cases) {
    it(`${entries.join(',')} vs ${url} is ${want}`, () =>
      assert.equal(matchesAuthority(entries, new URL(url)), want));
  }
});

describe('HttpTransport options', () => {
  it('rejects invalid caCerts and proxies naming the option, not the value', () => {
    assert.throws(() => new HttpTransport({ caCerts: 'not a pem' }), /caCerts: no PEM certificate/);
    assert.throws(
      () => new HttpTransport({ caCerts: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' }),
      /caCerts: certificate #1 is not a valid PEM certificate/,
    );
    assert.throws(
      () => new HttpTransport({ httpsProxy: 'https://user:Secr3t@proxy:3128' }),
      (err: unknown) =>
        err instanceof Error && /only http:\/\//.test(err.message) && !err.message.includes('Secr3t'),
    );
  });

  it('uses https unless a registry is listed in plainHttp', () => {
    const transport = new HttpTransport({ plainHttp: ['127.0.0.1:5000'] });
    assert.equal(transport.baseUrl('127.0.0.1:5000').protocol, 'http:');
    assert.equal(transport.baseUrl('127.0.0.1:5001').protocol, 'https:');
    assert.equal(transport.allowsPlainHttp(new URL('http://127.0.0.1:5000/token')), true);
    assert.equal(transport.allowsPlainHttp(new URL('http://127.0.0.1:5001/token')), false);
    transport.close();
  });
});

describe('withRetries', () => {
  const retryable = new RegistryError({ code: 'SERVER_ERROR', reason: 'x', status: 503, retryable: true });
  const final = new RegistryError({ code: 'UNAUTHORIZED', reason: 'x', status: 401 });
  const options = { retries: 3, baseDelayMs: 1, maxDelayMs: 2 };

  it('retries retryable errors until success', async () => {
    let calls = 0;
    const delays: number[] = [];
    const result = await withRetries(
      async () => {
        calls++;
        if (calls < 3) throw retryable;
        return 'ok';
      },
      { ...options, onRetry: (_e, _a, delay) => delays.push(delay) },
    );
    assert.equal(result, 'ok');
    assert.equal(calls, 3);
    assert.equal(delays.length, 2);
  });

  it('stops after the bound', async () => {
    let calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw retryable;
      }, options),
      retryable,
    );
    assert.equal(calls, 4);
  });

  it('never retries a non-retryable error or a foreign one', async () => {
    let calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw final;
      }, options),
      final,
    );
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new Error('bug');
      }, options),
      /bug/,
    );
    assert.equal(calls, 2);
  });

  it('honours Retry-After up to the maximum delay', async () => {
    const delays: number[] = [];
    let calls = 0;
    await withRetries(
      async () => {
        if (calls++ === 0) {
          throw new RegistryError({
            code: 'TOOMANYREQUESTS',
            reason: 'x',
            retryable: true,
            retryAfterMs: 60_000,
          });
        }
      },
      { ...options, maxDelayMs: 3, onRetry: (_e, _a, delay) => delays.push(delay) },
    );
    assert.deepEqual(delays, [3]);
  });
});
