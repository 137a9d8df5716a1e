// Where the ECR provider's AWS credentials come from: the operator's ambient
// identity (a chain like the AWS SDKs' default one) or keys in a tenant's Secret.

import { readFile } from 'node:fs/promises';

import type { CloudEnvironment } from '../types.js';
import { containerCredentialsConfigured, fetchContainerCredentials } from './container.js';
import { DEFAULT_IMDS_ENDPOINT, DEFAULT_IMDS_ENDPOINT_IPV6, fetchImdsCredentials } from './imds.js';
import { assumeRole, assumeRoleWithWebIdentity } from './sts.js';
import { stsEndpoint } from './hosts.js';
import type { TokenEndpointTransport } from '../proxy.js';
import type { AwsCredentials } from './types.js';

export interface CredentialTimings {
  /** Per call to a metadata endpoint (IMDS, container agent). */
  metadataTimeoutMs: number;
  /** Per call to STS or ECR. */
  requestTimeoutMs: number;
  maxResponseBytes: number;
  /** How long a failed ambient lookup is remembered, so an absent IMDS is not probed per fetch. */
  failureCacheMs: number;
  /** Temporary credentials are replaced this long before their Expiration (at most half their lifetime). */
  refreshMarginMs: number;
  now: () => Date;
}

export const DEFAULT_CREDENTIAL_TIMINGS: CredentialTimings = {
  metadataTimeoutMs: 1000,
  requestTimeoutMs: 10_000,
  maxResponseBytes: 64 * 1024,
  failureCacheMs: 30_000,
  refreshMarginMs: 5 * 60_000,
  now: () => new Date(),
};

export const SESSION_NAME = 'regcred-operator';
// Credentials this close to their Expiration are not used for a request any more.
const STILL_VALID_MARGIN_MS = 30_000;

/** The STS endpoint: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else regional by the configured or the registry's region. */
export function stsUrl(env: CloudEnvironment, fallbackRegion: string): { url: URL; region: string } {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || fallbackRegion;
  const override = env.AWS_ENDPOINT_URL_STS || env.AWS_ENDPOINT_URL;
  try {
    return { url: new URL(override || stsEndpoint(region)), region };
  } catch {
    throw new Error(
      `STS endpoint: ${env.AWS_ENDPOINT_URL_STS ? 'AWS_ENDPOINT_URL_STS' : 'AWS_ENDPOINT_URL'} is not a URL`,
    );
  }
}

/** Rejects with the caller's abort without cancelling shared work others wait on. */
function withAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * The operator Pod's own AWS identity, tried in this order (the first one
 * configured is used; its failure is reported rather than hidden by the next):
 * 1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)
 * 2. AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (IRSA) -> STS AssumeRoleWithWebIdentity
 * 3. AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity) or _RELATIVE_URI (ECS)
 * 4. IMDSv2, unless AWS_EC2_METADATA_DISABLED=true
 * Temporary credentials are cached until shortly before they expire; failures
 * for failureCacheMs. Concurrent callers share one lookup.
 */
export class AmbientAwsCredentials {
  private cached: { credentials: AwsCredentials; refreshAt: number } | undefined;
  private failure: { error: Error; until: number } | undefined;
  private inflight: Promise<AwsCredentials> | undefined;

  constructor(
    private readonly env: CloudEnvironment,
    private readonly timings: CredentialTimings = DEFAULT_CREDENTIAL_TIMINGS,
    /** For STS only: metadata servers and credential agents are on the node. */
    private readonly transport: TokenEndpointTransport = {},
  ) {}

  async get(registryRegion: string, signal: AbortSignal): Promise<AwsCredentials> {
    const now = this.timings.now().getTime();
    if (this.cached && now < this.cached.refreshAt) return this.cached.credentials;
    if (this.failure && now < this.failure.until) {
      if (this.usable(now)) return this.cached!.credentials;
      throw this.failure.error;
    }
    this.inflight ??= this.lookup(registryRegion).finally(() => {
      this.inflight = undefined;
    });
    return withAbort(this.inflight, signal);
  }

  private async lookup(registryRegion: string): Promise<AwsCredentials> {
    try {
      const credentials = await this.resolve(registryRegion);
      this.failure = undefined;
      const now = this.timings.now().getTime();
      const expires = credentials.expiresAt?.getTime();
      const refreshAt =
        expires === undefined
          ? Number.POSITIVE_INFINITY
          : expires - Math.min(this.timings.refreshMarginMs, Math.max(0, (expires - now) / 2));
      this.cached = { credentials, refreshAt };
      return credentials;
    } catch (error) {
      const failure = new Error(`AWS credentials: ${(error as Error).message}`, { cause: error });
      const now = this.timings.now().getTime();
      this.failure = { error: failure, until: now + this.timings.failureCacheMs };
      // A failed early refresh keeps the old credentials while they still work.
      if (this.usable(now)) return this.cached!.credentials;
      this.cached = undefined;
      throw failure;
    }
  }

  /** Whether the cached credentials are past their refresh time but still good for a request. */
  private usable(now: number): boolean {
    const expires = this.cached?.credentials.expiresAt?.getTime();
    return expires !== undefined && now < expires - STILL_VALID_MARGIN_MS;
  }

  private async resolve(registryRegion: string): Promise<AwsCredentials> {
    const env = this.env;
    const metadata = { timeoutMs: this.timings.metadataTimeoutMs, maxBytes: this.timings.maxResponseBytes };
    if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
      return {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        sessionToken: env.AWS_SESSION_TOKEN || undefined,
        source: 'environment',
      };
    }
    if (env.AWS_ROLE_ARN && env.AWS_WEB_IDENTITY_TOKEN_FILE) {
      let webIdentityToken: string;
      try {
        // Re-read on every refresh: the kubelet rotates the projected token.
        webIdentityToken = (await readFile(env.AWS_WEB_IDENTITY_TOKEN_FILE, 'utf8')).trim();
      } catch (error) {
        throw new Error(
          `AWS_WEB_IDENTITY_TOKEN_FILE ${env.AWS_WEB_IDENTITY_TOKEN_FILE}: cannot read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
          { cause: error },
        );
      }
      const sts = stsUrl(env, registryRegion);
      return assumeRoleWithWebIdentity(
        {
          endpoint: sts.url,
          roleArn: env.AWS_ROLE_ARN,
          sessionName: env.AWS_ROLE_SESSION_NAME || SESSION_NAME,
          webIdentityToken,
        },
        {
          timeoutMs: this.timings.requestTimeoutMs,
          maxBytes: this.timings.maxResponseBytes,
          ...this.transport,
        },
      );
    }
    if (containerCredentialsConfigured(env)) return fetchContainerCredentials(env, metadata);
    if ((env.AWS_EC2_METADATA_DISABLED ?? '').toLowerCase() === 'true') {
      throw new Error(
        'none configured (no AWS_ACCESS_KEY_ID, AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE or AWS_CONTAINER_CREDENTIALS_FULL_URI; IMDS disabled)',
      );
    }
    const endpoint =
      env.AWS_EC2_METADATA_SERVICE_ENDPOINT ||
      ((env.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE ?? '').toLowerCase() === 'ipv6'
        ? DEFAULT_IMDS_ENDPOINT_IPV6
        : DEFAULT_IMDS_ENDPOINT);
    try {
      return await fetchImdsCredentials(endpoint, metadata);
    } catch (error) {
      throw new Error(`none in the environment, and instance metadata failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

export const SECRET_KEYS = {
  accessKeyId: 'aws_access_key_id',
  secretAccessKey: 'aws_secret_access_key',
  sessionToken: 'aws_session_token',
  roleArn: 'role_arn',
} as const;

/** Printable ASCII without spaces: what every value here must be to go into a header or form. */
function isPlainToken(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code <= 32 || code >= 127) return false;
  }
  return text.length > 0;
}

export interface SecretCredentialsInput {
  namespace: string;
  name: string;
  data: Readonly<Record<string, Buffer>>;
}

/**
 * Keys from a tenant's Secret: aws_access_key_id, aws_secret_access_key,
 * optional aws_session_token, optional role_arn (then STS AssumeRole with the keys).
 */
export async function credentialsFromSecret(
  secret: SecretCredentialsInput,
  env: CloudEnvironment,
  registryRegion: string,
  timings: CredentialTimings,
  signal: AbortSignal,
  transport: TokenEndpointTransport = {},
): Promise<AwsCredentials> {
  const label = `Secret ${secret.namespace}/${secret.name}`;
  const read = (key: string): string | undefined => {
    const value = secret.data[key];
    return value === undefined ? undefined : value.toString('utf8').trim();
  };
  const accessKeyId = read(SECRET_KEYS.accessKeyId);
  const secretAccessKey = read(SECRET_KEYS.secretAccessKey);
  const missing = [
    accessKeyId ? undefined : SECRET_KEYS.accessKeyId,
    secretAccessKey ? undefined : SECRET_KEYS.secretAccessKey,
  ].filter((key) => key !== undefined);
  if (missing.length > 0 || !accessKeyId || !secretAccessKey) {
    throw new Error(`${label}: missing or empty key(s) ${missing.join(', ')}`);
  }
  const sessionToken = read(SECRET_KEYS.sessionToken) || undefined;
  const roleArn = read(SECRET_KEYS.roleArn) || undefined;
  const values: Array<[string, string | undefined]> = [
    [SECRET_KEYS.accessKeyId, accessKeyId],
    [SECRET_KEYS.secretAccessKey, secretAccessKey],
    [SECRET_KEYS.sessionToken, sessionToken],
    [SECRET_KEYS.roleArn, roleArn],
  ];
  for (const [key, value] of values) {
    if (value !== undefined && !isPlainToken(value)) {
      throw new Error(`${label}: key ${key} holds spaces or characters that are not printable ASCII`);
    }
  }
  const keys: AwsCredentials = { accessKeyId, secretAccessKey, sessionToken, source: label };
  if (roleArn === undefined) return keys;
  const sts = stsUrl(env, registryRegion);
  return assumeRole(
    {
      endpoint: sts.url,
      region: sts.region,
      roleArn,
      sessionName: SESSION_NAME,
      credentials: keys,
      now: timings.now(),
      source: `${label} role ${roleArn}`,
    },
    { timeoutMs: timings.requestTimeoutMs, maxBytes: timings.maxResponseBytes, signal, ...transport },
  );
}
