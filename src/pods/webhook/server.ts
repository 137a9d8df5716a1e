// The HTTPS server of the Pod admission webhook. Every replica runs one (it
// only reads caches); the serving certificate is swapped in place when the
// Secret changes. Whatever goes wrong, the Pod is admitted unchanged: the
// API server would do the same after the timeout (failurePolicy Ignore), only
// later.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import {
  admissionResponse,
  decidePod,
  parseAdmissionReview,
  type AdmissionContext,
  type PodCreation,
  type PolicyView,
} from '../admission.js';
import type { NamespaceView } from '../policy-selection.js';
import { domainMetrics, type AdmissionResult } from '../../runtime/domain-metrics.js';
import type { Logger } from '../../runtime/logger.js';
import { errorMessage } from '../../runtime/work-queue.js';

/** The API server's own limit on a request body; a Pod never comes bigger. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;
/** The API server gives up after 2 s; a client still sending after this is cut off. */
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
const KEEP_ALIVE_TIMEOUT_MS = 60_000;
/** Budget of a live read of a namespace or ServiceAccount the caches do not hold yet. */
const LIVE_READ_TIMEOUT_MS = 1_000;

/** What the handler reads: the caches, and live reads for objects created an instant ago. */
export interface AdmissionSource {
  operatorNamespace: string;
  /** Whether every cache the decision reads has listed once. */
  synced(): boolean;
  policies(): readonly PolicyView[];
  namespace(name: string): NamespaceView | undefined;
  serviceAccountLabels(namespace: string, name: string): Record<string, string> | undefined;
  /** Live reads; undefined when the object does not exist. */
  readNamespace(name: string, signal: AbortSignal): Promise<NamespaceView | undefined>;
  readServiceAccountLabels(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Record<string, string> | undefined>;
}

export interface WebhookServerOptions {
  port: number;
  host: string;
  /** The path the webhook configuration calls; other paths answer 404. */
  path: string;
  source: AdmissionSource;
  logger: Logger;
}

interface Answer {
  status: number;
  body: unknown;
  result: AdmissionResult;
}

export class WebhookServer {
  private readonly server: Server;
  private certificate: { cert: string; key: string } | undefined;
  /** Live reads in flight, shared by concurrent requests for the same object. */
  private readonly pendingReads = new Map<string, Promise<unknown>>();

  constructor(private readonly options: WebhookServerOptions) {
    // No certificate yet: handshakes fail (the API server admits Pods unchanged) until the Secret is read.
    this.server = createServer({ minVersion: 'TLSv1.2' }, (req, res) => void this.handle(req, res));
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.server.headersTimeout = HEADERS_TIMEOUT_MS;
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.server.on('tlsClientError', (err) =>
      options.logger.debug('webhook TLS handshake failed', { error: errorMessage(err) }),
    );
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new Error(
                `webhook port ${this.options.port} is in use: choose another with --webhook-port, or 0 to turn the webhook off`,
                { cause: err },
              )
            : err,
        );
      this.server.once('error', failed);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', failed);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  /** Whether a certificate is being served. */
  hasCertificate(): boolean {
    return this.certificate !== undefined;
  }

  /**
   * Serves this certificate from the next handshake on (connections already
   * open keep theirs). A pair that does not load is refused and the previous
   * one kept.
   */
  useCertificate(cert: string, key: string): boolean {
    if (this.certificate?.cert === cert && this.certificate.key === key) return false;
    try {
      createSecureContext({ cert, key });
    } catch (err) {
      this.options.logger.error('webhook certificate in the Secret does not load; keeping the one served', {
        error: errorMessage(err),
      });
      return false;
    }
    this.server.setSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    this.certificate = { cert, key };
    this.options.logger.info('webhook serving certificate loaded');
    return true;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    const path = url.split('?', 1)[0];
    if (path !== this.options.path) return this.reply(res, 404, { message: 'not found' });
    if (req.method !== 'POST') return this.reply(res, 405, { message: 'POST an AdmissionReview' });
    let body: Buffer;
    try {
      body = await readBody(req, MAX_REVIEW_BYTES);
    } catch (err) {
      domainMetrics.webhookAdmission('error', 0);
      this.options.logger.warn('webhook request not read', { error: errorMessage(err) });
      return this.reply(res, err instanceof TooLarge ? 413 : 400, { message: errorMessage(err) });
    }
    const started = performance.now();
    const answer = await this.answer(body);
    this.reply(res, answer.status, answer.body);
    domainMetrics.webhookAdmission(answer.result, (performance.now() - started) / 1000);
  }

  /** The answer to one review body; never throws. */
  async answer(body: Buffer): Promise<Answer> {
    let uid: string | undefined;
    try {
      const parsed = parseAdmissionReview(JSON.parse(body.toString('utf8')) as unknown);
      if (parsed.kind === 'invalid') {
        this.options.logger.warn('webhook request is not an AdmissionReview v1', { reason: parsed.reason });
        return { status: 400, body: { message: parsed.reason }, result: 'error' };
      }
      uid = parsed.kind === 'ignore' ? parsed.uid : parsed.pod.uid;
      if (parsed.kind === 'ignore') return { status: 200, body: admissionResponse(uid), result: 'skipped' };
      const pod = parsed.pod;
      if (!this.options.source.synced()) {
        this.options.logger.warn('webhook admitted a Pod unchanged: caches not synced yet', {
          namespace: pod.namespace,
        });
        return { status: 200, body: admissionResponse(uid), result: 'error' };
      }
      const decision = decidePod(pod, await this.context(pod));
      if (decision.result === 'skipped')
        return { status: 200, body: admissionResponse(uid), result: 'skipped' };
      this.options.logger.debug('webhook added imagePullSecrets to a Pod', {
        namespace: pod.namespace,
        serviceAccount: pod.serviceAccountName,
        added: decision.secretNames,
      });
      return { status: 200, body: admissionResponse(uid, decision.patch), result: 'mutated' };
    } catch (err) {
      this.options.logger.error('webhook admitted a Pod unchanged after an error', {
        error: errorMessage(err),
      });
      if (uid === undefined)
        return { status: 400, body: { message: 'request not understood' }, result: 'error' };
      return { status: 200, body: admissionResponse(uid), result: 'error' };
    }
  }

  /**
   * The caches first; a namespace or ServiceAccount they do not hold yet was
   * created an instant ago (the Pod races it), so it is read live, within a
   * short budget. A ServiceAccount is read only when a policy's
   * serviceAccountSelector could tell it apart from one without labels.
   */
  private async context(pod: PodCreation): Promise<AdmissionContext> {
    const source = this.options.source;
    const policies = source.policies();
    const base = { policies, operatorNamespace: source.operatorNamespace };
    if (policies.length === 0) return { ...base, namespace: undefined, serviceAccountLabels: undefined };
    const namespace =
      source.namespace(pod.namespace) ??
      (await this.liveRead(`ns/${pod.namespace}`, (signal) => source.readNamespace(pod.namespace, signal)));
    let serviceAccountLabels = source.serviceAccountLabels(pod.namespace, pod.serviceAccountName);
    if (!serviceAccountLabels && namespace && policies.some((p) => hasLabelSelector(p))) {
      serviceAccountLabels = await this.liveRead(`sa/${pod.namespace}/${pod.serviceAccountName}`, (signal) =>
        source.readServiceAccountLabels(pod.namespace, pod.serviceAccountName, signal),
      );
    }
    return { ...base, namespace, serviceAccountLabels };
  }

  private async liveRead<T>(key: string, read: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    let pending = this.pendingReads.get(key) as Promise<T | undefined> | undefined;
    if (!pending) {
      pending = read(AbortSignal.timeout(LIVE_READ_TIMEOUT_MS))
        .catch((err: unknown) => {
          this.options.logger.warn('webhook could not read an object the caches do not hold yet', {
            object: key,
            error: errorMessage(err),
          });
          return undefined;
        })
        .finally(() => this.pendingReads.delete(key));
      this.pendingReads.set(key, pending);
    }
    return pending;
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  address(): AddressInfo | undefined {
    return (this.server.address() as AddressInfo | null) ?? undefined;
  }

  /** Stops accepting; answers in flight get up to the API server's timeout, then connections are cut. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const cut = setTimeout(() => this.server.closeAllConnections(), 2_000);
    await closed;
    clearTimeout(cut);
  }
}

function hasLabelSelector(policy: PolicyView): boolean {
  const selector = policy.spec?.serviceAccountSelector;
  return (
    !!selector &&
    ((selector.matchExpressions?.length ?? 0) > 0 || Object.keys(selector.matchLabels ?? {}).length > 0)
  );
}

class TooLarge extends Error {}

/** The whole body, or an error past `limit` bytes (the connection is then closed). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new TooLarge(`request body over ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new TooLarge(`request body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
  });
}
