import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest, Agent as HttpAgent, type IncomingMessage } from 'node:http';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeAuth } from './kubeconfig.js';
import { TokenBucket } from './rate-limiter.js';

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
}

export interface WatchOptions extends Omit<ListOptions, 'limit' | 'continue'> {
  resourceVersion: string;
  timeoutSeconds?: number;
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
}

export interface RequestCounts {
  [verb: string]: number;
}

type Query = Record<string, string | number | boolean | undefined>;

const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_WATCH_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';
const AUTH_CACHE_MS = 30_000;

/**
 * A small REST client for the Kubernetes API. client-node 1.4 builds a new
 * https.Agent for every request (no connection reuse, a TLS handshake per
 * call); this client keeps one keep-alive agent for requests and one for
 * watches, takes authentication from client-node's KubeConfig, and applies a
 * client-side rate limit.
 */
export class KubeClient {
  readonly counts: RequestCounts = {};
  private readonly agent: Agent | HttpAgent;
  private readonly watchAgent: Agent | HttpAgent;
  private readonly limiter: TokenBucket;
  private readonly server: URL;
  private authHeaders: Record<string, string> = {};
  private authFetchedAt = -Infinity;
  private writeGuard: (() => boolean) | undefined;

  private constructor(
    private readonly kc: KubeAuth,
    tls: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>,
    private readonly options: ClientOptions,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    const secure = this.server.protocol === 'https:';
    const common = { keepAlive: true, keepAliveMsecs: 30_000 };
    this.agent = secure ? new Agent({ ...common, ...tls, maxSockets: 128 }) : new HttpAgent(common);
    this.watchAgent = secure ? new Agent({ ...common, ...tls }) : new HttpAgent(common);
    this.limiter = new TokenBucket(options.qps, options.burst);
  }

  static async create(kc: KubeAuth, options: ClientOptions): Promise<KubeClient> {
    const opts: RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const cluster = kc.getCurrentCluster();
    const tls: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'> = {
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
    };
    if (cluster?.skipTLSVerify) tls.rejectUnauthorized = false;
    if (cluster?.tlsServerName) tls.servername = cluster.tlsServerName;
    return new KubeClient(kc, tls, options);
  }

  /** Authentication headers, refreshed periodically so rotated tokens are picked up. */
  private async auth(): Promise<Record<string, string>> {
    const now = performance.now();
    if (now - this.authFetchedAt < AUTH_CACHE_MS) return this.authHeaders;
    const opts: RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (typeof v === 'string' || typeof v === 'number') headers[k] = String(v);
    }
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    this.authHeaders = headers;
    this.authFetchedAt = now;
    return headers;
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

  async request<T>(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown; contentType?: string; accept?: string } = {},
  ): Promise<T> {
    if (method !== 'GET' && !this.writesAllowed()) throw new NotLeaderError(method, path);
    await this.limiter.take();
    // Checked again: leadership may have been lost while waiting for a token.
    if (method !== 'GET' && !this.writesAllowed()) throw new NotLeaderError(method, path);
    const verb = `${method} ${path.includes('/status') ? 'status' : ''}`.trim();
    this.counts[verb] = (this.counts[verb] ?? 0) + 1;
    const headers: Record<string, string> = {
      ...(await this.auth()),
      Accept: opts.accept ?? 'application/json',
      'User-Agent': this.options.userAgent,
    };
    let payload: Buffer | undefined;
    if (opts.body !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const url = this.url(path, opts.query);
    const res = await this.send(url, method, headers, payload, this.agent, this.options.timeoutMs);
    const text = await readBody(res);
    const code = res.statusCode ?? 0;
    if (code < 200 || code >= 300) throw toApiError(code, text, method, path);
    return (text ? JSON.parse(text) : undefined) as T;
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
      if (payload) req.write(payload);
      req.end();
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
    const res = await this.send(url, 'GET', headers, undefined, this.watchAgent, 0, signal);
    const code = res.statusCode ?? 0;
    if (code !== 200) throw toApiError(code, await readBody(res), 'WATCH', url.pathname);
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

  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
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

function toApiError(code: number, body: string, method: string, path: string): ApiError {
  let message = body.slice(0, 500) || `HTTP ${code}`;
  let reason: string | undefined;
  try {
    const status = JSON.parse(body) as { message?: string; reason?: string };
    if (status.message) message = status.message;
    reason = status.reason;
  } catch {
    // not a Status object: keep the raw text
  }
  return new ApiError(code, message, reason, method, path);
}
