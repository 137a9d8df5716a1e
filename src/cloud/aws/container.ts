// Container credential endpoints: EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI
// with an authorization token, usually from a projected file) and the ECS task
// role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI).

import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';

import type { CloudEnvironment } from '../types.js';
import { awsHttp, displayUrl } from './http.js';
import { parseCredentialsJson } from './imds.js';
import type { AwsCredentials, ExchangeLimits } from './types.js';

const ECS_ENDPOINT = 'http://169.254.170.2';
// The addresses the AWS SDKs accept for plain http: the ECS and EKS Pod Identity agents.
const AGENT_ADDRESSES = new Set(['169.254.170.2', '169.254.170.23', 'fd00:ec2::23']);

export function containerCredentialsConfigured(env: CloudEnvironment): boolean {
  return Boolean(env.AWS_CONTAINER_CREDENTIALS_FULL_URI || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI);
}

function isLoopback(hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '::1') return true;
  return isIP(hostname) === 4 && hostname.startsWith('127.');
}

function containerUrl(env: CloudEnvironment): URL {
  const relative = env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI;
  if (relative) return new URL(relative.startsWith('/') ? relative : `/${relative}`, ECS_ENDPOINT);
  let url: URL;
  try {
    url = new URL(env.AWS_CONTAINER_CREDENTIALS_FULL_URI ?? '');
  } catch {
    throw new Error('AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL');
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && (isLoopback(hostname) || AGENT_ADDRESSES.has(hostname))) return url;
  throw new Error(
    'AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is only allowed to loopback or the ECS/EKS agent addresses',
  );
}

async function authorizationToken(env: CloudEnvironment): Promise<string | undefined> {
  const file = env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
  if (file) {
    try {
      // Re-read every time: the projected token is rotated by the kubelet.
      return (await readFile(file, 'utf8')).trim();
    } catch (error) {
      throw new Error(
        `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE ${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: error },
      );
    }
  }
  return env.AWS_CONTAINER_AUTHORIZATION_TOKEN || undefined;
}

export async function fetchContainerCredentials(
  env: CloudEnvironment,
  limits: ExchangeLimits,
): Promise<AwsCredentials> {
  const url = containerUrl(env);
  const token = await authorizationToken(env);
  if (token !== undefined && /[\r\n]/.test(token))
    throw new Error('container authorization token holds a line break');
  const response = await awsHttp({
    ...limits,
    method: 'GET',
    url,
    headers: token === undefined ? {} : { authorization: token },
  });
  const where = `container credentials at ${displayUrl(url)}`;
  if (response.status !== 200) throw new Error(`${where}: HTTP ${response.status}`);
  const source = env.AWS_CONTAINER_CREDENTIALS_FULL_URI ? 'EKS Pod Identity' : 'ECS task role';
  return parseCredentialsJson(response.body, where, source);
}
