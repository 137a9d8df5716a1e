// The operator's configuration Secret (kapp-controller's keys): what the
// registry client needs from it for TLS and proxies. Pure: the caller reads
// the Secret from its watch and builds the client from `options`.
//
// Keys (in `data`, base64, as kapp-controller reads them):
//   caCerts                 PEM certificates added to the trusted roots
//   dangerousSkipTLSVerify  comma list of `host` or `host:port`
//   dangerousAllowInsecureRegistries
//                           comma list of `host` or `host:port` reached over
//                           plain http (the only hosts credentials may reach
//                           unencrypted); the client's `plainHttp`
//   httpProxy, httpsProxy   `http://[user:pass@]host:port`
//   noProxy                 comma list of exclusions
// Other keys (kapp-controller has more, e.g. kappDeployRawOptions) are
// ignored here. A value is never put into a message: problems name keys.

import { createHash } from 'node:crypto';
import type { TransportOptions } from '../registry/http.js';

export const REGISTRY_CONFIG_KEYS = [
  'caCerts',
  'dangerousSkipTLSVerify',
  'dangerousAllowInsecureRegistries',
  'httpProxy',
  'httpsProxy',
  'noProxy',
] as const;
export type RegistryConfigKey = (typeof REGISTRY_CONFIG_KEYS)[number];

/** The transport option each key sets. */
const OPTION_OF_KEY = {
  caCerts: 'caCerts',
  dangerousSkipTLSVerify: 'dangerousSkipTLSVerify',
  dangerousAllowInsecureRegistries: 'plainHttp',
  httpProxy: 'httpProxy',
  httpsProxy: 'httpsProxy',
  noProxy: 'noProxy',
} as const satisfies Record<RegistryConfigKey, keyof TransportOptions>;

/** The transport options the config Secret sets (the registry config leaves these to it). */
export const REGISTRY_CONFIG_OPTIONS = Object.values(OPTION_OF_KEY);
export type RegistryConfigOption = (typeof OPTION_OF_KEY)[RegistryConfigKey];

export type RegistryTransportOptions = { [K in RegistryConfigOption]?: string };

export interface OperatorConfigSecretLike {
  data?: Record<string, string> | undefined;
}

export interface ParsedOperatorConfig {
  /** The registry options the Secret sets (keys with blank values are left out). */
  options: RegistryTransportOptions;
  /**
   * Changes exactly when `options` or `problems` change; a hash, so that the
   * caller can compare configurations without keeping proxy credentials twice.
   */
  fingerprint: string;
  /** Keys whose value could not be read, e.g. not base64 of UTF-8 text. */
  problems: string[];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decode(value: string): string | undefined {
  const compact = value.replace(/\s+/g, '');
  if (!BASE64.test(compact)) return undefined;
  const bytes = Buffer.from(compact, 'base64');
  const text = bytes.toString('utf8');
  // U+FFFD marks bytes that were not UTF-8: a binary value is not a PEM or a host list.
  return text.includes('\uFFFD') ? undefined : text;
}

/**
 * Reads the registry keys of the operator config Secret. An absent Secret
 * (or one without these keys) means the defaults: Node's trusted roots, TLS
 * verified everywhere, no proxy.
 */
export function parseOperatorConfigSecret(
  secret: OperatorConfigSecretLike | undefined,
): ParsedOperatorConfig {
  const options: RegistryTransportOptions = {};
  const problems: string[] = [];
  for (const key of REGISTRY_CONFIG_KEYS) {
    const raw = secret?.data?.[key];
    if (raw === undefined) continue;
    const text = decode(raw);
    if (text === undefined) {
      problems.push(`${key}: not base64-encoded UTF-8 text`);
      continue;
    }
    if (text.trim() === '') continue;
    options[OPTION_OF_KEY[key]] = key === 'caCerts' ? text : text.trim();
  }
  const fingerprint = createHash('sha256').update(JSON.stringify({ options, problems })).digest('hex');
  return { options, fingerprint, problems };
}
