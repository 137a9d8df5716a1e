import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { errorFromNetwork, errorFromResponse, parseErrorBody, RegistryError } from './errors.js';

describe('parseErrorBody', () => {
  const cases: Array<{ name: string; body: string; want: unknown }> = [
    {
      name: 'the distribution errors array',
      body: '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository"}]}]}',
      want: [{ code: 'UNAUTHORIZED', message: 'authentication required' }],
    },
    {
      name: 'several errors',
      body: '{"errors":[{"code":"A","message":"a"},{"code":"B","message":"b"}]}',
      want: [
        { code: 'A', message: 'a' },
        { code: 'B', message: 'b' },
      ],
    },
    {
      name: 'a token server details field',
      body: '{"details":"incorrect username or password"}',
      want: [{ code: '', message: 'incorrect username or password' }],
    },
    {
      name: 'an OAuth2 error',
      body: '{"error":"invalid_grant","error_description":"expired"}',
      want: [{ code: 'invalid_grant', message: 'expired' }],
    },
    { name: 'not JSON', body: '<html>bad gateway</html>', want: [] },
    {
      name: 'control characters and long messages are tamed',
      body: JSON.stringify({ errors: [{ code: 'X', message: `a\nb\u0007${'c'.repeat(400)}` }] }),
      want: [{ code: 'X', message: `a b ${'c'.repeat(296)}...` }],
    },
  ];
  for (const { name, body, want } of cases) it(name, () => assert.deepEqual(parseErrorBody(body), want));
});

describe('errorFromResponse', () => {
  it('carries the registry code, message, status and request', () => {
    const err = errorFromResponse(
      404,
      '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
      {
        host: 'r.io',
        request: 'fetching manifest v1',
      },
    );
    assert.equal(err.code, 'MANIFEST_UNKNOWN');
    assert.equal(err.status, 404);
    assert.equal(err.retryable, false);
    assert.equal(err.message, 'r.io: MANIFEST_UNKNOWN: manifest unknown (HTTP 404 fetching manifest v1)');
    assert.equal(
      err.withImage('r.io/a:v1').message,
      'r.io/a:v1: MANIFEST_UNKNOWN: manifest unknown (HTTP 404 fetching manifest v1)',
    );
  });

  it('derives a code from the status when the body has none, and marks 5xx and 429 retryable', () => {
    const err = errorFromResponse(503, '', { host: 'r.io', request: 'x', retryAfter: '2' });
    assert.equal(err.code, 'SERVER_ERROR');
    assert.equal(err.retryable, true);
    assert.equal(err.retryAfterMs, 2000);
    assert.equal(errorFromResponse(401, '', { host: 'r.io', request: 'x' }).code, 'UNAUTHORIZED');
    assert.equal(
      errorFromResponse(400, 'Client sent an HTTP request to an HTTPS server.\n', {
        host: 'r.io',
        request: 'x',
      }).message,
      'r.io: HTTP_400: unexpected response: "Client sent an HTTP request to an HTTPS server." (HTTP 400 x)',
    );
    assert.match(
      errorFromResponse(502, '<html><body>Bad Gateway</body></html>', { host: 'r.io', request: 'x' }).message,
      /"Bad Gateway"/,
    );
    assert.equal(
      errorFromResponse(502, '<b>Bad</b> <<i>Gateway', { host: 'r.io', request: 'x' }).message,
      'r.io: SERVER_ERROR: unexpected response: "Bad  < Gateway" (HTTP 502 x)',
    );
    assert.equal(errorFromResponse(403, '', { host: 'r.io', request: 'x' }).retryable, false);
    assert.equal(errorFromResponse(429, '', { host: 'r.io', request: 'x' }).retryable, true);
  });
});

describe('errorFromNetwork', () => {
  const nodeError = (code: string, message: string) => Object.assign(new Error(message), { code });

  it('turns certificate failures into X509 with the Node message and a caCerts hint', () => {
    const err = errorFromNetwork(
      nodeError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'),
      'r.io:5000',
    );
    assert.equal(err.code, 'X509');
    assert.equal(err.retryable, false);
    assert.match(err.message, /x509: .*self-signed certificate in certificate chain/);
    assert.match(err.message, /caCerts/);
    assert.match(err.message, /dangerousSkipTLSVerify/);
  });

  it('marks transient network failures retryable, and passes RegistryErrors through', () => {
    assert.equal(errorFromNetwork(nodeError('ECONNRESET', 'socket hang up'), 'r.io').retryable, true);
    assert.equal(errorFromNetwork(nodeError('ETIMEDOUT', 'slow'), 'r.io').code, 'TIMEOUT');
    assert.equal(
      errorFromNetwork(nodeError('ENOTFOUND', 'getaddrinfo ENOTFOUND r.io'), 'r.io').retryable,
      false,
    );
    const original = new RegistryError({ code: 'X', reason: 'y' });
    assert.equal(errorFromNetwork(original, 'r.io'), original);
  });

  it('explains a TLS handshake with a plain http server', () => {
    const err = errorFromNetwork(nodeError('EPROTO', 'wrong version number'), 'r.io:5000');
    assert.equal(err.code, 'TLS');
    assert.match(err.message, /does the registry serve HTTPS/);
    assert.match(err.message, /must be listed in dangerousAllowInsecureRegistries/);
  });
});

describe('errorFromResponse on hostile bodies', () => {
  // A token server's error body may be 1 MiB. `<[^>]*>` took time quadratic in a run of `<`
  // without `>` (64 KiB: 2 s; 1 MiB: minutes); only the first 4 KiB are read now, tag-stripped in
  // linear time. The time bound only guards against the regression.
  it('quotes the start of a 1 MiB body of "<" at once', () => {
    const started = performance.now();
    const err = errorFromResponse(400, Buffer.from('<'.repeat(1 << 20)), { host: 'r.io', request: 'x' });
    const elapsed = performance.now() - started;
    assert.equal(err.message, `r.io: HTTP_400: unexpected response: "${'<'.repeat(120)}..." (HTTP 400 x)`);
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  });
});
