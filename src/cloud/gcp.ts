// Google Container Registry and Artifact Registry credentials.
//
// Ambient identity: the GCE/GKE metadata server's token for the Pod's service
// account. Secret identity: a service-account key (`key.json`) whose signed
// JWT is exchanged for an access token at Google's OAuth endpoint. The
// registry accepts the access token with HTTP Basic as user
// `oauth2accesstoken` (the name gcloud's docker helper uses; `_token` works too).

import { createPrivateKey, type KeyObject } from 'node:crypto';

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
  type CloudProviderOptions,
} from './http.js';
import { signRs256Jwt } from './jwt.js';
import { tokenEndpointTransport } from './proxy.js';
import type {
  CloudEnvironment,
  CloudIdentity,
  CloudRegistryProvider,
  MintedRegistryCredential,
} from './types.js';

export const GCR_USERNAME = 'oauth2accesstoken';
export const GCP_KEY_FILE_KEY = 'key.json';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Older keys name this endpoint; it is Google's too, so such keys are accepted (and sent to GOOGLE_TOKEN_URL). */
const LEGACY_GOOGLE_TOKEN_URL = 'https://accounts.google.com/o/oauth2/token';
export const GCP_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** The link-local address rather than metadata.google.internal: no DNS lookup where there is no metadata server. */
export const DEFAULT_GCE_METADATA_HOST = '169.254.169.254';
const METADATA_TOKEN_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';
const JWT_LIFETIME_SECONDS = 3600;
const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_RSA_MODULUS_BITS = 4096;

/** gcr.io, <region>.gcr.io and <location>-docker.pkg.dev (one DNS label each, no port). */
export function isGcrBuiltInHost(host: string): boolean {
  return host === 'gcr.io' || isLabelUnder(host, 'gcr.io') || isLabelUnder(host, 'pkg.dev');
}

interface ServiceAccountKey {
  clientEmail: string;
  privateKey: KeyObject;
  privateKeyId?: string;
}

function parseServiceAccountKey(
  raw: Buffer | undefined,
  source: string,
  allowedTokenUrls: string[],
): ServiceAccountKey {
  if (raw === undefined) throw new CloudCredentialError(`${source} has no data key ${GCP_KEY_FILE_KEY}`);
  if (raw.length > MAX_CLOUD_RESPONSE_BYTES) {
    throw new CloudCredentialError(
      `${source}: ${GCP_KEY_FILE_KEY} is larger than ${MAX_CLOUD_RESPONSE_BYTES} bytes`,
    );
  }
  let key: unknown;
  try {
    key = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new CloudCredentialError(`${source}: ${GCP_KEY_FILE_KEY} is not JSON`);
  }
  if (typeof key !== 'object' || key === null || Array.isArray(key)) {
    throw new CloudCredentialError(`${source}: ${GCP_KEY_FILE_KEY} is not a JSON object`);
  }
  const fields = key as Record<string, unknown>;
  if (fields.type !== undefined && fields.type !== 'service_account') {
    throw new CloudCredentialError(
      `${source}: ${GCP_KEY_FILE_KEY} is not a service-account key (type must be service_account)`,
    );
  }
  const {
    client_email: clientEmail,
    private_key: privateKeyPem,
    private_key_id: privateKeyId,
    token_uri: tokenUri,
  } = fields;
  if (typeof clientEmail !== 'string' || clientEmail === '' || clientEmail.length > 320) {
    throw new CloudCredentialError(`${source}: ${GCP_KEY_FILE_KEY} has no client_email`);
  }
  if (typeof privateKeyPem !== 'string' || privateKeyPem === '') {
    throw new CloudCredentialError(`${source}: ${GCP_KEY_FILE_KEY} has no private_key`);
  }
  // The token endpoint is the operator's choice, never the Secret's: a key naming another one is refused.
  if (tokenUri !== undefined && (typeof tokenUri !== 'string' || !allowedTokenUrls.includes(tokenUri))) {
    throw new CloudCredentialError(
      `${source}: ${GCP_KEY_FILE_KEY} names a token_uri other than ${allowedTokenUrls.join(' or ')}; it is not used`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privateKeyPem);
  } catch {
    throw new CloudCredentialError(`${source}: ${GCP_KEY_FILE_KEY}: private_key is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'rsa') {
    throw new CloudCredentialError(`${source}: ${GCP_KEY_FILE_KEY}: private_key is not an RSA key`);
  }
  // Google issues 2048-bit keys; a huge modulus would make every signature cost seconds of CPU.
  if ((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) > MAX_RSA_MODULUS_BITS) {
    throw new CloudCredentialError(
      `${source}: ${GCP_KEY_FILE_KEY}: private_key is longer than ${MAX_RSA_MODULUS_BITS} bits`,
    );
  }
  return {
    clientEmail,
    privateKey,
    ...(typeof privateKeyId === 'string' && privateKeyId !== '' ? { privateKeyId } : {}),
  };
}

/** `access_token` and `expires_in` of a Google token response. */
function readAccessToken(
  body: Record<string, unknown>,
  what: string,
  now: number,
): { token: string; expiresAt: Date } {
  const token = body.access_token;
  const expiresIn = typeof body.expires_in === 'string' ? Number(body.expires_in) : body.expires_in;
  if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH || /[\s:]/.test(token)) {
    throw new CloudCredentialError(`${what}: response has no usable access_token`);
  }
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) {
    throw new CloudCredentialError(`${what}: response has no positive expires_in`);
  }
  return { token, expiresAt: new Date(now + expiresIn * 1000) };
}

function metadataHostFrom(env: CloudEnvironment): string {
  const host = env.GCE_METADATA_HOST?.trim() || DEFAULT_GCE_METADATA_HOST;
  if (/[/?#@\s]/.test(host)) throw new CloudCredentialError('GCE_METADATA_HOST must be host or host:port');
  return host;
}

/**
 * GCR/Artifact Registry provider. Environment: GCE_METADATA_HOST (metadata
 * server, default 169.254.169.254) and GOOGLE_OAUTH_TOKEN_URL (token endpoint
 * for service-account keys, default https://oauth2.googleapis.com/token).
 */
export function createGcrProvider(
  env: CloudEnvironment,
  options: CloudProviderOptions = {},
): CloudRegistryProvider {
  const extraHosts = new Set((options.extraHosts ?? []).map(normalizeHost).filter((host) => host !== ''));
  const http = options.http ?? sendCloudRequest;
  const now = options.now ?? Date.now;
  const metadataFailures = new FailureCache(options.metadataFailureTtlMs ?? METADATA_FAILURE_TTL_MS, now);
  const tokenUrl = env.GOOGLE_OAUTH_TOKEN_URL?.trim() || GOOGLE_TOKEN_URL;
  const allowedTokenUrls = [...new Set([tokenUrl, GOOGLE_TOKEN_URL, LEGACY_GOOGLE_TOKEN_URL])];

  const servesHost = (host: string) => {
    const normalized = normalizeHost(host);
    return isGcrBuiltInHost(normalized) || extraHosts.has(normalized);
  };

  async function fromMetadataServer(signal: AbortSignal): Promise<{ token: string; expiresAt: Date }> {
    return metadataFailures.run(async () => {
      const url = new URL(`http://${metadataHostFrom(env)}${METADATA_TOKEN_PATH}`);
      const what = `GCE metadata server ${url.host}`;
      const response = await http({
        url,
        method: 'GET',
        headers: { 'metadata-flavor': 'Google', accept: 'application/json' },
        timeoutMs: options.metadataTimeoutMs ?? METADATA_TIMEOUT_MS,
        signal,
        what,
      });
      // Without this header the answer came from something else listening there (a proxy, a captive portal).
      if (response.headers['metadata-flavor'] !== 'Google') {
        throw new CloudCredentialError(`${what}: response lacks the header Metadata-Flavor: Google`);
      }
      if (response.status !== 200) throw statusError(what, response, []);
      return readAccessToken(parseJsonObject(response, what), what, now());
    });
  }

  async function fromServiceAccountKey(
    identity: Extract<CloudIdentity, { kind: 'secret' }>,
    signal: AbortSignal,
  ): Promise<{ token: string; expiresAt: Date }> {
    const source = `Secret ${identity.namespace}/${identity.name}`;
    const key = parseServiceAccountKey(identity.data[GCP_KEY_FILE_KEY], source, allowedTokenUrls);
    const issuedAt = Math.floor(now() / 1000);
    const assertion = signRs256Jwt(
      {
        iss: key.clientEmail,
        scope: GCP_SCOPE,
        aud: tokenUrl,
        iat: issuedAt,
        exp: issuedAt + JWT_LIFETIME_SECONDS,
      },
      key.privateKey,
      key.privateKeyId,
    );
    const what = `Google token endpoint ${new URL(tokenUrl).host} for ${key.clientEmail}`;
    const response = await http(
      formPostRequest(
        new URL(tokenUrl),
        { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion },
        {
          timeoutMs: options.tokenTimeoutMs ?? TOKEN_ENDPOINT_TIMEOUT_MS,
          signal,
          what,
          ...tokenEndpointTransport(options),
        },
      ),
    );
    if (response.status !== 200) throw statusError(what, response, [assertion]);
    return readAccessToken(parseJsonObject(response, what), what, now());
  }

  return {
    name: 'gcr',
    servesHost,
    async mint(registryHost, identity, signal): Promise<MintedRegistryCredential> {
      if (!servesHost(registryHost)) {
        throw new CloudCredentialError(`${registryHost} is not a GCR or Artifact Registry host`);
      }
      const { token, expiresAt } =
        identity.kind === 'ambient'
          ? await fromMetadataServer(signal)
          : await fromServiceAccountKey(identity, signal);
      return { username: GCR_USERNAME, password: token, expiresAt };
    },
  };
}
