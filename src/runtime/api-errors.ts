import { ApiError, isAlreadyExists, isConflict, isNotFound } from './kube-client.js';

/**
 * What kube-apiserver answers (422, reason Invalid, no details) when a JSON
 * patch cannot be applied to the stored object: a `test` op that does not
 * match, or a path that is no longer there. A validation failure of the
 * patched object is also a 422, but names its fields in the message.
 */
export const JSON_PATCH_NOT_APPLICABLE_MESSAGE =
  'the server rejected our request due to an error in our request';

export interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
}

/**
 * Whether a JSON patch guarded by `test` ops failed because the object is no
 * longer what the cache showed: a conflict in all but status code.
 */
export function isJsonPatchTestFailure(err: unknown, ops: readonly JsonPatchOp[]): boolean {
  if (!(err instanceof ApiError) || err.code !== 422) return false;
  if (!ops.some((o) => o.op === 'test')) return false;
  const message = err.message.toLowerCase();
  return (
    message === JSON_PATCH_NOT_APPLICABLE_MESSAGE ||
    message.includes('test operation') ||
    message.includes('testing value')
  );
}

/**
 * A 409 Conflict standing for a failed `test` op, so every caller that waits
 * for the newer object on a conflict does the same here.
 */
export function staleObjectError(err: ApiError, what: string): ApiError {
  return new ApiError(
    409,
    `${what} changed since it was cached (JSON patch test failed); reconciling again`,
    'Conflict',
    err.method,
    err.path,
  );
}

/** The write was based on a cached object older than the stored one (not an AlreadyExists). */
export function isStaleWrite(err: unknown): boolean {
  return isConflict(err) && !isAlreadyExists(err);
}

/**
 * A create answered AlreadyExists, or an update answered NotFound, means our
 * cache lags the object (typically behind our own previous write, more so
 * after a reconnect): that becomes a 409, which the queue retries quietly like
 * any stale read. Every other error is returned as it is.
 */
export function staleCacheError(err: unknown, what: string): unknown {
  if (isStaleWrite(err) || !(isAlreadyExists(err) || isNotFound(err))) return err;
  const apiErr = err as ApiError;
  return new ApiError(
    409,
    `${what} changed since it was cached (${apiErr.message}); reconciling again`,
    'Conflict',
    apiErr.method,
    apiErr.path,
  );
}
