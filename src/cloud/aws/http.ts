// One bounded HTTP exchange for the AWS endpoints (metadata, STS, ECR): an
// overall deadline, a cap on the response body, and the caller's abort signal.

import http from 'node:http';
import https from 'node:https';

import { trustedCas } from '../http.js';
import type { CloudProxy } from '../proxy.js';

export interface AwsHttpRequest {
  method: 'GET' | 'PUT' | 'POST';
  url: URL;
  headers?: Readonly<Record<string, string>>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal | undefined;
  /** PEM certificates trusted for https in addition to Node's default roots (caCerts of the operator configuration). */
  caCerts?: string | undefined;
  /** httpsProxy and noProxy of the operator configuration; plain-http metadata endpoints never pass through it. */
  proxy?: CloudProxy | undefined;
}

export interface AwsHttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;

/** Error for a failed exchange; `what` names the endpoint in plain words, never a credential. */
export class AwsHttpError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
    this.name = 'AwsHttpError';
  }
}

/** `scheme://host:port/path` without query, user info or fragment: safe for messages. */
export function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export async function awsHttp(request: AwsHttpRequest): Promise<AwsHttpResponse> {
  const deadline = AbortSignal.timeout(request.timeoutMs);
  const signal = request.signal ? AbortSignal.any([request.signal, deadline]) : deadline;
  const where = displayUrl(request.url);
  if (signal.aborted) throw abortError(request, deadline, where);
  const isHttps = request.url.protocol === 'https:';
  let agent: https.Agent | undefined;
  try {
    agent = request.proxy?.agentFor(request.url);
  } catch (error) {
    throw new AwsHttpError(`${where}: ${(error as Error).message}`, false);
  }
  const client = isHttps ? https : http;
  const headers: Record<string, string> = { ...request.headers };
  delete headers.host;
  if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
  return new Promise<AwsHttpResponse>((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    const options: https.RequestOptions = { method: request.method, headers, signal };
    if (agent) options.agent = agent;
    if (isHttps && request.caCerts) options.ca = trustedCas(request.caCerts);
    const req = client.request(request.url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > request.maxBytes) {
          res.destroy();
          req.destroy();
          fail(new AwsHttpError(`${where}: response larger than ${request.maxBytes} bytes`, false));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
      res.on('error', () =>
        fail(signal.aborted ? abortError(request, deadline, where) : connectionError(where)),
      );
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (signal.aborted) fail(abortError(request, deadline, where));
      // A proxy's refusal has no code; its message names the proxy (never its credentials) and the answer.
      else fail(connectionError(where, error.code ?? (agent ? error.message : undefined)));
    });
    req.end(request.body);
  });
}

function abortError(request: AwsHttpRequest, deadline: AbortSignal, where: string): Error {
  if (deadline.aborted && !request.signal?.aborted) {
    return new AwsHttpError(`${where}: no answer within ${request.timeoutMs} ms`, true);
  }
  return new AwsHttpError(`${where}: aborted`, false);
}

function connectionError(where: string, code?: string): AwsHttpError {
  return new AwsHttpError(`${where}: request failed${code ? ` (${code})` : ''}`, false);
}
