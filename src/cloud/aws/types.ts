import type { TokenEndpointTransport } from '../proxy.js';
import type { AwsSigningCredentials } from './sigv4.js';

/** AWS credentials with where they came from (for messages) and when they stop working. */
export interface AwsCredentials extends AwsSigningCredentials {
  /** Undefined for long-term keys. */
  expiresAt?: Date | undefined;
  /** `environment`, `web identity`, `EKS Pod Identity`, `IMDSv2`, `Secret ns/name`, …: never a value. */
  source: string;
}

/** Limits for one HTTP exchange with an AWS endpoint, and how STS and ECR are reached. */
export interface ExchangeLimits extends TokenEndpointTransport {
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal | undefined;
}

/** Keeps a message from an AWS endpoint short and on one line. */
export function shortRemoteMessage(text: string | undefined): string {
  if (text === undefined) return '';
  const newline = text.search(/[\r\n]/);
  const line = (newline === -1 ? text : text.slice(0, newline)).trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** Parses an ISO 8601 timestamp; undefined if it is not one. */
export function parseTimestamp(value: unknown): Date | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
