// Small bounded HTTP client for cloud metadata and token endpoints: one
// deadline covering connect and the whole response, a cap on the body size,
// abort through the caller's signal, and no redirects (a token endpoint that
// redirects is answered as an error instead of sending credentials elsewhere).

import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

import type { CloudProxy } from './proxy.js';

/** Responses of metadata and token endpoints are small; anything larger is refused. */
export const MAX_CLOUD_RESPONSE_BYTES = 64 * 1024;
/** Metadata servers answer within milliseconds where they exist; elsewhere fail fast. */
export const METADATA_TIMEOUT_MS = 1_000;
/** Token services on the internet (Google OAuth, Entra ID, a registry's /oauth2/exchange). */
export const TOKEN_ENDPOINT_TIMEOUT_MS = 10_000;

export interface CloudHttpRequest {
  url: URL;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  signal: AbortSignal;
  maxBytes?: number;
  /** PEM certificates trusted for https in addition to Node's default roots. */
  caCerts?: string;
  /** httpsProxy and noProxy of the operator configuration; metadata servers (plain http) never pass through it. */
  proxy?: CloudProxy;
  /** Names the endpoint in error messages (default: method, origin and path). */
  what?: string;
}

/** A POST of an OAuth2-style form that expects JSON back (token endpoints, ACR's exchange). */
export function formPostRequest(
  url: URL,
  form: Record<string, string>,
  rest: Omit<CloudHttpRequest, 'url' | 'method' | 'headers' | 'body'>,
): CloudHttpRequest {
  return {
    url,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString(),
    ...rest,
  };
}

export interface CloudHttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** How providers send requests; injectable so callers can route through their own transport. */
export type CloudHttp = (request: CloudHttpRequest) => Promise<CloudHttpResponse>;

/** A failure to mint a credential; its message never holds a secret. */
export class CloudCredentialError extends Error {
  override name = 'CloudCredentialError';
}

/** The caller aborted: says nothing about the endpoint, so it is never remembered as its failure. */
export class CloudRequestAborted extends CloudCredentialError {
  override name = 'CloudRequestAborted';
}

const extraCaCache = new Map<string, string[]>();
/** Node's default roots and `extra`; the last list is kept, since every caller passes the same caCerts. */
export function trustedCas(extra: string): string[] {
  let cas = extraCaCache.get(extra);
  if (!cas) {
    cas = [...tls.rootCertificates, extra];
    extraCaCache.clear();
    extraCaCache.set(extra, cas);
  }
  return cas;
}

export const sendCloudRequest: CloudHttp = (request) =>
  new Promise<CloudHttpResponse>((resolve, reject) => {
    const { url, signal } = request;
    const what = request.what ?? `${request.method} ${url.origin}${url.pathname}`;
    if (signal.aborted) {
      reject(new CloudRequestAborted(`${what}: aborted`));
      return;
    }
    let agent: https.Agent | undefined;
    try {
      agent = request.proxy?.agentFor(url);
    } catch (error) {
      reject(new CloudCredentialError(`${what}: ${(error as Error).message}`));
      return;
    }
    const maxBytes = request.maxBytes ?? MAX_CLOUD_RESPONSE_BYTES;
    const headers: Record<string, string> = { 'user-agent': 'regcred-operator', ...request.headers };
    if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
    let settled = false;
    const finish = (error: Error | undefined, response?: CloudHttpResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (error) {
        req.destroy();
        reject(error);
      } else resolve(response!);
    };
    const onAbort = () => finish(new CloudRequestAborted(`${what}: aborted`));
    const options: https.RequestOptions = { method: request.method, headers, agent: agent ?? false };
    if (url.protocol === 'https:' && request.caCerts) options.ca = trustedCas(request.caCerts);
    const send = url.protocol === 'https:' ? https.request : http.request;
    const req = send(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          finish(new CloudCredentialError(`${what}: response larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () =>
        finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', (error) => finish(new CloudCredentialError(`${what}: ${error.message}`)));
    });
    const timer = setTimeout(
      () => finish(new CloudCredentialError(`${what}: no answer within ${request.timeoutMs} ms`)),
      request.timeoutMs,
    );
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (error: NodeJS.ErrnoException) =>
      finish(new CloudCredentialError(`${what}: ${error.code ?? error.message}`)),
    );
    req.end(request.body);
  });

/** Parses a JSON object body; the message names the endpoint but never quotes the body. */
export function parseJsonObject(response: CloudHttpResponse, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(response.body.toString('utf8'));
  } catch {
    throw new CloudCredentialError(`${what}: response is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CloudCredentialError(`${what}: response is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

const MAX_ERROR_DETAIL = 200;

/**
 * The OAuth `error`/`error_description` of a failed token response, shortened
 * and with every known secret cut out, for messages that help the user fix it.
 */
export function oauthErrorDetail(response: CloudHttpResponse, secrets: readonly string[]): string {
  let detail = '';
  try {
    const body = JSON.parse(response.body.toString('utf8')) as unknown;
    if (typeof body === 'object' && body !== null) {
      const { error, error_description: description } = body as Record<string, unknown>;
      const parts = [error, description].filter((part): part is string => typeof part === 'string');
      detail = parts.join(': ');
    }
  } catch {
    // Not JSON: say nothing of the body.
  }
  return redact(detail, secrets);
}

/** Cuts secrets and control characters out of text meant for a message, and bounds its length. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  out = Array.from(out, (char) => {
    const code = char.charCodeAt(0);
    return code < 0x20 || code === 0x7f ? ' ' : char;
  }).join('');
  return out.length > MAX_ERROR_DETAIL ? `${out.slice(0, MAX_ERROR_DETAIL)}…` : out;
}

/** `what: HTTP 401 (detail)` */
export function statusError(
  what: string,
  response: CloudHttpResponse,
  secrets: readonly string[],
): CloudCredentialError {
  const detail = oauthErrorDetail(response, secrets);
  return new CloudCredentialError(`${what}: HTTP ${response.status}${detail ? ` (${detail})` : ''}`);
}

/** Remembers the last failure of a metadata endpoint for a short while, so a cluster without one is not probed on every fetch. */
export class FailureCache {
  private failure: { message: string; until: number } | undefined;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** Throws the remembered failure while it is fresh. */
  check(): void {
    if (this.failure && this.now() < this.failure.until) {
      throw new CloudCredentialError(
        `${this.failure.message} (remembered for ${Math.round(this.ttlMs / 1000)} s)`,
      );
    }
    this.failure = undefined;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.check();
    try {
      return await fn();
    } catch (error) {
      if (!(error instanceof CloudRequestAborted)) {
        const message = error instanceof Error ? error.message : String(error);
        this.failure = { message, until: this.now() + this.ttlMs };
      }
      throw error;
    }
  }
}

/** The payload of a JWT without verifying it (for `exp` and `tid` of tokens we were handed by their issuer). */
export function unverifiedJwtPayload(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1]!.length > MAX_CLOUD_RESPONSE_BYTES) return undefined;
  try {
    const value = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Options every provider takes. */
export interface CloudProviderOptions {
  /** Registries (`host` or `host:port`) served beyond the built-in patterns: private endpoints, pull-through caches. */
  extraHosts?: readonly string[];
  /** PEM certificates trusted for https calls in addition to Node's roots (e.g. a private registry's CA). */
  caCerts?: string;
  /** httpsProxy and noProxy of the operator configuration, for the token endpoints. */
  proxy?: CloudProxy;
  /** Deadline for metadata servers (default METADATA_TIMEOUT_MS). */
  metadataTimeoutMs?: number;
  /** Deadline for token endpoints (default TOKEN_ENDPOINT_TIMEOUT_MS). */
  tokenTimeoutMs?: number;
  /** How long a metadata server's failure is remembered (default METADATA_FAILURE_TTL_MS). */
  metadataFailureTtlMs?: number;
  http?: CloudHttp;
  now?: () => number;
}

export const METADATA_FAILURE_TTL_MS = 10_000;

/** `host` or `host:port`, lower-case, without a default `:443`. */
export function normalizeHost(entry: string): string {
  const host = entry.trim().toLowerCase();
  return host.endsWith(':443') ? host.slice(0, -4) : host;
}

function isDnsLabel(label: string): boolean {
  if (label.length === 0 || label.length > 63 || label.startsWith('-') || label.endsWith('-')) return false;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d;
    if (!ok) return false;
  }
  return true;
}

/** Whether `host` is exactly one DNS label followed by `.suffix` (no port). */
export function isLabelUnder(host: string, suffix: string): boolean {
  const dotted = `.${suffix}`;
  return host.endsWith(dotted) && isDnsLabel(host.slice(0, host.length - dotted.length));
}
