import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isJsonPatchTestFailure,
  isStaleWrite,
  JSON_PATCH_NOT_APPLICABLE_MESSAGE,
  staleCacheError,
  staleObjectError,
  type JsonPatchOp,
} from './api-errors.js';
import { ApiError } from './kube-client.js';

const guarded: JsonPatchOp[] = [
  { op: 'test', path: '/metadata/resourceVersion', value: '12' },
  { op: 'add', path: '/metadata/finalizers/-', value: 'f' },
];
const unguarded: JsonPatchOp[] = [{ op: 'add', path: '/status', value: {} }];

test('a JSON patch test failure (422) is told apart from validation errors and other codes', () => {
  const cases: Array<{ name: string; err: unknown; ops: JsonPatchOp[]; expected: boolean }> = [
    {
      name: 'kube-apiserver: 422 with the generic message',
      err: new ApiError(422, JSON_PATCH_NOT_APPLICABLE_MESSAGE, 'Invalid'),
      ops: guarded,
      expected: true,
    },
    {
      name: 'a server naming the failed test',
      err: new ApiError(422, 'testing value /metadata/resourceVersion failed: test failed', 'Invalid'),
      ops: guarded,
      expected: true,
    },
    {
      name: 'a path no longer there',
      err: new ApiError(422, 'test operation does not apply: is missing path: /metadata/finalizers/3'),
      ops: guarded,
      expected: true,
    },
    {
      name: 'validation of the patched object',
      err: new ApiError(
        422,
        'App.kappctrl.k14s.io "a" is invalid: metadata.finalizers[0]: Invalid value',
        'Invalid',
      ),
      ops: guarded,
      expected: false,
    },
    {
      name: 'no test op in the patch',
      err: new ApiError(422, JSON_PATCH_NOT_APPLICABLE_MESSAGE, 'Invalid'),
      ops: unguarded,
      expected: false,
    },
    { name: 'a 409', err: new ApiError(409, 'conflict', 'Conflict'), ops: guarded, expected: false },
    {
      name: 'not an API error',
      err: new Error(JSON_PATCH_NOT_APPLICABLE_MESSAGE),
      ops: guarded,
      expected: false,
    },
  ];
  for (const c of cases) assert.equal(isJsonPatchTestFailure(c.err, c.ops), c.expected, c.name);
});

test('stale writes are conflicts, including a translated test failure, but not AlreadyExists', () => {
  const cases: Array<{ name: string; err: unknown; expected: boolean }> = [
    { name: 'conflict', err: new ApiError(409, 'the object has been modified', 'Conflict'), expected: true },
    {
      name: 'translated test failure',
      err: staleObjectError(
        new ApiError(422, JSON_PATCH_NOT_APPLICABLE_MESSAGE, 'Invalid', 'PATCH', '/x'),
        'App a/b',
      ),
      expected: true,
    },
    { name: 'already exists', err: new ApiError(409, 'exists', 'AlreadyExists'), expected: false },
    { name: 'server error', err: new ApiError(500, 'boom'), expected: false },
  ];
  for (const c of cases) assert.equal(isStaleWrite(c.err), c.expected, c.name);
  const translated = staleObjectError(new ApiError(422, 'x', 'Invalid', 'PATCH', '/apis/x'), 'App a/b');
  assert.equal(
    translated.message,
    'App a/b changed since it was cached (JSON patch test failed); reconciling again',
  );
  assert.equal(translated.path, '/apis/x');
});

test('staleCacheError: AlreadyExists and NotFound become a quiet 409; other errors pass through unchanged', () => {
  const alreadyExists = new ApiError(
    409,
    'secrets "x" already exists',
    'AlreadyExists',
    'POST',
    '/api/v1/namespaces/a/secrets',
  );
  const notFound = new ApiError(
    404,
    'secrets "x" not found',
    'NotFound',
    'PUT',
    '/api/v1/namespaces/a/secrets/x',
  );
  const conflict = new ApiError(
    409,
    'the object has been modified',
    'Conflict',
    'PUT',
    '/api/v1/namespaces/a/secrets/x',
  );
  const forbidden = new ApiError(403, 'forbidden', 'Forbidden', 'PUT', '/api/v1/namespaces/a/secrets/x');
  for (const err of [alreadyExists, notFound]) {
    const converted = staleCacheError(err, 'Secret');
    assert.ok(converted instanceof ApiError);
    assert.equal(converted.code, 409);
    assert.ok(isStaleWrite(converted), 'retried like a stale write');
    assert.match(
      converted.message,
      /^Secret changed since it was cached \(secrets "x" .+\); reconciling again$/,
    );
    assert.equal(converted.path, err.path);
  }
  for (const err of [conflict, forbidden, new Error('boom')])
    assert.equal(staleCacheError(err, 'Secret'), err);
});
