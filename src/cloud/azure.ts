// Azure Container Registry credentials.
//
// An Entra ID access token for ACR (scope https://containerregistry.azure.net/.default)
// is exchanged at the registry's POST /oauth2/exchange for an ACR refresh token,
// which the registry accepts with HTTP Basic as user 00000000-0000-0000-0000-000000000000.
//
// Where the Entra ID token comes from: a Secret (tenantId, clientId,
// clientSecret), or the operator's own identity, the first configured of
//   1. workload identity: AZURE_FEDERATED_TOKEN_FILE + AZURE_CLIENT_ID + AZURE_TENANT_ID,
//   2. a client secret: AZURE_CLIENT_SECRET + AZURE_CLIENT_ID + AZURE_TENANT_ID,
//   3. managed identity through IMDS (AZURE_CLIENT_ID, when set, picks a user-assigned identity).
// A configured link that fails is reported, not skipped: falling through would hide the error.
// Endpoints: AZURE_AUTHORITY_HOST (default https://login.microsoftonline.com/) and
// AZURE_POD_IDENTITY_AUTHORITY_HOST for IMDS (default http://169.254.169.254), the
// variables the Azure SDKs read.

import { open } from 'node:fs/promises';

import {
  CloudCredentialError,
  FailureCache,
  formPostRequest,
  isLabelUnder,
  MAX_CLOUD_RESPONSE_BYTES,
  METADATA_FAILURE_TTL_MS,
  METADATA_TIMEOUT_MS,
  normalizeHost,
  parseJsonObject,
  sendCloudRequest,
  statusError,
  TOKEN_ENDPOINT_TIMEOUT_MS,
  unverifiedJwtPayload,
  type CloudProviderOptions,
} from './http.js';
import { tokenEndpointTransport } from './proxy.js';
import type {
  CloudEnvironment,
  CloudIdentity,
  CloudRegistryProvider,
  MintedRegistryCredential,
} from './types.js';

export const ACR_USERNAME = '00000000-0000-0000-0000-000000000000';
export const ACR_SCOPE = 'https://containerregistry.azure.net/.default';
const ACR_RESOURCE = 'https://containerregistry.azure.net';
export const DEFAULT_AZURE_AUTHORITY_HOST = 'https://login.microsoftonline.com/';
export const DEFAULT_AZURE_IMDS_HOST = 'http://169.254.169.254';
const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';
/** ACR refresh tokens live 3 hours; used when the token carries no `exp`. */
export const ACR_REFRESH_TOKEN_DEFAULT_LIFETIME_MS = 3 * 60 * 60 * 1000;
/** Public cloud, Azure China, Azure US Government. */
export const ACR_HOST_SUFFIXES = ['azurecr.io', 'azurecr.cn', 'azurecr.us'] as const;
export const AZURE_SECRET_KEYS = {
  tenantId: 'tenantId',
  clientId: 'clientId',
  clientSecret: 'clientSecret',
} as const;
const MAX_TOKEN_LENGTH = 16 * 1024;

/** <name>.azurecr.io (and the sovereign suffixes): one DNS label, no port. */
export function isAcrBuiltInHost(host: string): boolean {
  return ACR_HOST_SUFFIXES.some((suffix) => isLabelUnder(host, suffix));
}

/** Tenant ids are GUIDs or domain names, client ids GUIDs: neither may carry a path into the authority URL. */
function isIdentifier(value: string): boolean {
  return /^[A-Za-z0-9.-]{1,128}$/.test(value) && !value.startsWith('.');
}

interface EntraToken {
  token: string;
  /** The tenant to name in the ACR exchange, when known. */
  tenant?: string;
}

function readEntraAccessToken(body: Record<string, unknown>, what: string): string {
  const token = body.access_token;
  if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH || /\s/.test(token)) {
    throw new CloudCredentialError(`${what}: response has no usable access_token`);
  }
  return token;
}

async function readBoundedFile(path: string, what: string): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new CloudCredentialError(
      `${what}: cannot open ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    const buffer = Buffer.alloc(MAX_CLOUD_RESPONSE_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_CLOUD_RESPONSE_BYTES) {
      throw new CloudCredentialError(`${what}: ${path} is larger than ${MAX_CLOUD_RESPONSE_BYTES} bytes`);
    }
    const text = buffer.subarray(0, bytesRead).toString('utf8').trim();
    if (text === '') throw new CloudCredentialError(`${what}: ${path} is empty`);
    return text;
  } finally {
    await handle.close();
  }
}

function authorityBase(env: CloudEnvironment): string {
  const raw = env.AZURE_AUTHORITY_HOST?.trim() || DEFAULT_AZURE_AUTHORITY_HOST;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CloudCredentialError('AZURE_AUTHORITY_HOST is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CloudCredentialError('AZURE_AUTHORITY_HOST must be an http(s) URL');
  }
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

function imdsBase(env: CloudEnvironment): string {
  const raw = env.AZURE_POD_IDENTITY_AUTHORITY_HOST?.trim() || DEFAULT_AZURE_IMDS_HOST;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CloudCredentialError('AZURE_POD_IDENTITY_AUTHORITY_HOST is not a URL');
  }
  return url.href.replace(/\/+$/, '');
}

/**
 * ACR provider. `servesHost` matches <name>.azurecr.io/.cn/.us and the extra
 * hosts; `mint` exchanges an Entra ID token at https://<registry>/oauth2/exchange.
 */
export function createAcrProvider(
  env: CloudEnvironment,
  options: CloudProviderOptions = {},
): CloudRegistryProvider {
  const extraHosts = new Set((options.extraHosts ?? []).map(normalizeHost).filter((host) => host !== ''));
  const http = options.http ?? sendCloudRequest;
  const now = options.now ?? Date.now;
  const imdsFailures = new FailureCache(options.metadataFailureTtlMs ?? METADATA_FAILURE_TTL_MS, now);
  const tokenTimeoutMs = options.tokenTimeoutMs ?? TOKEN_ENDPOINT_TIMEOUT_MS;
  // Token endpoints only: IMDS is on the node, never behind the proxy.
  const transport = tokenEndpointTransport(options);

  const servesHost = (host: string) => {
    const normalized = normalizeHost(host);
    return isAcrBuiltInHost(normalized) || extraHosts.has(normalized);
  };

  /** Client-credentials grant with a secret or a federated assertion. */
  async function fromAuthority(
    tenant: string,
    clientId: string,
    credential: { client_secret: string } | { client_assertion: string },
    source: string,
    signal: AbortSignal,
  ): Promise<EntraToken> {
    if (!isIdentifier(tenant))
      throw new CloudCredentialError(`${source}: tenant id is not a GUID or domain name`);
    if (!isIdentifier(clientId)) throw new CloudCredentialError(`${source}: client id is not a GUID`);
    const url = new URL(`${encodeURIComponent(tenant)}/oauth2/v2.0/token`, authorityBase(env));
    const what = `Entra ID ${url.host} for client ${clientId} (${source})`;
    const form: Record<string, string> = {
      grant_type: 'client_credentials',
      client_id: clientId,
      scope: ACR_SCOPE,
    };
    if ('client_secret' in credential) form.client_secret = credential.client_secret;
    else {
      form.client_assertion_type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
      form.client_assertion = credential.client_assertion;
    }
    const secret = 'client_secret' in credential ? credential.client_secret : credential.client_assertion;
    const response = await http(
      formPostRequest(url, form, { timeoutMs: tokenTimeoutMs, signal, what, ...transport }),
    );
    if (response.status !== 200) throw statusError(what, response, [secret]);
    return { token: readEntraAccessToken(parseJsonObject(response, what), what), tenant };
  }

  async function fromImds(signal: AbortSignal): Promise<EntraToken> {
    return imdsFailures.run(async () => {
      const url = new URL(`${imdsBase(env)}${IMDS_TOKEN_PATH}`);
      url.searchParams.set('api-version', '2018-02-01');
      url.searchParams.set('resource', ACR_RESOURCE);
      const clientId = env.AZURE_CLIENT_ID?.trim();
      if (clientId) url.searchParams.set('client_id', clientId);
      const what = `Azure IMDS ${url.host}`;
      const response = await http({
        url,
        method: 'GET',
        headers: { metadata: 'true', accept: 'application/json' },
        timeoutMs: options.metadataTimeoutMs ?? METADATA_TIMEOUT_MS,
        signal,
        what,
      });
      if (response.status !== 200) throw statusError(what, response, []);
      return { token: readEntraAccessToken(parseJsonObject(response, what), what) };
    });
  }

  async function ambientToken(signal: AbortSignal): Promise<EntraToken> {
    const tokenFile = env.AZURE_FEDERATED_TOKEN_FILE?.trim();
    const clientId = env.AZURE_CLIENT_ID?.trim() ?? '';
    const tenant = env.AZURE_TENANT_ID?.trim() ?? '';
    if (tokenFile) {
      const source = 'workload identity';
      if (!clientId || !tenant) {
        throw new CloudCredentialError(
          `${source}: AZURE_FEDERATED_TOKEN_FILE needs AZURE_CLIENT_ID and AZURE_TENANT_ID`,
        );
      }
      // Reread every time: the kubelet rotates the projected token.
      const assertion = await readBoundedFile(tokenFile, source);
      return fromAuthority(tenant, clientId, { client_assertion: assertion }, source, signal);
    }
    const clientSecret = env.AZURE_CLIENT_SECRET;
    if (clientSecret) {
      const source = 'AZURE_CLIENT_SECRET';
      if (!clientId || !tenant)
        throw new CloudCredentialError(`${source} needs AZURE_CLIENT_ID and AZURE_TENANT_ID`);
      return fromAuthority(tenant, clientId, { client_secret: clientSecret }, source, signal);
    }
    return fromImds(signal);
  }

  async function secretToken(
    identity: Extract<CloudIdentity, { kind: 'secret' }>,
    signal: AbortSignal,
  ): Promise<EntraToken> {
    const source = `Secret ${identity.namespace}/${identity.name}`;
    const field = (key: string) => {
      const value = identity.data[key]?.toString('utf8').trim();
      if (!value) throw new CloudCredentialError(`${source} has no data key ${key}`);
      if (value.length > MAX_TOKEN_LENGTH)
        throw new CloudCredentialError(`${source}: data key ${key} is too long`);
      return value;
    };
    const tenant = field(AZURE_SECRET_KEYS.tenantId);
    const clientId = field(AZURE_SECRET_KEYS.clientId);
    const clientSecret = field(AZURE_SECRET_KEYS.clientSecret);
    return fromAuthority(tenant, clientId, { client_secret: clientSecret }, source, signal);
  }

  async function exchange(registryHost: string, entra: EntraToken, signal: AbortSignal) {
    const tenant = entra.tenant ?? tenantClaim(entra.token);
    const form: Record<string, string> = {
      grant_type: 'access_token',
      service: registryHost,
      access_token: entra.token,
    };
    if (tenant) form.tenant = tenant;
    const url = new URL(`https://${registryHost}/oauth2/exchange`);
    const what = `ACR token exchange at ${registryHost}`;
    const response = await http(
      formPostRequest(url, form, { timeoutMs: tokenTimeoutMs, signal, what, ...transport }),
    );
    if (response.status !== 200) throw statusError(what, response, [entra.token]);
    const refreshToken = parseJsonObject(response, what).refresh_token;
    if (
      typeof refreshToken !== 'string' ||
      refreshToken === '' ||
      refreshToken.length > MAX_TOKEN_LENGTH ||
      /[\s:]/.test(refreshToken)
    ) {
      throw new CloudCredentialError(`${what}: response has no usable refresh_token`);
    }
    const exp = unverifiedJwtPayload(refreshToken)?.exp;
    const expiresAt =
      typeof exp === 'number' && Number.isFinite(exp)
        ? new Date(exp * 1000)
        : new Date(now() + ACR_REFRESH_TOKEN_DEFAULT_LIFETIME_MS);
    if (expiresAt.getTime() <= now())
      throw new CloudCredentialError(`${what}: the refresh token has already expired`);
    return { refreshToken, expiresAt };
  }

  return {
    name: 'acr',
    servesHost,
    async mint(registryHost, identity, signal): Promise<MintedRegistryCredential> {
      const host = normalizeHost(registryHost);
      if (!servesHost(host))
        throw new CloudCredentialError(`${registryHost} is not an Azure Container Registry host`);
      const entra =
        identity.kind === 'ambient' ? await ambientToken(signal) : await secretToken(identity, signal);
      const { refreshToken, expiresAt } = await exchange(host, entra, signal);
      return { username: ACR_USERNAME, password: refreshToken, expiresAt };
    },
  };
}

function tenantClaim(token: string): string | undefined {
  const tid = unverifiedJwtPayload(token)?.tid;
  return typeof tid === 'string' && isIdentifier(tid) ? tid : undefined;
}
