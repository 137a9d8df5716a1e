// RS256 JSON Web Tokens with node:crypto: what a Google service-account key
// signs to get an access token (RFC 7523 JWT bearer grant).

import { createPrivateKey, createSign, createVerify, type KeyObject } from 'node:crypto';

function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Signs `claims` with an RSA private key (PEM or KeyObject); `keyId` becomes the header's `kid`. */
export function signRs256Jwt(
  claims: Record<string, unknown>,
  privateKey: string | KeyObject,
  keyId?: string,
): string {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  if (key.asymmetricKeyType !== 'rsa') throw new Error('the private key is not an RSA key');
  const header: Record<string, string> = { alg: 'RS256', typ: 'JWT' };
  if (keyId) header.kid = keyId;
  const signingInput = `${encodeSegment(header)}.${encodeSegment(claims)}`;
  const signature = createSign('RSA-SHA256').update(signingInput).sign(key);
  return `${signingInput}.${signature.toString('base64url')}`;
}

export interface VerifiedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/** Verifies an RS256 JWT's signature; returns undefined when it is malformed or the signature does not match. */
export function verifyRs256Jwt(token: string, publicKey: string | KeyObject): VerifiedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
  try {
    const header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    if (header.alg !== 'RS256') return undefined;
    const valid = createVerify('RSA-SHA256')
      .update(`${headerPart}.${claimsPart}`)
      .verify(publicKey, Buffer.from(signaturePart, 'base64url'));
    if (!valid) return undefined;
    const claims = JSON.parse(Buffer.from(claimsPart, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    return { header, claims };
  } catch {
    return undefined;
  }
}
