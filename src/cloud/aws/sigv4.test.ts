import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  canonicalRequest,
  computeSignature,
  parseAuthorization,
  sha256Hex,
  signRequest,
  toAmzDate,
} from './sigv4.js';

// AWS's SigV4 test suite ("aws-sig-v4-test-suite"): every vector signs with
// these keys, in us-east-1 for service "service", at 2015-08-30T12:36:00Z.
const SUITE = {
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  scope: { region: 'us-east-1', service: 'service' },
  now: new Date('2015-08-30T12:36:00Z'),
};
const CREDENTIAL = 'Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request';

describe('SigV4 against the AWS test suite', () => {
  const vectors: Array<{
    name: string;
    method: string;
    url: string;
    headers?: Record<string, string>;
    body?: string;
    signedHeaders: string;
    signature: string;
  }> = [
    {
      name: 'get-vanilla',
      method: 'GET',
      url: 'https://example.amazonaws.com/',
      signedHeaders: 'host;x-amz-date',
      signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
    {
      name: 'get-vanilla-query-order-key-case',
      method: 'GET',
      url: 'https://example.amazonaws.com/?Param2=value2&Param1=value1',
      signedHeaders: 'host;x-amz-date',
      signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
    },
    {
      name: 'get-utf8',
      method: 'GET',
      url: 'https://example.amazonaws.com/ሴ',
      signedHeaders: 'host;x-amz-date',
      signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85',
    },
    {
      name: 'get-space',
      method: 'GET',
      url: 'https://example.amazonaws.com/example space/',
      signedHeaders: 'host;x-amz-date',
      signature: '652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741',
    },
    {
      name: 'post-vanilla',
      method: 'POST',
      url: 'https://example.amazonaws.com/',
      signedHeaders: 'host;x-amz-date',
      signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
    },
    {
      name: 'post-x-www-form-urlencoded',
      method: 'POST',
      url: 'https://example.amazonaws.com/',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'Param1=value1',
      signedHeaders: 'content-type;host;x-amz-date',
      signature: 'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
    },
  ];
  for (const vector of vectors) {
    it(vector.name, () => {
      const headers = signRequest(
        {
          method: vector.method,
          url: new URL(vector.url),
          headers: vector.headers ?? {},
          body: vector.body ?? '',
        },
        SUITE.credentials,
        SUITE.scope,
        SUITE.now,
      );
      assert.equal(
        headers.authorization,
        `AWS4-HMAC-SHA256 ${CREDENTIAL}, SignedHeaders=${vector.signedHeaders}, Signature=${vector.signature}`,
      );
      assert.equal(headers['x-amz-date'], '20150830T123600Z');
      assert.equal(headers.host, 'example.amazonaws.com');
    });
  }

  it('get-vanilla: the canonical request is the documented one', () => {
    const text = canonicalRequest({
      method: 'GET',
      url: new URL('https://example.amazonaws.com/?Param2=value2&Param1=value1'),
      headers: { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z' },
      signedHeaders: ['host', 'x-amz-date'],
      payloadHash: sha256Hex(''),
    });
    assert.equal(
      text,
      'GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n' +
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});

describe('signRequest', () => {
  it('signs the session token, and a different secret gives a different signature', () => {
    const request = {
      method: 'POST',
      url: new URL('https://api.ecr.eu-west-1.amazonaws.com/'),
      headers: { 'X-Amz-Target': 'T', 'Content-Type': 'application/x-amz-json-1.1' },
      body: '{}',
    };
    const scope = { region: 'eu-west-1', service: 'ecr' };
    const a = signRequest(request, { ...SUITE.credentials, sessionToken: 'tok' }, scope, SUITE.now);
    assert.equal(a['x-amz-security-token'], 'tok');
    const parsed = parseAuthorization(a.authorization);
    assert.deepEqual(parsed?.signedHeaders, [
      'content-type',
      'host',
      'x-amz-date',
      'x-amz-security-token',
      'x-amz-target',
    ]);
    assert.equal(parsed?.region, 'eu-west-1');
    assert.equal(parsed?.service, 'ecr');
    const b = signRequest(
      request,
      { ...SUITE.credentials, secretAccessKey: 'other', sessionToken: 'tok' },
      scope,
      SUITE.now,
    );
    assert.notEqual(parseAuthorization(b.authorization)?.signature, parsed?.signature);
    // The verifier side (the fake) recomputes the same signature from the parts.
    assert.equal(
      computeSignature(
        {
          method: 'POST',
          url: request.url,
          headers: a,
          signedHeaders: parsed?.signedHeaders ?? [],
          payloadHash: sha256Hex('{}'),
        },
        a['x-amz-date'] ?? '',
        scope,
        SUITE.credentials.secretAccessKey,
      ),
      parsed?.signature,
    );
  });

  it('formats X-Amz-Date', () => {
    assert.equal(toAmzDate(new Date('2026-01-02T03:04:05.678Z')), '20260102T030405Z');
  });

  it('parseAuthorization rejects malformed headers', () => {
    for (const header of [
      undefined,
      '',
      'Basic x',
      'AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=x',
    ]) {
      assert.equal(parseAuthorization(header), undefined, String(header));
    }
  });
});
