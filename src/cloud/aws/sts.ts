// STS query API (form-encoded POST, XML answer): AssumeRoleWithWebIdentity for
// IRSA (unsigned; the web identity token is the proof) and AssumeRole for a
// role named in a tenant's Secret (signed with that Secret's keys).

import { awsHttp, displayUrl } from './http.js';
import { signRequest, type AwsSigningCredentials } from './sigv4.js';
import { parseTimestamp, shortRemoteMessage, type AwsCredentials, type ExchangeLimits } from './types.js';

const STS_VERSION = '2011-06-15';
const FORM = 'application/x-www-form-urlencoded; charset=utf-8';

/** Text of the first `<tag>…</tag>` in `xml`, entities decoded; found with indexOf, not a regex. */
export function xmlText(xml: string, tag: string): string | undefined {
  const open = `<${tag}>`;
  const start = xml.indexOf(open);
  if (start === -1) return undefined;
  const from = start + open.length;
  const end = xml.indexOf(`</${tag}>`, from);
  if (end === -1) return undefined;
  return decodeXmlEntities(xml.slice(from, end));
}

function decodeXmlEntities(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g, (_, name: string) => {
    switch (name) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default: {
        const code = name.startsWith('#x') ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return code <= 0x10ffff ? String.fromCodePoint(code) : '';
      }
    }
  });
}

function credentialsFromXml(xml: string, what: string, source: string): AwsCredentials {
  const accessKeyId = xmlText(xml, 'AccessKeyId');
  const secretAccessKey = xmlText(xml, 'SecretAccessKey');
  const sessionToken = xmlText(xml, 'SessionToken');
  const expiresAt = parseTimestamp(xmlText(xml, 'Expiration'));
  if (!accessKeyId || !secretAccessKey || !sessionToken || expiresAt === undefined) {
    throw new Error(
      `${what}: answer lacks Credentials (AccessKeyId, SecretAccessKey, SessionToken, Expiration)`,
    );
  }
  return { accessKeyId, secretAccessKey, sessionToken, expiresAt, source };
}

function stsFailure(what: string, status: number, body: string): Error {
  const code = shortRemoteMessage(xmlText(body, 'Code'));
  const message = shortRemoteMessage(xmlText(body, 'Message'));
  const detail = [code, message].filter((part) => part !== '').join(': ');
  return new Error(`${what}: HTTP ${status}${detail ? ` ${detail}` : ''}`);
}

export interface WebIdentityRequest {
  endpoint: URL;
  roleArn: string;
  sessionName: string;
  webIdentityToken: string;
}

export async function assumeRoleWithWebIdentity(
  request: WebIdentityRequest,
  limits: ExchangeLimits,
): Promise<AwsCredentials> {
  const body = new URLSearchParams({
    Action: 'AssumeRoleWithWebIdentity',
    Version: STS_VERSION,
    RoleArn: request.roleArn,
    RoleSessionName: request.sessionName,
    WebIdentityToken: request.webIdentityToken,
  }).toString();
  const what = `STS AssumeRoleWithWebIdentity (${request.roleArn}) at ${displayUrl(request.endpoint)}`;
  const response = await awsHttp({
    ...limits,
    method: 'POST',
    url: request.endpoint,
    headers: { 'content-type': FORM },
    body,
  });
  if (response.status !== 200) throw stsFailure(what, response.status, response.body);
  return credentialsFromXml(response.body, what, 'web identity');
}

export interface AssumeRoleRequest {
  endpoint: URL;
  region: string;
  roleArn: string;
  sessionName: string;
  credentials: AwsSigningCredentials;
  now: Date;
  source: string;
}

export async function assumeRole(
  request: AssumeRoleRequest,
  limits: ExchangeLimits,
): Promise<AwsCredentials> {
  const body = new URLSearchParams({
    Action: 'AssumeRole',
    Version: STS_VERSION,
    RoleArn: request.roleArn,
    RoleSessionName: request.sessionName,
  }).toString();
  const headers = signRequest(
    { method: 'POST', url: request.endpoint, headers: { 'content-type': FORM }, body },
    request.credentials,
    { region: request.region, service: 'sts' },
    request.now,
  );
  const what = `STS AssumeRole (${request.roleArn}) at ${displayUrl(request.endpoint)}`;
  const response = await awsHttp({ ...limits, method: 'POST', url: request.endpoint, headers, body });
  if (response.status !== 200) throw stsFailure(what, response.status, response.body);
  return credentialsFromXml(response.body, what, request.source);
}
