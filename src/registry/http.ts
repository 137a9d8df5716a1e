// HTTP(S) for the registry client: TLS trust (extra CA certificates added
// to Node's roots, per-host verification skipping), HTTP proxies (CONNECT
// tunnels for https, absolute-form requests for http) with NO_PROXY-style
// exclusions, idle timeouts (through CONNECT tunnels too), a minimum
// throughput for bodies (throughput.ts), and bounded retries with backoff.
//
// Proxy notes: only `http://` proxies are supported; `user:pass@` in a proxy
// URL becomes a Proxy-Authorization header and is never put in a message.
// Loopback addresses are not exempt from the proxy unless noProxy says so.

import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';

import { errorFromNetwork, isRetryableStatus, RegistryError } from './errors.js';
import { DEFAULT_THROUGHPUT_RULE, ThroughputGuard, type ThroughputRule } from './throughput.js';

export interface TransportOptions {
  /** PEM certificates trusted in addition to Node's default roots. */
  caCerts?: string;
  /** `host` (any port) or `host:port` entries, as a list or a comma-separated string. */
  dangerousSkipTLSVerify?: string | readonly string[];
  /** Proxy for `http://` requests, e.g. `http://proxy:3128`. */
  httpProxy?: string;
  /** Proxy for `https://` requests (tunnelled with CONNECT). */
  httpsProxy?: string;
  /** Comma-separated exclusions: `*`, `host`, `.suffix`, `*.suffix`, `host:port`, IPs and CIDRs. */
  noProxy?: string;
  /** Registries (`host` or `host:port`) reached over plain http instead of https. */
  plainHttp?: string | readonly string[];
  /** Socket idle timeout per request, connect included. */
  timeoutMs?: number;
  /** Minimum rate of response bodies (default DEFAULT_THROUGHPUT_RULE). */
  throughput?: Partial<ThroughputRule>;
  userAgent?: string;
}

export interface SendOptions {
  method?: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  body?: string | Buffer;
  signal?: AbortSignal;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_USER_AGENT = 'regcred-operator';

function listOption(value: string | readonly string[] | undefined): string[] {
  const items = typeof value === 'string' ? value.split(',') : (value ?? []);
  return items.map((item) => item.trim().toLowerCase()).filter((item) => item !== '');
}

/** Hostname without IPv6 brackets, as sockets want it. */
function bareHostname(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

function effectivePort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** Whether `url` matches a `host` (any port) or `host:port` entry. */
export function matchesAuthority(entries: readonly string[], url: URL): boolean {
  const host = url.hostname.toLowerCase();
  const port = String(effectivePort(url));
  return entries.some((entry) => {
    const bracketed = entry.startsWith('[');
    const colon = bracketed ? entry.indexOf(']:') + 1 : entry.lastIndexOf(':');
    if (colon <= 0) return entry === host;
    return entry.slice(0, colon) === host && entry.slice(colon + 1) === port;
  });
}

function validateCaCerts(pem: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('caCerts: no PEM certificate (-----BEGIN CERTIFICATE-----) found');
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch {
      throw new Error(`caCerts: certificate #${i + 1} is not a valid PEM certificate`);
    }
  });
  return blocks.join('\n');
}

interface Proxy {
  hostname: string;
  port: number;
  /** `http://host:port`, for messages: never the credentials. */
  display: string;
  authorization?: string;
}

/**
 * The proxy URL an operator configuration key names (`http://[user:pass@]host:port`; no scheme means
 * http://), undefined when empty. Throws naming the key, never its value.
 */
export function proxyUrlOption(
  option: 'httpProxy' | 'httpsProxy',
  value: string | undefined,
): URL | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value.trim()) ? value.trim() : `http://${value.trim()}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${option}: not a valid URL`);
  }
  if (url.protocol !== 'http:') throw new Error(`${option}: only http:// proxies are supported`);
  return url;
}

function parseProxy(option: 'httpProxy' | 'httpsProxy', value: string | undefined): Proxy | undefined {
  const url = proxyUrlOption(option, value);
  if (!url) return undefined;
  const proxy: Proxy = {
    hostname: bareHostname(url),
    port: effectivePort(url),
    display: `http://${url.host}`,
  };
  if (url.username !== '' || url.password !== '') {
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    proxy.authorization = `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
  }
  return proxy;
}

/** NO_PROXY semantics close to Go's net/http/httpproxy (without the implicit loopback exemption). */
export class NoProxy {
  private all = false;
  private readonly blocks = new BlockList();
  private readonly ips = new Set<string>();
  private readonly ipPorts = new Set<string>();
  private readonly domains: Array<{ suffix: string; matchHost: boolean; port?: string }> = [];

  constructor(value: string | undefined) {
    for (const raw of listOption(value?.replace(/\s+/g, ','))) {
      if (raw === '*') {
        this.all = true;
        continue;
      }
      const slash = raw.indexOf('/');
      if (slash !== -1) {
        const address = raw.slice(0, slash);
        const prefix = Number(raw.slice(slash + 1));
        const family = isIP(address);
        if (family !== 0 && Number.isInteger(prefix)) {
          this.blocks.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
        }
        continue;
      }
      const unbracketed = raw.replace(/^\[(.*)\]$/, '$1');
      if (isIP(unbracketed) !== 0) {
        this.ips.add(unbracketed);
        continue;
      }
      let host = raw;
      let port: string | undefined;
      const colon = raw.lastIndexOf(':');
      if (colon !== -1 && !raw.endsWith(']')) {
        host = raw.slice(0, colon);
        port = raw.slice(colon + 1);
        const bare = host.replace(/^\[(.*)\]$/, '$1');
        if (isIP(bare) !== 0) {
          this.ipPorts.add(`${bare} ${port}`);
          continue;
        }
      }
      if (host.startsWith('*.')) host = host.slice(1);
      const matchHost = !host.startsWith('.');
      const entry: { suffix: string; matchHost: boolean; port?: string } = {
        suffix: matchHost ? `.${host}` : host,
        matchHost,
      };
      if (port !== undefined) entry.port = port;
      this.domains.push(entry);
    }
  }

  matches(url: URL): boolean {
    if (this.all) return true;
    const host = bareHostname(url).toLowerCase();
    const port = String(effectivePort(url));
    const family = isIP(host);
    if (family !== 0) {
      return (
        this.ips.has(host) ||
        this.ipPorts.has(`${host} ${port}`) ||
        this.blocks.check(host, family === 6 ? 'ipv6' : 'ipv4')
      );
    }
    return this.domains.some((d) => {
      if (d.port !== undefined && d.port !== port) return false;
      return (d.matchHost && `.${host}` === d.suffix) || host.endsWith(d.suffix);
    });
  }
}

export class HttpTransport {
  private readonly ca: string[] | undefined;
  private readonly skipVerify: string[];
  private readonly plainHttp: string[];
  private readonly httpProxy: Proxy | undefined;
  private readonly httpsProxy: Proxy | undefined;
  private readonly noProxy: NoProxy;
  readonly timeoutMs: number;
  readonly throughput: ThroughputRule;
  private readonly userAgent: string;
  private readonly secureContext: tls.SecureContext | undefined;
  private readonly verifyingAgent: https.Agent;
  private readonly skippingAgent: https.Agent;
  private readonly plainAgent: http.Agent;

  /** Throws on invalid options (bad PEM, bad proxy URL), naming the option, never its value. */
  constructor(options: TransportOptions = {}) {
    this.ca = options.caCerts?.trim()
      ? [...tls.rootCertificates, validateCaCerts(options.caCerts)]
      : undefined;
    this.skipVerify = listOption(options.dangerousSkipTLSVerify);
    this.plainHttp = listOption(options.plainHttp);
    this.httpProxy = parseProxy('httpProxy', options.httpProxy);
    this.httpsProxy = parseProxy('httpsProxy', options.httpsProxy);
    this.noProxy = new NoProxy(options.noProxy);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.throughput = { ...DEFAULT_THROUGHPUT_RULE, ...options.throughput };
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    // One TLS context for the extra CAs: with `ca` on the agent, Node builds a new context holding
    // every root certificate per connection (hundreds of KB each; hundreds of MB during a registry outage).
    this.secureContext = this.ca ? tls.createSecureContext({ ca: this.ca }) : undefined;
    const agentOptions: https.AgentOptions = { keepAlive: true, maxSockets: 16 };
    if (this.secureContext) agentOptions.secureContext = this.secureContext;
    this.verifyingAgent = new https.Agent({ ...agentOptions, rejectUnauthorized: true });
    this.skippingAgent = new https.Agent({ ...agentOptions, rejectUnauthorized: false });
    this.plainAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  /** `https://host[:port]`, or `http://` for registries listed in plainHttp. */
  baseUrl(authority: string): URL {
    const url = new URL(`https://${authority}`);
    return matchesAuthority(this.plainHttp, url) ? new URL(`http://${authority}`) : url;
  }

  /** Whether a plain-http URL was explicitly allowed (credentials may go there). */
  allowsPlainHttp(url: URL): boolean {
    return url.protocol === 'http:' && matchesAuthority(this.plainHttp, new URL(`https://${url.host}`));
  }

  skipsTLSVerify(url: URL): boolean {
    return url.protocol === 'https:' && matchesAuthority(this.skipVerify, url);
  }

  private proxyFor(url: URL): Proxy | undefined {
    const proxy = url.protocol === 'https:' ? this.httpsProxy : this.httpProxy;
    if (!proxy || this.noProxy.matches(url)) return undefined;
    return proxy;
  }

  /**
   * One request, no redirects followed, no retries. Resolves with the
   * response (body unread); failures below HTTP reject with a RegistryError.
   */
  async send(url: URL, options: SendOptions = {}): Promise<http.IncomingMessage> {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new RegistryError({
        code: 'UNSUPPORTED',
        reason: `unsupported URL scheme ${url.protocol}`,
        host: url.host,
      });
    }
    const isHttps = url.protocol === 'https:';
    const hostname = bareHostname(url);
    const port = effectivePort(url);
    const headers: Record<string, string> = { 'User-Agent': this.userAgent, ...options.headers };
    const proxy = this.proxyFor(url);
    const base: http.RequestOptions = {
      method: options.method ?? 'GET',
      timeout: this.timeoutMs,
    };
    if (options.signal) base.signal = options.signal;

    let request: http.ClientRequest;
    if (!proxy) {
      const direct: https.RequestOptions = {
        ...base,
        host: hostname,
        port,
        path: `${url.pathname}${url.search}`,
        headers,
      };
      if (isHttps) {
        direct.agent = this.skipsTLSVerify(url) ? this.skippingAgent : this.verifyingAgent;
        request = https.request(direct);
      } else {
        direct.agent = this.plainAgent;
        request = http.request(direct);
      }
    } else if (!isHttps) {
      const proxyHeaders: Record<string, string> = { ...headers, Host: url.host };
      if (proxy.authorization) proxyHeaders['Proxy-Authorization'] = proxy.authorization;
      request = http.request({
        ...base,
        host: proxy.hostname,
        port: proxy.port,
        path: url.href,
        headers: proxyHeaders,
        agent: this.plainAgent,
      });
    } else {
      const socket = await this.tunnel(proxy, url, options.signal);
      const tlsOptions: tls.ConnectionOptions = {
        socket,
        host: hostname,
        rejectUnauthorized: !this.skipsTLSVerify(url),
      };
      if (isIP(hostname) === 0) tlsOptions.servername = hostname;
      if (this.secureContext) tlsOptions.secureContext = this.secureContext;
      const tlsSocket = tls.connect(tlsOptions);
      // The request's own `timeout` does not reach a socket it did not open:
      // without this, a registry behind the tunnel could stall us forever.
      tlsSocket.setTimeout(this.timeoutMs, () => tlsSocket.destroy(this.idleTimeout(url.host)));
      request = http.request({
        ...base,
        host: hostname,
        port,
        path: `${url.pathname}${url.search}`,
        headers: { ...headers, Host: url.host },
        createConnection: () => tlsSocket,
      });
    }

    return new Promise((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', (err) => reject(errorFromNetwork(err, url.host)));
      request.on('timeout', () => request.destroy(this.idleTimeout(url.host)));
      request.end(options.body);
    });
  }

  private idleTimeout(host: string): Error {
    return Object.assign(new Error(`no data from ${host} for ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' });
  }

  private tunnel(proxy: Proxy, url: URL, signal: AbortSignal | undefined): Promise<Socket> {
    const target = `${url.hostname}:${effectivePort(url)}`;
    const headers: Record<string, string> = { Host: target, 'User-Agent': this.userAgent };
    if (proxy.authorization) headers['Proxy-Authorization'] = proxy.authorization;
    const options: http.RequestOptions = {
      host: proxy.hostname,
      port: proxy.port,
      method: 'CONNECT',
      path: target,
      headers,
      timeout: this.timeoutMs,
      agent: false,
    };
    if (signal) options.signal = signal;
    return new Promise((resolve, reject) => {
      const request = http.request(options);
      request.once('connect', (response, socket, head) => {
        if (response.statusCode !== 200) {
          socket.destroy();
          const status = response.statusCode ?? 0;
          reject(
            new RegistryError({
              code: 'PROXY',
              reason: `proxy ${proxy.display} refused CONNECT to ${target}`,
              status,
              host: url.host,
              retryable: isRetryableStatus(status),
            }),
          );
          return;
        }
        socket.setTimeout(0);
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      request.once('error', (err) => {
        const wrapped = errorFromNetwork(err, url.host);
        reject(
          new RegistryError({
            code: wrapped.code,
            reason: `via proxy ${proxy.display}: ${wrapped.reason}`,
            host: url.host,
            retryable: wrapped.retryable,
            cause: err,
          }),
        );
      });
      request.on('timeout', () =>
        request.destroy(
          Object.assign(new Error(`proxy ${proxy.display} did not answer for ${this.timeoutMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        ),
      );
      request.end();
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.verifyingAgent.destroy();
    this.skippingAgent.destroy();
    this.plainAgent.destroy();
  }
}

export interface BodyContext {
  host: string;
  request: string;
  /** Minimum rate; a slower body is destroyed with TOO_SLOW. */
  throughput?: ThroughputRule;
}

/**
 * Watches the rate of a body being read: below `rule`, the response (and its
 * socket) is destroyed with a TOO_SLOW error, which the reader then throws.
 * Call stop() once the body is read.
 */
export function guardBody(
  response: http.IncomingMessage,
  rule: ThroughputRule | undefined,
  context: { host: string; request: string },
): { add(bytes: number): void; stop(): void } {
  if (!rule) return { add: () => undefined, stop: () => undefined };
  return new ThroughputGuard(rule, (reason) =>
    response.destroy(
      new RegistryError({ code: 'TOO_SLOW', reason, host: context.host, request: context.request }),
    ),
  );
}

/**
 * Reads a whole response body, failing with TOO_LARGE past `limit` bytes,
 * TOO_SLOW below the throughput rule, and with a retryable NETWORK/TIMEOUT
 * error when the stream breaks.
 */
export async function readBody(
  response: http.IncomingMessage,
  limit: number,
  context: BodyContext,
): Promise<Buffer> {
  const declared = Number(response.headers['content-length']);
  const tooLarge = () =>
    new RegistryError({
      code: 'TOO_LARGE',
      reason: `response larger than the limit of ${limit} bytes`,
      host: context.host,
      request: context.request,
    });
  if (Number.isFinite(declared) && declared > limit) {
    response.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const guard = guardBody(response, context.throughput, context);
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      guard.add(chunk.length);
      size += chunk.length;
      if (size > limit) {
        response.destroy();
        throw tooLarge();
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw errorFromNetwork(err, context.host);
  } finally {
    guard.stop();
  }
  return Buffer.concat(chunks);
}

/**
 * What arrives of a body we only quote (an error response) within `limit`
 * bytes and `withinMs`; then the response is destroyed rather than read on.
 * Never rejects.
 */
export async function readSome(
  response: http.IncomingMessage,
  limit: number,
  withinMs: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const timer = setTimeout(() => response.destroy(), withinMs);
  timer.unref();
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      chunks.push(chunk.subarray(0, limit - size));
      size += chunk.length;
      if (size >= limit) break;
    }
  } catch {
    // keep what arrived
  } finally {
    clearTimeout(timer);
    if (!response.complete) discard(response);
  }
  return Buffer.concat(chunks);
}

/**
 * Throws away a response whose body is not wanted by destroying its socket:
 * draining it would let a server keep the connection (and us) busy with an
 * endless or trickling body.
 */
export function discard(response: http.IncomingMessage): void {
  response.on('error', () => undefined);
  // A body that has fully arrived costs nothing to finish, and keeps the connection reusable.
  if (response.complete) response.resume();
  else response.destroy();
}

export interface RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  signal?: AbortSignal;
  onRetry?: (err: RegistryError, attempt: number, delayMs: number) => void;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 3, baseDelayMs: 250, maxDelayMs: 5_000 };

/** Runs `fn` again after retryable RegistryErrors (5xx, 408, 429, network), with jittered exponential backoff. */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof RegistryError) || !err.retryable || attempt >= options.retries) throw err;
      if (options.signal?.aborted) throw err;
      const backoff = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
      const delay =
        err.retryAfterMs !== undefined
          ? Math.min(err.retryAfterMs, options.maxDelayMs)
          : Math.round(backoff / 2 + (Math.random() * backoff) / 2);
      options.onRetry?.(err, attempt + 1, delay);
      try {
        await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined);
      } catch {
        throw err;
      }
    }
  }
}
