// The registry auth protocol: parse `WWW-Authenticate`, answer `Basic`
// challenges with the credential, and `Bearer` challenges with a token from
// the realm (distribution token spec: GET with service/scope and Basic
// credentials; POST grant_type=refresh_token for an identity token).
// Tokens are cached per (registry, realm, service, scope, credential) until
// shortly before they expire; the credential enters the key only as an
// HMAC under a per-process random key, so one tenant's token is never
// handed to another tenant's request.

import { createHmac, randomBytes } from 'node:crypto';

import type { RegistryCredential } from './auth-match.js';
import { errorFromResponse, RegistryError } from './errors.js';
import { readBody, withRetries, type HttpTransport, type RetryOptions } from './http.js';

export interface Challenge {
  /** Lower-cased scheme: `basic`, `bearer`, ... */
  scheme: string;
  /** Parameters with lower-cased names. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/**
 * Parses the challenges of `WWW-Authenticate` (RFC 7235 auth-params), e.g.
 * `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`
 * or `Basic realm="x", Bearer realm="y"`. token68 forms are not needed by
 * registries and are read as parameters.
 */
export function parseWwwAuthenticate(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((h) => parseWwwAuthenticate(h));
  const text = header;
  let i = 0;
  const skipSpace = () => {
    while (text[i] === ' ' || text[i] === '\t') i++;
  };
  const readToken = (): string | undefined => {
    const match = TOKEN.exec(text.slice(i));
    if (!match) return undefined;
    i += match[0].length;
    return match[0];
  };
  const readQuoted = (): string => {
    let value = '';
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\' && i + 1 < text.length) i++;
      value += text[i];
      i++;
    }
    i++; // closing quote
    return value;
  };

  const challenges: Challenge[] = [];
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t' || text[i] === ',') i++;
    const scheme = readToken();
    if (scheme === undefined) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      const start = i;
      skipSpace();
      const name = readToken();
      skipSpace();
      if (name === undefined || text[i] !== '=') {
        i = start; // the next challenge's scheme, or the end
        break;
      }
      i++;
      skipSpace();
      // Unquoted values are read up to a comma or space (some servers leave URLs unquoted).
      let value: string;
      if (text[i] === '"') value = readQuoted();
      else {
        value = /^[^\s,]*/.exec(text.slice(i))![0];
        i += value.length;
      }
      challenge.params[name.toLowerCase()] = value;
      skipSpace();
      if (text[i] !== ',') break;
      i++;
    }
  }
  return challenges;
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export class TokenCache {
  private readonly entries = new Map<string, { token: string; expiresAt: number }>();

  constructor(
    private readonly maxEntries = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  set(key: string, token: string, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { token, expiresAt: this.now() + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

const FINGERPRINT_KEY = randomBytes(32);

/** A per-process HMAC of the credential; equal credentials give equal fingerprints. */
export function credentialFingerprint(credential: RegistryCredential): string {
  const material =
    credential.kind === 'anonymous'
      ? 'anonymous'
      : credential.kind === 'basic'
        ? `basic\0${credential.username}\0${credential.password}`
        : `${credential.kind}\0${credential.token}`;
  return createHmac('sha256', FINGERPRINT_KEY).update(material).digest('hex');
}

function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/** Seconds a token lives when the server does not say (distribution token spec). */
const DEFAULT_TOKEN_SECONDS = 60;
const MAX_TOKEN_RESPONSE = 1024 * 1024;
export const CLIENT_ID = 'regcred-operator';
const MAX_REMEMBERED_CHALLENGES = 1000;

export interface AuthRequest {
  /** `scheme://host[:port]` of the registry API. */
  origin: string;
  credential: RegistryCredential;
  repository: string;
  signal?: AbortSignal;
}

export class RegistryAuth {
  /** Last challenge seen per (registry origin, credential). */
  private readonly challenges = new Map<string, Challenge>();

  constructor(
    private readonly transport: HttpTransport,
    private readonly retry: RetryOptions,
    readonly tokens: TokenCache = new TokenCache(),
  ) {}

  /** The Authorization header for a first request, when it is known without a 401 round trip. */
  async preemptive(request: AuthRequest): Promise<string | undefined> {
    const { credential } = request;
    if (credential.kind === 'registryToken') return `Bearer ${credential.token}`;
    const known = this.challenges.get(this.challengeKey(request));
    if (!known) return undefined;
    if (known.scheme === 'basic') {
      return credential.kind === 'basic' ? basicHeader(credential.username, credential.password) : undefined;
    }
    return this.bearer(request, known, pullScope(request.repository));
  }

  /**
   * The Authorization header answering a 401's `WWW-Authenticate`, or
   * undefined when the credential cannot answer it (the caller then reports
   * the registry's UNAUTHORIZED).
   */
  async answer(
    request: AuthRequest,
    wwwAuthenticate: string | readonly string[] | undefined,
    rejected?: string,
  ): Promise<string | undefined> {
    const { credential } = request;
    if (credential.kind === 'registryToken') return undefined;
    const challenges = parseWwwAuthenticate(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params['realm']);
    if (bearer) {
      this.remember(request, bearer);
      const scope = bearer.params['scope'] || pullScope(request.repository);
      return this.bearer(request, bearer, scope, rejected);
    }
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (basic && credential.kind === 'basic') {
      this.remember(request, basic);
      const header = basicHeader(credential.username, credential.password);
      // The registry already refused exactly these credentials.
      return header === rejected ? undefined : header;
    }
    return undefined;
  }

  private remember(request: AuthRequest, challenge: Challenge): void {
    // Only an optimisation (it saves a 401 round trip), so a crude bound is enough.
    if (this.challenges.size >= MAX_REMEMBERED_CHALLENGES) this.challenges.clear();
    this.challenges.set(this.challengeKey(request), challenge);
  }

  private challengeKey(request: AuthRequest): string {
    return `${request.origin}\n${credentialFingerprint(request.credential)}`;
  }

  /** A token for the scope: cached, or fetched (also when the cached one was just `rejected`). */
  private async bearer(
    request: AuthRequest,
    challenge: Challenge,
    scope: string,
    rejected?: string,
  ): Promise<string> {
    const realm = challenge.params['realm'] ?? '';
    const service = challenge.params['service'] ?? '';
    const key = [request.origin, realm, service, scope, credentialFingerprint(request.credential)].join('\n');
    const cached = this.tokens.get(key);
    if (cached !== undefined && `Bearer ${cached}` !== rejected) return `Bearer ${cached}`;
    this.tokens.delete(key);
    let fetched: { token: string; expiresIn: number };
    try {
      fetched = await withRetries(
        () => this.fetchToken(realm, service, scope, request.credential, request.signal),
        request.signal ? { ...this.retry, signal: request.signal } : this.retry,
      );
    } catch (err) {
      // Retried here already: keep the caller's own retry loop from multiplying the attempts.
      throw err instanceof RegistryError ? err.final() : err;
    }
    const { token, expiresIn } = fetched;
    // Renew a little early: 10% of the lifetime, at most 10 s.
    this.tokens.set(key, token, (expiresIn - Math.min(10, expiresIn / 10)) * 1000);
    return `Bearer ${token}`;
  }

  private async fetchToken(
    realm: string,
    service: string,
    scope: string,
    credential: RegistryCredential,
    signal: AbortSignal | undefined,
  ): Promise<{ token: string; expiresIn: number }> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError({
        code: 'UNAUTHORIZED',
        reason: 'the registry sent a Bearer challenge with an invalid realm',
      });
    }
    const realmName = `${url.origin}${url.pathname}`;
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new RegistryError({ code: 'UNAUTHORIZED', reason: `unsupported token realm ${realmName}` });
    }
    const sendsSecret = credential.kind === 'basic' || credential.kind === 'identityToken';
    if (sendsSecret && url.protocol === 'http:' && !this.transport.allowsPlainHttp(url)) {
      throw new RegistryError({
        code: 'INSECURE_REALM',
        reason: `refusing to send credentials to the plain-http token realm ${realmName}`,
        host: url.host,
      });
    }
    const context = { host: url.host, request: `requesting a token from ${realmName}` };

    if (credential.kind === 'identityToken') {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credential.token,
        client_id: CLIENT_ID,
        scope,
      });
      if (service) form.set('service', service);
      const sendOptions = {
        method: 'POST' as const,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: form.toString(),
        ...(signal ? { signal } : {}),
      };
      const response = await this.transport.send(url, sendOptions);
      const body = await readBody(response, MAX_TOKEN_RESPONSE, context);
      const status = response.statusCode ?? 0;
      // Not every token server speaks OAuth2; the Docker token protocol falls back to GET then.
      if (status !== 404 && status !== 405)
        return this.tokenFrom(status, body, context, response.headers['retry-after']);
    }

    const get = new URL(url);
    if (service) get.searchParams.set('service', service);
    get.searchParams.append('scope', scope);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (credential.kind === 'basic') {
      get.searchParams.set('account', credential.username);
      headers['Authorization'] = basicHeader(credential.username, credential.password);
    }
    const response = await this.transport.send(get, { headers, ...(signal ? { signal } : {}) });
    const body = await readBody(response, MAX_TOKEN_RESPONSE, context);
    return this.tokenFrom(response.statusCode ?? 0, body, context, response.headers['retry-after']);
  }

  private tokenFrom(
    status: number,
    body: Buffer,
    context: { host: string; request: string },
    retryAfter: string | string[] | undefined,
  ): { token: string; expiresIn: number } {
    if (status !== 200) {
      throw errorFromResponse(status, body, retryAfter === undefined ? context : { ...context, retryAfter });
    }
    let document: unknown;
    try {
      document = JSON.parse(body.toString('utf8'));
    } catch {
      document = undefined;
    }
    const fields =
      typeof document === 'object' && document !== null ? (document as Record<string, unknown>) : {};
    const token = [fields['token'], fields['access_token']].find(
      (value): value is string => typeof value === 'string' && value !== '',
    );
    if (token === undefined) {
      throw new RegistryError({
        code: 'UNAUTHORIZED',
        reason: 'the token server answered without a token',
        host: context.host,
        request: context.request,
      });
    }
    const expiresIn = fields['expires_in'];
    return {
      token,
      expiresIn:
        typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
          ? expiresIn
          : DEFAULT_TOKEN_SECONDS,
    };
  }
}
