import assert from 'node:assert/strict';
import { createVerify, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';

import { signRs256Jwt, verifyRs256Jwt } from './jwt.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });

describe('signRs256Jwt', () => {
  it('signs header.claims with RSA-SHA256 so node:crypto verifies the signature', () => {
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const token = signRs256Jwt({ iss: 'sa@p.iam.gserviceaccount.com', iat: 1, exp: 2 }, pem, 'kid-1');
    const [header, claims, signature] = token.split('.') as [string, string, string];
    assert.deepEqual(JSON.parse(Buffer.from(header, 'base64url').toString()), {
      alg: 'RS256',
      typ: 'JWT',
      kid: 'kid-1',
    });
    assert.deepEqual(JSON.parse(Buffer.from(claims, 'base64url').toString()), {
      iss: 'sa@p.iam.gserviceaccount.com',
      iat: 1,
      exp: 2,
    });
    const ok = createVerify('RSA-SHA256')
      .update(`${header}.${claims}`)
      .verify(publicKey, Buffer.from(signature, 'base64url'));
    assert.equal(ok, true);
    assert.doesNotMatch(token, /[+/=]/, 'base64url without padding');
  });

  it('leaves kid out when the key has no id', () => {
    const header = signRs256Jwt({}, privateKey).split('.')[0]!;
    assert.deepEqual(JSON.parse(Buffer.from(header, 'base64url').toString()), { alg: 'RS256', typ: 'JWT' });
  });

  it('refuses a key that is not RSA', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    assert.throws(() => signRs256Jwt({}, ec.privateKey), /not an RSA key/);
  });
});

describe('verifyRs256Jwt', () => {
  const token = signRs256Jwt({ sub: 'a' }, privateKey);

  it('round-trips claims with the matching public key', () => {
    assert.deepEqual(verifyRs256Jwt(token, publicKey)?.claims, { sub: 'a' });
  });

  it('rejects another key, changed claims, another alg and garbage', () => {
    assert.equal(verifyRs256Jwt(token, other.publicKey), undefined);
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from('{"sub":"b"}').toString('base64url')}.${s}`;
    assert.equal(verifyRs256Jwt(forged, publicKey), undefined);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${token.split('.')[1]}.`;
    assert.equal(verifyRs256Jwt(none, publicKey), undefined);
    assert.equal(verifyRs256Jwt('a.b', publicKey), undefined);
    assert.equal(verifyRs256Jwt('!.!.!', publicKey), undefined);
  });
});
