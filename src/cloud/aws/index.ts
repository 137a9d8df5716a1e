// The ECR provider: which hosts are ECR registries, and minting a registry
// credential from the operator's AWS identity or a tenant's Secret.
//
// Extra hosts (private endpoints, pull-through caches, a test registry on
// loopback) carry no region in their name: theirs is options.region, else
// AWS_REGION, else AWS_DEFAULT_REGION. The ECR API endpoint is
// AWS_ENDPOINT_URL_ECR, else AWS_ENDPOINT_URL, else the regional one.

import { tokenEndpointTransport, type CloudProxy } from '../proxy.js';
import type {
  CloudEnvironment,
  CloudIdentity,
  CloudRegistryProvider,
  MintedRegistryCredential,
} from '../types.js';
import {
  AmbientAwsCredentials,
  credentialsFromSecret,
  DEFAULT_CREDENTIAL_TIMINGS,
  type CredentialTimings,
} from './credentials.js';
import { getAuthorizationToken } from './ecr.js';
import { ecrApiEndpoint, isRegionName, normalizeHost, parseEcrHost } from './hosts.js';

export interface EcrProviderOptions extends Partial<CredentialTimings> {
  /** `host[:port]` entries served besides the built-in ECR host pattern. */
  extraHosts?: readonly string[];
  /** Region of the extra hosts; default AWS_REGION, then AWS_DEFAULT_REGION. */
  region?: string;
  /** PEM certificates trusted for STS and ECR beside Node's roots (caCerts of the operator configuration). */
  caCerts?: string;
  /** httpsProxy and noProxy of the operator configuration, for STS and ECR. */
  proxy?: CloudProxy;
}

interface Target {
  region: string;
  endpoint: URL;
}

export function createEcrProvider(
  env: CloudEnvironment,
  options: EcrProviderOptions = {},
): CloudRegistryProvider {
  const timings: CredentialTimings = { ...DEFAULT_CREDENTIAL_TIMINGS };
  for (const key of Object.keys(DEFAULT_CREDENTIAL_TIMINGS) as Array<keyof CredentialTimings>) {
    if (options[key] !== undefined) (timings as unknown as Record<string, unknown>)[key] = options[key];
  }
  const extraHosts = new Set((options.extraHosts ?? []).map(normalizeHost).filter((host) => host !== ''));
  const transport = tokenEndpointTransport(options);
  const ambient = new AmbientAwsCredentials(env, timings, transport);

  const target = (host: string): Target => {
    const parsed = parseEcrHost(host);
    let region: string;
    let defaultEndpoint: string;
    if (parsed) {
      region = parsed.region;
      defaultEndpoint = ecrApiEndpoint(parsed);
    } else if (extraHosts.has(host)) {
      const configured = options.region || env.AWS_REGION || env.AWS_DEFAULT_REGION;
      if (!configured || !isRegionName(configured)) {
        throw new Error(`ECR host ${host} is configured but no valid region is (set AWS_REGION)`);
      }
      region = configured;
      defaultEndpoint = ecrApiEndpoint({
        account: undefined,
        region,
        fips: false,
        dnsSuffix: region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com',
      });
    } else {
      throw new Error(`${host} is not an ECR registry host`);
    }
    const override = env.AWS_ENDPOINT_URL_ECR || env.AWS_ENDPOINT_URL;
    let endpoint: URL;
    try {
      endpoint = new URL(override || defaultEndpoint);
    } catch {
      throw new Error(
        `ECR endpoint: ${env.AWS_ENDPOINT_URL_ECR ? 'AWS_ENDPOINT_URL_ECR' : 'AWS_ENDPOINT_URL'} is not a URL`,
      );
    }
    return { region, endpoint };
  };

  return {
    name: 'ecr',
    servesHost(host: string): boolean {
      const normalized = normalizeHost(host);
      return extraHosts.has(normalized) || parseEcrHost(normalized) !== undefined;
    },
    async mint(
      registryHost: string,
      identity: CloudIdentity,
      signal: AbortSignal,
    ): Promise<MintedRegistryCredential> {
      const { region, endpoint } = target(normalizeHost(registryHost));
      const credentials =
        identity.kind === 'ambient'
          ? await ambient.get(region, signal)
          : await credentialsFromSecret(identity, env, region, timings, signal, transport);
      return getAuthorizationToken(
        { endpoint, region, credentials, now: timings.now() },
        { timeoutMs: timings.requestTimeoutMs, maxBytes: timings.maxResponseBytes, signal, ...transport },
      );
    },
  };
}
