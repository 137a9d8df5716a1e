// EC2 instance metadata (IMDSv2 only): a session token from PUT /latest/api/token,
// then the attached role's name and its temporary credentials.

import { awsHttp } from './http.js';
import { parseTimestamp, type AwsCredentials, type ExchangeLimits } from './types.js';

export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';
export const DEFAULT_IMDS_ENDPOINT_IPV6 = 'http://[fd00:ec2::254]';
const TOKEN_TTL_SECONDS = '21600';
const CREDENTIALS_PATH = '/latest/meta-data/iam/security-credentials/';

export async function fetchImdsCredentials(
  endpoint: string,
  limits: ExchangeLimits,
): Promise<AwsCredentials> {
  const base = endpoint.endsWith('/') ? endpoint.slice(0, -1) : endpoint;
  const at = (path: string): URL => {
    try {
      return new URL(`${base}${path}`);
    } catch {
      throw new Error('AWS_EC2_METADATA_SERVICE_ENDPOINT is not a URL');
    }
  };
  const tokenResponse = await awsHttp({
    ...limits,
    method: 'PUT',
    url: at('/latest/api/token'),
    headers: { 'x-aws-ec2-metadata-token-ttl-seconds': TOKEN_TTL_SECONDS },
  });
  if (tokenResponse.status !== 200 || tokenResponse.body === '') {
    throw new Error(`IMDSv2 session token: HTTP ${tokenResponse.status}`);
  }
  const session = { 'x-aws-ec2-metadata-token': tokenResponse.body.trim() };
  const roleResponse = await awsHttp({
    ...limits,
    method: 'GET',
    url: at(CREDENTIALS_PATH),
    headers: session,
  });
  if (roleResponse.status === 404) throw new Error('IMDSv2: no IAM role is attached to this instance');
  if (roleResponse.status !== 200) throw new Error(`IMDSv2 role name: HTTP ${roleResponse.status}`);
  const role = roleResponse.body
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line !== '');
  if (role === undefined) throw new Error('IMDSv2: no IAM role is attached to this instance');
  const credentialsResponse = await awsHttp({
    ...limits,
    method: 'GET',
    url: at(`${CREDENTIALS_PATH}${encodeURIComponent(role)}`),
    headers: session,
  });
  if (credentialsResponse.status !== 200) {
    throw new Error(`IMDSv2 credentials of role ${role}: HTTP ${credentialsResponse.status}`);
  }
  return parseCredentialsJson(credentialsResponse.body, `IMDSv2 role ${role}`, 'IMDSv2');
}

/**
 * The JSON shape shared by IMDS and the container credential endpoints:
 * AccessKeyId, SecretAccessKey, Token, Expiration (ISO 8601), and on IMDS Code.
 */
export function parseCredentialsJson(body: string, what: string, source: string): AwsCredentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error(`${what}: answer is not JSON`);
  }
  const record = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  if (record.Code !== undefined && record.Code !== 'Success') {
    throw new Error(
      `${what}: Code is ${typeof record.Code === 'string' ? record.Code.slice(0, 64) : 'not Success'}`,
    );
  }
  const { AccessKeyId, SecretAccessKey, Token } = record;
  if (
    typeof AccessKeyId !== 'string' ||
    AccessKeyId === '' ||
    typeof SecretAccessKey !== 'string' ||
    SecretAccessKey === ''
  ) {
    throw new Error(`${what}: answer lacks AccessKeyId or SecretAccessKey`);
  }
  const expiresAt = parseTimestamp(record.Expiration);
  if (record.Expiration !== undefined && expiresAt === undefined)
    throw new Error(`${what}: Expiration is not a time`);
  return {
    accessKeyId: AccessKeyId,
    secretAccessKey: SecretAccessKey,
    sessionToken: typeof Token === 'string' && Token !== '' ? Token : undefined,
    expiresAt,
    source,
  };
}
