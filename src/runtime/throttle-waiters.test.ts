import assert from 'node:assert/strict';
import { test } from 'node:test';
import { priorityLevelOf, ThrottleWaiters } from './throttle-waiters.js';

/** Which of the named waits have ended (early or by timer) after a turn of the event loop. */
async function ended(waits: Record<string, Promise<boolean>>): Promise<Record<string, boolean | 'waiting'>> {
  const out: Record<string, boolean | 'waiting'> = {};
  for (const [name, wait] of Object.entries(waits)) {
    out[name] = 'waiting';
    wait.then(
      (early) => (out[name] = early),
      () => undefined,
    );
  }
  await new Promise((r) => setImmediate(r));
  return out;
}

test('a served request releases the longest waiter of its own level only, one per served request', async () => {
  const cases: Array<{ name: string; served: string[]; want: Record<string, boolean | 'waiting'> }> = [
    { name: 'nothing served', served: [], want: { a1: 'waiting', a2: 'waiting', b1: 'waiting' } },
    { name: 'one of level a', served: ['a'], want: { a1: true, a2: 'waiting', b1: 'waiting' } },
    { name: 'two of level a', served: ['a', 'a'], want: { a1: true, a2: true, b1: 'waiting' } },
    { name: 'one of level b', served: ['b'], want: { a1: 'waiting', a2: 'waiting', b1: true } },
    { name: 'another level', served: ['c', ''], want: { a1: 'waiting', a2: 'waiting', b1: 'waiting' } },
  ];
  for (const c of cases) {
    let clock = 100;
    const waiters = new ThrottleWaiters(() => clock);
    const stop = new AbortController();
    const waits = {
      a1: waiters.wait('a', 60_000, [stop.signal]),
      a2: waiters.wait('a', 60_000, [stop.signal]),
      b1: waiters.wait('b', 60_000, [stop.signal]),
    };
    clock = 200;
    for (const level of c.served) waiters.served(level, 250, false);
    assert.deepEqual(await ended(waits), c.want, c.name);
    stop.abort();
    await Promise.allSettled(Object.values(waits));
    assert.equal(waiters.size, 0, `${c.name}: every waiter forgotten`);
  }
});

test('only a request sent after the level’s latest 429 releases a waiter', async () => {
  let clock = 100;
  const waiters = new ThrottleWaiters(() => clock);
  const stop = new AbortController();
  const first = waiters.wait('a', 60_000, [stop.signal]);
  clock = 200;
  const second = waiters.wait('a', 60_000, [stop.signal]);
  // Sent between the two 429s: it may have queued through the overload.
  waiters.served('a', 150, false);
  assert.deepEqual(await ended({ first, second }), { first: 'waiting', second: 'waiting' });
  waiters.served('a', 200, false);
  assert.deepEqual(await ended({ first, second }), { first: 'waiting', second: 'waiting' });
  waiters.served('a', 201, false);
  assert.deepEqual(await ended({ first, second }), { first: true, second: 'waiting' });
  // A request that was itself released early carries the release on, whenever it was sent.
  waiters.served('a', 150, true);
  assert.deepEqual(await ended({ first, second }), { first: true, second: true });
  stop.abort();
  await Promise.allSettled([first, second]);
});

test('a release is never banked: a request served before anyone waits does not shorten a later wait', async () => {
  const waiters = new ThrottleWaiters();
  waiters.served('a', performance.now(), false);
  waiters.served('a', performance.now(), true);
  const stop = new AbortController();
  const wait = waiters.wait('a', 60_000, [stop.signal]);
  assert.deepEqual(await ended({ wait }), { wait: 'waiting' });
  stop.abort(new Error('stopped'));
  await assert.rejects(wait, /stopped/);
});

test('the timer ends a wait without any served request, and reports it was not released early', async () => {
  const waiters = new ThrottleWaiters();
  const started = performance.now();
  assert.equal(await waiters.wait('a', 30, []), false);
  assert.ok(performance.now() - started >= 25);
  assert.equal(waiters.size, 0);
});

test('an already aborted signal rejects at once and registers nothing', async () => {
  const waiters = new ThrottleWaiters();
  const stop = new AbortController();
  stop.abort(new Error('closed'));
  await assert.rejects(waiters.wait('a', 60_000, [stop.signal]), /closed/);
  assert.equal(waiters.size, 0);
});

test('priorityLevelOf reads the APF priority level UID header', () => {
  const cases: Array<[Record<string, string | string[] | undefined>, string]> = [
    [{ 'x-kubernetes-pf-prioritylevel-uid': 'uid-1' }, 'uid-1'],
    [{ 'x-kubernetes-pf-prioritylevel-uid': ['uid-2', 'uid-3'] }, 'uid-2'],
    [{}, ''],
    [{ 'x-kubernetes-pf-flowschema-uid': 'fs' }, ''],
  ];
  for (const [headers, want] of cases) assert.equal(priorityLevelOf(headers), want, JSON.stringify(headers));
});
