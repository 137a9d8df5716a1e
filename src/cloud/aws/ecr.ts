// ECR GetAuthorizationToken (JSON 1.1 protocol, SigV4-signed): the registry
// password is the base64 `AWS:<password>` token, valid until expiresAt.

import type { MintedRegistryCredential } from '../types.js';
import { awsHttp, displayUrl } from './http.js';
import { signRequest } from './sigv4.js';
import { shortRemoteMessage, type AwsCredentials, type ExchangeLimits } from './types.js';

export const ECR_TARGET = 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken';
export const JSON_11 = 'application/x-amz-json-1.1';

export interface AuthorizationTokenRequest {
  endpoint: URL;
  region: string;
  credentials: AwsCredentials;
  now: Date;
}

function redact(text: string, credentials: AwsCredentials): string {
  let out = text;
  for (const secret of [credentials.secretAccessKey, credentials.sessionToken]) {
    if (secret) out = out.split(secret).join('<redacted>');
  }
  return out;
}

function errorDetail(body: string, errorTypeHeader: string | string[] | undefined): string {
  let type = typeof errorTypeHeader === 'string' ? errorTypeHeader : '';
  let message = '';
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    if (typeof parsed.__type === 'string') type = parsed.__type;
    const text = parsed.message ?? parsed.Message;
    if (typeof text === 'string') message = text;
  } catch {
    // not JSON: the status says enough
  }
  // `com.amazonaws.ecr#AccessDeniedException` or `AccessDeniedException:http://…` -> AccessDeniedException
  const hash = type.lastIndexOf('#');
  if (hash !== -1) type = type.slice(hash + 1);
  const colon = type.indexOf(':');
  if (colon !== -1) type = type.slice(0, colon);
  return [shortRemoteMessage(type), shortRemoteMessage(message)].filter((part) => part !== '').join(': ');
}

export async function getAuthorizationToken(
  request: AuthorizationTokenRequest,
  limits: ExchangeLimits,
): Promise<MintedRegistryCredential> {
  const body = '{}';
  const headers = signRequest(
    {
      method: 'POST',
      url: request.endpoint,
      headers: { 'content-type': JSON_11, 'x-amz-target': ECR_TARGET },
      body,
    },
    request.credentials,
    { region: request.region, service: 'ecr' },
    request.now,
  );
  const what = `ECR GetAuthorizationToken at ${displayUrl(request.endpoint)} (credentials from ${request.credentials.source})`;
  const response = await awsHttp({ ...limits, method: 'POST', url: request.endpoint, headers, body });
  if (response.status !== 200) {
    const detail = redact(
      errorDetail(response.body, response.headers['x-amzn-errortype']),
      request.credentials,
    );
    throw new Error(`${what}: HTTP ${response.status}${detail ? ` ${detail}` : ''}`);
  }
  return parseAuthorizationToken(response.body, what);
}

export function parseAuthorizationToken(body: string, what: string): MintedRegistryCredential {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error(`${what}: answer is not JSON`);
  }
  const data = (parsed as { authorizationData?: unknown } | null)?.authorizationData;
  const first = Array.isArray(data) ? (data[0] as Record<string, unknown> | undefined) : undefined;
  const token = first?.authorizationToken;
  const expiresAt = first?.expiresAt;
  if (typeof token !== 'string' || typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    throw new Error(`${what}: answer lacks authorizationData[0].authorizationToken or expiresAt`);
  }
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) {
    throw new Error(`${what}: authorizationToken is not base64 of user:password`);
  }
  return {
    username: decoded.slice(0, colon),
    password: decoded.slice(colon + 1),
    expiresAt: new Date(expiresAt * 1000),
  };
}
