import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import {
  request as httpRequest,
  Agent as HttpAgent,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http';
import { setMaxListeners } from 'node:events';
import type { KubernetesObject } from '@kubernetes/client-node';
import { Http2Connection, Http2Unavailable, type Exchange } from './http2-connection.js';
import { HttpsTunnelAgent, HttpTunnelAgent, proxyFor, redactProxyUrl } from './http-proxy.js';
import type { KubeAuth } from './kubeconfig.js';
import type { Logger } from './logger.js';
import { InFlightLimit, TokenBucket } from './rate-limiter.js';
import { abortReason, priorityLevelOf, ThrottleWaiters } from './throttle-waiters.js';

/** What the client needs to know to build a resource's REST path. */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export const apiVersionOf = (rt: ResourceType): string =>
  rt.group ? `${rt.group}/${rt.version}` : rt.version;

export class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly reason?: string,
    readonly method?: string,
    readonly path?: string,
    /** The server's Retry-After, when it sent one: wait this long before trying again (watches too). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** A write refused before it was sent, because this replica does not hold the leader Lease. */
export class NotLeaderError extends Error {
  constructor(method: string, path: string) {
    super(`not the leader: ${method} ${path} refused`);
    this.name = 'NotLeaderError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.code === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.code === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof ApiError && err.code === 409 && err.reason === 'AlreadyExists';
export const isGone = (err: unknown): boolean => err instanceof ApiError && err.code === 410;

/** Requests that got no answer from the API server at all (refused, reset, timed out). */
const transportFailures = new WeakSet<object>();

function markTransportFailure(err: unknown): void {
  if (typeof err === 'object' && err !== null) transportFailures.add(err);
}

/**
 * The request never got an answer: the API server was unreachable, not
 * refusing. Retries waiting on such errors may run as soon as the server is
 * reachable again.
 */
export const isTransportFailure = (err: unknown): boolean =>
  typeof err === 'object' && err !== null && transportFailures.has(err);

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
  continue?: string;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  /** Ask for PartialObjectMetadata only: a fraction of the bytes for large objects. */
  metadataOnly?: boolean;
  /** Cancels the request (and any wait before a retry). */
  signal?: AbortSignal;
}

export interface WatchOptions extends Omit<ListOptions, 'limit' | 'continue' | 'signal'> {
  resourceVersion: string;
  timeoutSeconds?: number;
  /** Called once the server accepted the watch (200), before any event. */
  onConnected?: () => void;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface ClientOptions {
  /** Client-side rate limit; <= 0 disables it. */
  qps: number;
  burst: number;
  /** Per-request timeout for non-watch calls. */
  timeoutMs: number;
  userAgent: string;
  /** Retries of one throttled request (429, or a GET's 5xx with Retry-After); client-go's default, 10, if unset. */
  maxRetries?: number;
  /** Total time one request may wait between its retries (default 60 s); then the error is thrown. */
  maxRetryWaitMs?: number;
  /** How often credentials are re-read: tokens, exec plugins, client certificate and CA files (default 30 s). */
  credentialRefreshMs?: number;
  /** Where the start and end of a throttling burst are logged (one line each, not one per request). */
  logger?: Pick<Logger, 'warn' | 'info'>;
  /** Environment for HTTPS_PROXY / HTTP_PROXY / NO_PROXY (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Non-watch requests in flight at once across the client (API Priority and Fairness seats); <= 0 or unset: no cap. */
  maxInFlight?: number;
}

/** What the TLS layer presents and trusts; a change rebuilds the connection pools. */
type TlsCredentials = Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>;

export const DEFAULT_MAX_RETRIES = 10;
export const DEFAULT_MAX_RETRY_WAIT_MS = 60_000;
/** Longest single wait a Retry-After can ask for. */
export const MAX_RETRY_AFTER_MS = 30_000;
/** Waits after a 429 that names no Retry-After: 1 s, doubling, at most 8 s. */
const THROTTLED_BASE_DELAY_MS = 1_000;
const THROTTLED_MAX_DELAY_MS = 8_000;
/** A throttling burst ends after this long without a throttled response. */
const THROTTLING_QUIET_MS = 30_000;

/** Retry-After as client-go reads it: whole seconds; anything else is ignored. */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\s*\d{1,6}\s*$/.test(text)) return undefined;
  return Number(text) * 1000;
}

/**
 * How long to wait before retrying a failed request, or undefined to give up.
 * A 429 was refused before the request was processed (API Priority and
 * Fairness, max-in-flight and rate-limiting admission all answer before
 * storage is touched), so every verb may be repeated. A 5xx with Retry-After
 * may come after a write was applied (a timeout answered while the handler
 * ran on), so only reads are repeated then; writes go back to the work queue.
 */
export function retryDelayMs(input: {
  method: string;
  code: number;
  retryAfterMs: number | undefined;
  /** Retries already made. */
  attempt: number;
  /** Time already spent waiting between retries. */
  waitedMs: number;
  maxRetries: number;
  maxRetryWaitMs: number;
}): number | undefined {
  const { method, code, retryAfterMs, attempt } = input;
  if (attempt >= input.maxRetries) return undefined;
  let delay: number;
  if (code === 429) {
    delay = retryAfterMs ?? Math.min(THROTTLED_MAX_DELAY_MS, THROTTLED_BASE_DELAY_MS * 2 ** attempt);
  } else if (code >= 500 && retryAfterMs !== undefined && method === 'GET') {
    delay = retryAfterMs;
  } else {
    return undefined;
  }
  delay = Math.min(delay, MAX_RETRY_AFTER_MS);
  if (input.waitedMs + delay > input.maxRetryWaitMs) return undefined;
  return delay;
}

const sameBytes = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  const bytes = (v: unknown): string =>
    Array.isArray(v) ? v.map(bytes).join('\0') : Buffer.isBuffer(v) ? v.toString('base64') : String(v);
  return bytes(a) === bytes(b);
};

/** One API answer (or transport failure, code '<error>') for the rest_client_* metrics. */
export interface RequestObservation {
  method: string;
  code: string;
  host: string;
  seconds: number;
}

export interface RequestCounts {
  [verb: string]: number;
}

type Query = Record<string, string | number | boolean | undefined>;

const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_WATCH_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';
const DEFAULT_CREDENTIAL_REFRESH_MS = 30_000;

/**
 * A small REST client for the Kubernetes API. client-node 1.4 builds a new
 * https.Agent for every request (no connection reuse, a TLS handshake per
 * call); this client keeps one keep-alive agent for requests and one for
 * watches, takes authentication from client-node's KubeConfig, and applies a
 * client-side rate limit.
 */
export class KubeClient {
  readonly counts: RequestCounts = {};
  private agent: Agent | HttpAgent;
  private watchAgent: Agent | HttpAgent;
  private readonly limiter: TokenBucket;
  private readonly inFlight: InFlightLimit;
  private readonly server: URL;
  private readonly proxy: URL | undefined;
  private tls: TlsCredentials;
  private authHeaders: Record<string, string> = {};
  private authFetchedAt = -Infinity;
  private authRefresh: Promise<Record<string, string>> | undefined;
  private writeGuard: (() => boolean) | undefined;
  /** Aborted by close(): ends waits between retries. */
  private readonly closed = new AbortController();
  private throttling: { since: number; last: number; responses: number } | undefined;
  /** Ordinary requests go here when the server speaks HTTP/2; watches always use watchAgent. */
  private readonly http2: Http2Connection | undefined;
  /** Requests waiting out a Retry-After, released early when their priority level serves another. */
  private readonly throttleWaiters = new ThrottleWaiters();
  private requestObserver: ((observation: RequestObservation) => void) | undefined;

  private constructor(
    private readonly kc: KubeAuth,
    tls: TlsCredentials,
    private readonly options: ClientOptions,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    this.proxy = proxyFor(this.server, cluster.proxyUrl, options.env ?? process.env);
    this.tls = tls;
    [this.agent, this.watchAgent] = this.buildAgents();
    // HTTP/2 for requests as client-go does, unless a proxy is in the way or DISABLE_HTTP2 (client-go's switch) is set.
    if (this.server.protocol === 'https:' && !this.proxy && !(options.env ?? process.env).DISABLE_HTTP2)
      this.http2 = new Http2Connection(this.server.origin, this.tls);
    this.limiter = new TokenBucket(options.qps, options.burst);
    this.inFlight = new InFlightLimit(options.maxInFlight ?? 0);
    // Every request waiting for a Retry-After listens on it.
    setMaxListeners(0, this.closed.signal);
  }

  static async create(kc: KubeAuth, options: ClientOptions): Promise<KubeClient> {
    const opts: RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const client = new KubeClient(kc, tlsCredentials(kc, opts), options);
    client.setAuth(opts);
    return client;
  }

  /** Reports every attempt's answer code and latency (watches: until the response headers). */
  observeRequests(observer: (observation: RequestObservation) => void): void {
    this.requestObserver = observer;
  }

  private noteAnswer(method: string, code: number | undefined, startedAt: number): void {
    this.requestObserver?.({
      method,
      code: code === undefined ? '<error>' : String(code),
      host: this.server.host,
      seconds: (performance.now() - startedAt) / 1000,
    });
  }

  /** Where requests go through, for the start log line (no credentials). */
  get proxyDescription(): string | undefined {
    return this.proxy ? redactProxyUrl(this.proxy) : undefined;
  }

  private buildAgents(): [Agent | HttpAgent, Agent | HttpAgent] {
    const common = { keepAlive: true, keepAliveMsecs: 30_000 };
    if (this.server.protocol !== 'https:') {
      return this.proxy
        ? [new HttpTunnelAgent(this.proxy, common), new HttpTunnelAgent(this.proxy, common)]
        : [new HttpAgent(common), new HttpAgent(common)];
    }
    const requests = { ...common, ...this.tls, maxSockets: 128 };
    const watches = { ...common, ...this.tls };
    return this.proxy
      ? [new HttpsTunnelAgent(this.proxy, requests), new HttpsTunnelAgent(this.proxy, watches)]
      : [new Agent(requests), new Agent(watches)];
  }

  private setAuth(opts: RequestOptions): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (typeof v === 'string' || typeof v === 'number') headers[k] = String(v);
    }
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    this.authHeaders = headers;
    this.authFetchedAt = performance.now();
    return headers;
  }

  /**
   * Authentication headers, re-read periodically so rotated tokens are picked
   * up. Client certificates (from an exec plugin or from files) and the CA are
   * re-read at the same time: when they changed, new connections use them.
   */
  private auth(force = false): Promise<Record<string, string>> {
    const refreshMs = this.options.credentialRefreshMs ?? DEFAULT_CREDENTIAL_REFRESH_MS;
    if (!force && performance.now() - this.authFetchedAt < refreshMs)
      return Promise.resolve(this.authHeaders);
    this.authRefresh ??= this.refreshCredentials().finally(() => (this.authRefresh = undefined));
    return this.authRefresh;
  }

  private async refreshCredentials(): Promise<Record<string, string>> {
    const opts: RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const tls = tlsCredentials(this.kc, opts);
    const changed = (Object.keys({ ...tls, ...this.tls }) as Array<keyof TlsCredentials>).some(
      (k) => !sameBytes(tls[k], this.tls[k]),
    );
    if (changed && !this.closed.signal.aborted) {
      this.tls = tls;
      const old = [this.agent, this.watchAgent];
      [this.agent, this.watchAgent] = this.buildAgents();
      // Requests and watches in flight finish on their connections; idle ones close now, busy ones when freed.
      for (const agent of old) retire(agent);
      this.http2?.renew(tls);
      this.options.logger?.info('API client credentials changed: new connections use them');
    }
    return this.setAuth(opts);
  }

  /** After a 401: re-read credentials (the exec plugin is run again) before the next try. */
  private forgetCredentials(): void {
    this.authFetchedAt = -Infinity;
    forgetExecCredentials(this.kc);
  }

  /** From now on every request but a read is refused while `allowed()` is false (leader election). */
  guardWrites(allowed: () => boolean): void {
    this.writeGuard = allowed;
  }

  writesAllowed(): boolean {
    return this.writeGuard?.() ?? true;
  }

  path(rt: ResourceType, namespace?: string, name?: string, subresource?: string): string {
    let p = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
    if (rt.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
    p += `/${rt.plural}`;
    if (name) p += `/${encodeURIComponent(name)}`;
    if (subresource) p += `/${subresource}`;
    return p;
  }

  private url(path: string, query?: Query): URL {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(query ?? {}))
      if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    return url;
  }

  /**
   * One API call. Throttled answers (429, or 5xx with Retry-After for reads)
   * are retried after the server's Retry-After, within maxRetries and
   * maxRetryWaitMs; a 401 re-reads credentials and tries once more.
   */
  async request<T>(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown; contentType?: string; accept?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const signals = opts.signal ? [opts.signal, this.closed.signal] : [this.closed.signal];
    const url = this.url(path, opts.query);
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const verb = `${method} ${path.includes('/status') ? 'status' : ''}`.trim();
    let waitedMs = 0;
    let reauthenticated = false;
    let releasedEarly = false;
    for (let attempt = 0; ;) {
      if (method !== 'GET' && !this.writesAllowed()) throw new NotLeaderError(method, path);
      await this.limiter.take();
      // Checked again: leadership may have been lost while waiting for a token.
      if (method !== 'GET' && !this.writesAllowed()) throw new NotLeaderError(method, path);
      const aborted = signals.find((s) => s.aborted);
      if (aborted) throw abortReason(aborted);
      this.counts[verb] = (this.counts[verb] ?? 0) + 1;
      const headers: Record<string, string> = {
        ...(await this.auth()),
        Accept: opts.accept ?? 'application/json',
        'User-Agent': this.options.userAgent,
      };
      if (payload) {
        headers['Content-Type'] = opts.contentType ?? 'application/json';
        headers['Content-Length'] = String(payload.length);
      }
      const release = await this.inFlight.acquire();
      let res: Exchange;
      const sentAt = performance.now();
      try {
        res = await this.exchange(url, method, headers, payload, opts.signal);
      } catch (err) {
        this.noteAnswer(method, undefined, sentAt);
        if (!opts.signal?.aborted) markTransportFailure(err);
        throw err;
      } finally {
        release();
      }
      const { statusCode: code, text } = res;
      this.noteAnswer(method, code, sentAt);
      const level = priorityLevelOf(res.headers);
      // Served by its priority level: that level had a seat, so one throttled request may try again now.
      if (code !== 429 && code < 500) this.throttleWaiters.served(level, sentAt, releasedEarly);
      if (code >= 200 && code < 300) {
        this.noteUnthrottled();
        return (text ? parseResponseBody(text, method, path) : undefined) as T;
      }
      const err = toApiError(code, text, method, path, res.headers);
      if (code === 401 && !reauthenticated) {
        // Refused by authentication, before anything ran: safe to repeat with fresh credentials.
        reauthenticated = true;
        this.forgetCredentials();
        continue;
      }
      const delay = retryDelayMs({
        method,
        code,
        retryAfterMs: err.retryAfterMs,
        attempt,
        waitedMs,
        maxRetries: this.options.maxRetries ?? DEFAULT_MAX_RETRIES,
        maxRetryWaitMs: this.options.maxRetryWaitMs ?? DEFAULT_MAX_RETRY_WAIT_MS,
      });
      this.noteThrottled(err, method, path, delay);
      if (delay === undefined) throw err;
      const waitStarted = performance.now();
      releasedEarly = await this.throttleWaiters.wait(level, delay, signals);
      waitedMs += performance.now() - waitStarted;
      attempt++;
    }
  }

  /**
   * Counts a throttled answer (a 429, or any answer with Retry-After) into the current burst, logging only
   * the burst's first; other errors pass.
   */
  private noteThrottled(err: ApiError, method: string, path: string, delayMs: number | undefined): void {
    if (err.code !== 429 && err.retryAfterMs === undefined) return;
    const code = err.code;
    const now = performance.now();
    if (this.throttling && now - this.throttling.last < THROTTLING_QUIET_MS) {
      this.throttling.last = now;
      this.throttling.responses++;
      return;
    }
    this.throttling = { since: now, last: now, responses: 1 };
    this.options.logger?.warn('API server is throttling requests; retrying after its Retry-After', {
      status: code,
      method,
      path,
      ...(delayMs === undefined ? { retry: false } : { retryAfterSeconds: delayMs / 1000 }),
    });
  }

  private noteUnthrottled(): void {
    const burst = this.throttling;
    if (!burst) return;
    const now = performance.now();
    if (now - burst.last < THROTTLING_QUIET_MS) return;
    this.throttling = undefined;
    this.options.logger?.info('API server throttling ended', {
      throttledResponses: burst.responses,
      seconds: Math.round((burst.last - burst.since) / 1000),
    });
  }

  /** One request and its whole answer: over the HTTP/2 connection when there is one, else HTTP/1.1. */
  private async exchange(
    url: URL,
    method: string,
    headers: Record<string, string>,
    payload: Buffer | undefined,
    signal?: AbortSignal,
  ): Promise<Exchange> {
    const timeoutMs = this.options.timeoutMs;
    if (this.http2?.available) {
      try {
        return await this.http2.request(
          method,
          url.pathname + url.search,
          headers,
          payload,
          timeoutMs,
          signal,
        );
      } catch (err) {
        // Not sent: HTTP/1.1 carries this request (and the next ones for a while).
        if (!(err instanceof Http2Unavailable)) throw err;
      }
    }
    const res = await this.send(url, method, headers, payload, this.agent, timeoutMs, signal);
    return { statusCode: res.statusCode ?? 0, headers: res.headers, text: await readBody(res) };
  }

  private send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    payload: Buffer | undefined,
    agent: Agent | HttpAgent,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const doRequest = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = doRequest(
        url,
        { method, headers, agent, timeout: timeoutMs || undefined, signal },
        resolve,
      );
      req.on('timeout', () =>
        req.destroy(new Error(`request timed out after ${timeoutMs} ms: ${method} ${url.pathname}`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async get<T extends KubernetesObject>(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', this.path(rt, namespace, name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  list<T extends KubernetesObject>(rt: ResourceType, opts: ListOptions = {}): Promise<ListResult<T>> {
    return this.request<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }>(
      'GET',
      this.path(rt, opts.namespace),
      {
        query: {
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
          limit: opts.limit,
          continue: opts.continue,
        },
        accept: opts.metadataOnly ? METADATA_ACCEPT : undefined,
        signal: opts.signal,
      },
    ).then((body) => ({
      items: body.items ?? [],
      resourceVersion: body.metadata.resourceVersion,
      continue: body.metadata.continue || undefined,
    }));
  }

  create<T extends KubernetesObject>(
    rt: ResourceType,
    obj: T,
    namespace = obj.metadata?.namespace,
  ): Promise<T> {
    return this.request<T>('POST', this.path(rt, namespace), { body: obj });
  }

  replace<T extends KubernetesObject>(rt: ResourceType, obj: T, subresource?: string): Promise<T> {
    return this.request<T>('PUT', this.path(rt, obj.metadata?.namespace, obj.metadata?.name, subresource), {
      body: obj,
    });
  }

  mergePatch<T extends KubernetesObject>(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    subresource?: string,
  ): Promise<T> {
    return this.request<T>('PATCH', this.path(rt, namespace, name, subresource), {
      body: patch,
      contentType: 'application/merge-patch+json',
    });
  }

  jsonPatch<T extends KubernetesObject>(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    ops: unknown[],
    subresource?: string,
  ): Promise<T> {
    return this.request<T>('PATCH', this.path(rt, namespace, name, subresource), {
      body: ops,
      contentType: 'application/json-patch+json',
    });
  }

  /** Deletes; a missing object is not an error. Preconditions guard against deleting a replaced object. */
  async delete(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: {
      uid?: string;
      resourceVersion?: string;
      propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
    } = {},
  ): Promise<boolean> {
    const preconditions =
      opts.uid || opts.resourceVersion ? { uid: opts.uid, resourceVersion: opts.resourceVersion } : undefined;
    try {
      await this.request('DELETE', this.path(rt, namespace, name), {
        body: {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          preconditions,
          propagationPolicy: opts.propagationPolicy,
        },
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Streams watch events until the server closes the stream (resolves) or the
   * connection fails (rejects). Abort with the signal.
   */
  async watch<T>(
    rt: ResourceType,
    opts: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    await this.limiter.take();
    this.counts.WATCH = (this.counts.WATCH ?? 0) + 1;
    const url = this.url(this.path(rt, opts.namespace), {
      watch: 'true',
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: opts.timeoutSeconds,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
    });
    const headers = {
      ...(await this.auth()),
      Accept: opts.metadataOnly ? METADATA_WATCH_ACCEPT : 'application/json',
      'User-Agent': this.options.userAgent,
    };
    const sentAt = performance.now();
    const res = await this.send(url, 'GET', headers, undefined, this.watchAgent, 0, signal).catch(
      (err: unknown) => {
        this.noteAnswer('WATCH', undefined, sentAt);
        throw err;
      },
    );
    const code = res.statusCode ?? 0;
    this.noteAnswer('WATCH', code, sentAt);
    if (code !== 200) {
      // The informer restarts the watch: a 429's retryAfterMs tells it how long to back off.
      const err = toApiError(code, await readBody(res), 'WATCH', url.pathname, res.headers);
      if (code === 401) this.forgetCredentials();
      this.noteThrottled(err, 'WATCH', url.pathname, err.retryAfterMs);
      throw err;
    }
    opts.onConnected?.();
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      // An exception from onEvent (e.g. an ERROR event) ends the stream with that error.
      let failure: Error | undefined;
      const finish = () => (failure ? reject(failure) : resolve());
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (failure) return;
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (!line) continue;
          try {
            onEvent(JSON.parse(line) as WatchEvent<T>);
          } catch (err) {
            failure = err instanceof Error ? err : new Error(String(err));
            res.destroy();
            return;
          }
        }
      });
      res.on('end', finish);
      res.on('close', () => {
        if (!res.complete && !failure) failure = new Error('watch stream closed before it ended');
        finish();
      });
      res.on('error', (err) => {
        failure ??= err;
        finish();
      });
    });
  }

  /** close() was called: requests fail from now on, so nothing should be retried. */
  get isClosed(): boolean {
    return this.closed.signal.aborted;
  }

  close(): void {
    this.closed.abort(new Error('API client closed'));
    this.http2?.close();
    this.agent.destroy();
    this.watchAgent.destroy();
  }
}

function tlsCredentials(kc: KubeAuth, opts: RequestOptions): TlsCredentials {
  const cluster = kc.getCurrentCluster();
  const tls: TlsCredentials = { ca: opts.ca, cert: opts.cert, key: opts.key };
  if (cluster?.skipTLSVerify) tls.rejectUnauthorized = false;
  if (cluster?.tlsServerName) tls.servername = cluster.tlsServerName;
  return tls;
}

/** Stops an agent from keeping connections: idle ones close now, busy ones once their request ends. */
function retire(agent: Agent | HttpAgent): void {
  // Queued requests still get a freed connection first; then it is closed instead of kept.
  // keepSocketAlive is Node's documented hook, missing from @types/node.
  (agent as { keepSocketAlive?: () => boolean }).keepSocketAlive = () => false;
  for (const sockets of Object.values(agent.freeSockets))
    for (const socket of sockets ?? []) socket.destroy();
}

/**
 * client-node's exec authenticator caches a credential until its
 * expirationTimestamp; after a 401 that credential is known to be bad, so the
 * cache is cleared and the plugin runs again (as client-go does).
 */
function forgetExecCredentials(kc: KubeAuth): void {
  const authenticators = (kc as { authenticators?: unknown }).authenticators;
  if (!Array.isArray(authenticators)) return;
  for (const authenticator of authenticators) {
    const cache = (authenticator as { tokenCache?: unknown } | null)?.tokenCache;
    if (cache && typeof cache === 'object') {
      for (const user of Object.keys(cache)) (cache as Record<string, unknown>)[user] = null;
    }
  }
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

/** JSON.parse errors quote the text they failed on, which may be Secret data: report a fixed message instead. */
function parseResponseBody(text: string, method: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${method} ${path}: the API server sent a response that is not valid JSON`);
  }
}

function toApiError(
  code: number,
  body: string,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
): ApiError {
  let message = body.slice(0, 500) || `HTTP ${code}`;
  let reason: string | undefined;
  try {
    const status = JSON.parse(body) as { message?: string; reason?: string };
    if (status.message) message = status.message;
    reason = status.reason;
  } catch {
    // not a Status object: keep the raw text
  }
  return new ApiError(code, message, reason, method, path, parseRetryAfter(headers['retry-after']));
}
