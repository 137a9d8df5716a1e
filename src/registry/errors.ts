// The one error type of the registry client. Messages name the image, the
// registry's error codes and messages, the HTTP status and the Node error
// code; never a credential, a token or an Authorization header.

export interface RegistryErrorDetail {
  code: string;
  message: string;
}

export interface RegistryErrorInit {
  /** A registry error code (UNAUTHORIZED, MANIFEST_UNKNOWN, ...) or one of ours (X509, TIMEOUT, ...). */
  code: string;
  /** What went wrong, without the image prefix. */
  reason: string;
  status?: number;
  /** What the client was doing, e.g. "fetching manifest 1.0.0". */
  request?: string;
  /** The image reference as given, once known. */
  image?: string;
  /** `host[:port]` the failing request went to. */
  host?: string;
  /** Every error from the registry's JSON body. */
  errors?: RegistryErrorDetail[];
  retryable?: boolean;
  retryAfterMs?: number;
  cause?: unknown;
}

export class RegistryError extends Error {
  readonly code: string;
  readonly reason: string;
  readonly status?: number;
  readonly request?: string;
  readonly image?: string;
  readonly host?: string;
  readonly errors: RegistryErrorDetail[];
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(init: RegistryErrorInit) {
    const subject = init.image ?? init.host;
    const context = [init.status !== undefined ? `HTTP ${init.status}` : '', init.request ?? '']
      .filter((part) => part !== '')
      .join(' ');
    super(`${subject ? `${subject}: ` : ''}${init.code}: ${init.reason}${context ? ` (${context})` : ''}`, {
      cause: init.cause,
    });
    this.name = 'RegistryError';
    this.code = init.code;
    this.reason = init.reason;
    this.errors = init.errors ?? [];
    this.retryable = init.retryable ?? false;
    if (init.status !== undefined) this.status = init.status;
    if (init.request !== undefined) this.request = init.request;
    if (init.image !== undefined) this.image = init.image;
    if (init.host !== undefined) this.host = init.host;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
  }

  /** The same error, now naming the image it happened for. */
  withImage(image: string): RegistryError {
    return this.image === image ? this : this.copy({ image });
  }

  /** The same error, marked as not worth another retry (its own retries are spent). */
  final(): RegistryError {
    return this.retryable ? this.copy({ retryable: false }) : this;
  }

  private copy(overrides: Partial<Pick<RegistryErrorInit, 'image' | 'retryable'>>): RegistryError {
    const init: RegistryErrorInit = {
      code: this.code,
      reason: this.reason,
      errors: this.errors,
      retryable: this.retryable,
      cause: this.cause,
    };
    if (this.status !== undefined) init.status = this.status;
    if (this.request !== undefined) init.request = this.request;
    if (this.image !== undefined) init.image = this.image;
    if (this.host !== undefined) init.host = this.host;
    if (this.retryAfterMs !== undefined) init.retryAfterMs = this.retryAfterMs;
    return new RegistryError({ ...init, ...overrides });
  }
}

const MAX_TEXT = 300;

/** Single-line, printable, bounded text from a remote party. */
export function sanitizeRemoteText(text: string, max = MAX_TEXT): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Error details from a response body: the distribution format
 * `{"errors":[{"code","message"}]}`, or a token server's `{"details"}` /
 * OAuth2 `{"error","error_description"}`. Empty when the body has none.
 */
export function parseErrorBody(body: Buffer | string): RegistryErrorDetail[] {
  let document: unknown;
  try {
    document = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return [];
  }
  if (!isObject(document)) return [];
  const errors = document['errors'];
  if (Array.isArray(errors)) {
    return errors.filter(isObject).flatMap((e) => {
      const code = typeof e['code'] === 'string' ? sanitizeRemoteText(e['code'], 64) : '';
      const message = typeof e['message'] === 'string' ? sanitizeRemoteText(e['message']) : '';
      return code || message ? [{ code: code || 'UNKNOWN', message }] : [];
    });
  }
  if (typeof document['details'] === 'string')
    return [{ code: '', message: sanitizeRemoteText(document['details']) }];
  if (typeof document['error'] === 'string') {
    const description = document['error_description'];
    return [
      {
        code: sanitizeRemoteText(document['error'], 64),
        message: typeof description === 'string' ? sanitizeRemoteText(description) : '',
      },
    ];
  }
  return [];
}

/** A short quote of a non-JSON body (proxies and TLS front ends answer in text or HTML). */
function plainTextReason(body: Buffer | string): string {
  // Only the start is shown; `[^<>]`, not `[^>]`, so a body of many `<` and no `>` is not quadratic.
  const start = (typeof body === 'string' ? body : body.subarray(0, 4096).toString('utf8')).slice(0, 4096);
  const text = sanitizeRemoteText(start.replace(/<[^<>]*>/g, ' '), 120);
  return text === '' ? 'no error details in the response' : `unexpected response: ${JSON.stringify(text)}`;
}

/** The code a status means when the body gives none. */
export function codeForStatus(status: number): string {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'DENIED';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'UNSUPPORTED';
    case 408:
      return 'TIMEOUT';
    case 429:
      return 'TOOMANYREQUESTS';
    default:
      return status >= 500 ? 'SERVER_ERROR' : `HTTP_${status}`;
  }
}

/** Whether a failed status is worth retrying: 5xx, 408 and 429; never 401, 403, 404. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

function retryAfter(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** A RegistryError for a non-success response; `request` says which (e.g. "fetching manifest 1.0.0"). */
export function errorFromResponse(
  status: number,
  body: Buffer | string,
  context: { host: string; request: string; retryAfter?: string | string[] },
): RegistryError {
  const details = parseErrorBody(body);
  const code = details.find((d) => d.code !== '')?.code ?? codeForStatus(status);
  const errors = details.map((d) => ({ code: d.code || code, message: d.message }));
  const reason =
    errors.length > 0
      ? errors.map((d, i) => (i === 0 ? d.message || 'no message' : `${d.code}: ${d.message}`)).join('; ')
      : plainTextReason(body);
  const init: RegistryErrorInit = {
    code,
    reason,
    status,
    request: context.request,
    host: context.host,
    errors,
    retryable: isRetryableStatus(status),
  };
  const after = retryAfter(context.retryAfter);
  if (after !== undefined) init.retryAfterMs = after;
  return new RegistryError(init);
}

/** Node TLS error codes that mean "the certificate could not be verified". */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

function errorCode(err: unknown): string | undefined {
  if (isObject(err) && typeof err['code'] === 'string') return err['code'];
  return undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A RegistryError for a failure below HTTP: certificate problems become
 * code X509 with Node's message and a hint about caCerts, timeouts TIMEOUT,
 * the rest NETWORK (retryable when transient).
 */
export function errorFromNetwork(err: unknown, host: string): RegistryError {
  if (err instanceof RegistryError) return err;
  const code = errorCode(err);
  const message = sanitizeRemoteText(errorMessage(err));
  if (code !== undefined && CERTIFICATE_CODES.has(code)) {
    return new RegistryError({
      code: 'X509',
      reason:
        `x509: TLS certificate of https://${host} could not be verified: ${message} (${code}); ` +
        `add the CA that signed it to caCerts in the operator configuration` +
        ` (or, for testing only, list "${host}" in dangerousSkipTLSVerify)`,
      host,
      cause: err,
    });
  }
  if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(message)) {
    return new RegistryError({
      code: 'TLS',
      reason:
        `TLS handshake with ${host} failed: ${message}; does the registry serve HTTPS on this port?` +
        ` (a registry that only speaks plain HTTP must be listed in dangerousAllowInsecureRegistries` +
        ` of the operator configuration)`,
      host,
      cause: err,
    });
  }
  if (code === 'ETIMEDOUT' || code === 'TIMEOUT') {
    return new RegistryError({ code: 'TIMEOUT', reason: message, host, retryable: true, cause: err });
  }
  if (isObject(err) && err['name'] === 'AbortError') {
    return new RegistryError({ code: 'ABORTED', reason: 'request aborted', host, cause: err });
  }
  return new RegistryError({
    code: 'NETWORK',
    reason: `${message}${code && !message.includes(code) ? ` (${code})` : ''}`,
    host,
    retryable: code === undefined || RETRYABLE_NETWORK_CODES.has(code),
    cause: err,
  });
}
