import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { credentialFingerprint, parseWwwAuthenticate, TokenCache, type Challenge } from './auth.js';

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
