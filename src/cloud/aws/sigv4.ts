// AWS Signature Version 4 for the few requests the ECR provider makes (ECR
// GetAuthorizationToken, STS AssumeRole). Kept small and dependency-free; the
// unit tests check it against AWS's published signing test suite.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface AwsSigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

export interface SigningScope {
  region: string;
  service: string;
}

/** The parts of a request that go into its canonical form. Header names lower-case. */
export interface CanonicalParts {
  method: string;
  url: URL;
  headers: Readonly<Record<string, string>>;
  signedHeaders: readonly string[];
  payloadHash: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 percent-encoding: everything but unreserved characters. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function decodeOrKeep(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function canonicalPath(url: URL): string {
  // URL.pathname is already percent-encoded; decode each segment and encode it
  // once the AWS way so `/a b` and `/a%20b` sign alike.
  return url.pathname
    .split('/')
    .map((segment) => uriEncode(decodeOrKeep(segment)))
    .join('/');
}

function canonicalQuery(url: URL): string {
  const pairs: Array<[string, string]> = [];
  for (const [key, value] of url.searchParams) pairs.push([uriEncode(key), uriEncode(value)]);
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([key, value]) => `${key}=${value}`).join('&');
}

function canonicalHeaderValue(value: string): string {
  return value.trim().split(/\s+/).join(' ');
}

export function canonicalRequest(parts: CanonicalParts): string {
  const names = [...parts.signedHeaders].map((name) => name.toLowerCase()).sort();
  const headerLines = names
    .map((name) => `${name}:${canonicalHeaderValue(parts.headers[name] ?? '')}\n`)
    .join('');
  return [
    parts.method.toUpperCase(),
    canonicalPath(parts.url),
    canonicalQuery(parts.url),
    headerLines,
    names.join(';'),
    parts.payloadHash,
  ].join('\n');
}

/** Hex signature of a request, given its X-Amz-Date (`YYYYMMDDTHHMMSSZ`). */
export function computeSignature(
  parts: CanonicalParts,
  amzDate: string,
  scope: SigningScope,
  secretAccessKey: string,
): string {
  const day = amzDate.slice(0, 8);
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, credentialScope, sha256Hex(canonicalRequest(parts))].join('\n');
  const dayKey = hmac(`AWS4${secretAccessKey}`, day);
  const regionKey = hmac(dayKey, scope.region);
  const serviceKey = hmac(regionKey, scope.service);
  const signingKey = hmac(serviceKey, 'aws4_request');
  return createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
}

export function toAmzDate(date: Date): string {
  // 2015-08-30T12:36:00.000Z -> 20150830T123600Z
  const iso = date.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

export interface RequestToSign {
  method: string;
  url: URL;
  /** Extra headers to send and sign (e.g. content-type, x-amz-target); names any case. */
  headers: Readonly<Record<string, string>>;
  body: string;
}

/**
 * The headers to send for a signed request: the given ones plus host,
 * x-amz-date, x-amz-security-token (with a session token) and authorization.
 * Every header returned but authorization is signed.
 */
export function signRequest(
  request: RequestToSign,
  credentials: AwsSigningCredentials,
  scope: SigningScope,
  now: Date,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  headers.host = request.url.host;
  headers['x-amz-date'] = toAmzDate(now);
  if (credentials.sessionToken !== undefined && credentials.sessionToken !== '') {
    headers['x-amz-security-token'] = credentials.sessionToken;
  }
  const signedHeaders = Object.keys(headers).sort();
  const signature = computeSignature(
    {
      method: request.method,
      url: request.url,
      headers,
      signedHeaders,
      payloadHash: sha256Hex(request.body),
    },
    headers['x-amz-date'],
    scope,
    credentials.secretAccessKey,
  );
  const day = headers['x-amz-date'].slice(0, 8);
  headers.authorization =
    `${ALGORITHM} Credential=${credentials.accessKeyId}/${day}/${scope.region}/${scope.service}/aws4_request, ` +
    `SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
  return headers;
}

export interface ParsedAuthorization {
  accessKeyId: string;
  day: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/** Parses an `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header; undefined when malformed. */
export function parseAuthorization(header: string | undefined): ParsedAuthorization | undefined {
  if (header === undefined || !header.startsWith(`${ALGORITHM} `)) return undefined;
  const fields = new Map<string, string>();
  for (const part of header.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) return undefined;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential')?.split('/');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential?.length !== 5 || credential[4] !== 'aws4_request' || !signedHeaders || !signature)
    return undefined;
  const [accessKeyId, day, region, service] = credential as [string, string, string, string, string];
  return { accessKeyId, day, region, service, signedHeaders: signedHeaders.split(';'), signature };
}

export function signaturesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
