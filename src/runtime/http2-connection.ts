import {
  connect,
  constants,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';

/** A whole answer: status, headers and body text. */
export interface Exchange {
  statusCode: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** The request was never sent on HTTP/2 (no connection could be made): it may go over HTTP/1.1 instead. */
export class Http2Unavailable extends Error {
  constructor(cause: unknown) {
    super(`HTTP/2 connection unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'Http2Unavailable';
  }
}

/** After a failed HTTP/2 connect, requests use HTTP/1.1 for this long before HTTP/2 is tried again. */
const RETRY_HTTP2_AFTER_MS = 30_000;
/** A request that timed out pings its connection; no answer within this long and the connection is dropped. */
const PING_TIMEOUT_MS = 5_000;

/**
 * One multiplexed HTTP/2 connection to the API server for ordinary requests,
 * as client-go uses by default: every request is a stream on the same TLS
 * connection, which costs the client about a third less CPU per request than
 * a pool of HTTP/1.1 keep-alive sockets (and the server fewer connections).
 *
 * Connected lazily; a connection that closes, fails or is told GOAWAY is
 * replaced by the next request. If no HTTP/2 connection can be made (the
 * server or something in between speaks only HTTP/1.1, or the server is
 * down), `request` throws Http2Unavailable before anything is sent and the
 * caller uses HTTP/1.1; HTTP/2 is tried again 30 s later.
 */
export class Http2Connection {
  private session: ClientHttp2Session | undefined;
  private connecting: Promise<ClientHttp2Session> | undefined;
  private unavailableUntil = -Infinity;

  constructor(
    private readonly origin: string,
    private tls: SecureClientSessionOptions,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** False while HTTP/2 is known not to work (callers then go straight to HTTP/1.1). */
  get available(): boolean {
    return this.now() >= this.unavailableUntil;
  }

  /** New TLS credentials: streams in flight finish on the old connection, new ones use a new connection. */
  renew(tls: SecureClientSessionOptions): void {
    this.tls = tls;
    this.session?.close();
    this.session = undefined;
    this.connecting = undefined;
  }

  close(): void {
    this.session?.destroy();
    this.session = undefined;
    this.connecting = undefined;
  }

  private connected(): Promise<ClientHttp2Session> {
    const live = this.session;
    if (live && !live.closed && !live.destroyed) return Promise.resolve(live);
    this.connecting ??= new Promise<ClientHttp2Session>((resolve, reject) => {
      const session = connect(this.origin, { ...this.tls, ALPNProtocols: ['h2'] });
      const forget = () => {
        if (this.session === session) this.session = undefined;
        if (this.connecting === pending) this.connecting = undefined;
      };
      // A session error is also raised on its streams; without a listener it would end the process.
      session.on('error', forget);
      session.on('goaway', forget);
      session.on('close', forget);
      session.once('connect', () => {
        session.off('close', failed);
        session.off('error', failed);
        this.session = session;
        if (this.connecting === pending) this.connecting = undefined;
        resolve(session);
      });
      const failed = (err?: unknown) => {
        forget();
        session.destroy();
        reject(new Http2Unavailable(err ?? new Error('connection closed before it was established')));
      };
      session.once('error', failed);
      session.once('close', failed);
    });
    const pending = this.connecting;
    return pending;
  }

  /**
   * Sends one request and reads the whole answer. Throws Http2Unavailable
   * when the request was not sent (no connection could be made); any other
   * error may come after the server received it.
   */
  async request(
    method: string,
    pathAndQuery: string,
    headers: Record<string, string>,
    payload: Buffer | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Exchange> {
    let session: ClientHttp2Session;
    try {
      session = await this.connected();
    } catch (err) {
      this.unavailableUntil = this.now() + RETRY_HTTP2_AFTER_MS;
      throw err instanceof Http2Unavailable ? err : new Http2Unavailable(err);
    }
    // Past the server's SETTINGS_MAX_CONCURRENT_STREAMS, nghttp2 holds new streams until others end.
    const stream = session.request(
      { ...lowercaseNames(headers), ':method': method, ':path': pathAndQuery },
      { endStream: payload === undefined, ...(signal ? { signal } : {}) },
    );
    return new Promise<Exchange>((resolve, reject) => {
      let statusCode = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      stream.on('response', (h) => {
        statusCode = Number(h[':status']);
        responseHeaders = h;
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (settled) return;
        // Ended without response headers: the connection went away under the stream.
        if (statusCode === 0) {
          fail(new Error('stream ended without an answer'));
          return;
        }
        settled = true;
        resolve({ statusCode, headers: responseHeaders, text: Buffer.concat(chunks).toString('utf8') });
      });
      stream.on('error', (err: Error) => fail(err));
      stream.on('close', () => {
        if (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR)
          fail(new Error(`stream reset (HTTP/2 error code ${stream.rstCode})`));
        else fail(new Error('stream closed before the answer ended'));
      });
      if (timeoutMs > 0) {
        stream.setTimeout(timeoutMs, () => {
          fail(new Error(`request timed out after ${timeoutMs} ms: ${method} ${pathAndQuery.split('?')[0]}`));
          stream.close(constants.NGHTTP2_CANCEL);
          this.checkAlive(session);
        });
      }
      if (payload !== undefined) stream.end(payload);
    });
  }

  /** A connection that does not answer a ping in time is dead (no RST ever came): drop it. */
  private checkAlive(session: ClientHttp2Session): void {
    if (session.closed || session.destroyed) return;
    const timer = setTimeout(() => session.destroy(), PING_TIMEOUT_MS);
    timer.unref();
    const sent = session.ping((err) => {
      clearTimeout(timer);
      if (err) session.destroy();
    });
    if (!sent) clearTimeout(timer);
  }
}

/** HTTP/2 header names are lowercase. */
function lowercaseNames(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}
