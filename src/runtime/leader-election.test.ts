import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiError, type KubeClient } from './kube-client.js';
import {
  decideLease,
  leaderIdentity,
  LeaderElector,
  leaseRecord,
  microTime,
  observeLease,
  releasedSpec,
  type Lease,
  type LeaseDecision,
  type LeaseObservation,
  type LeaseSpec,
} from './leader-election.js';
import { silentLogger } from './logger.js';

const WALL = new Date('2026-11-30T12:00:00.123Z');
const NOW = microTime(WALL);
const EARLIER = '2026-11-30T11:59:00.000000Z';

const lease = (spec: LeaseSpec): Lease => ({
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: { namespace: 'ops', name: 'regcred-operator', resourceVersion: '7' },
  spec,
});
const heldBy = (holderIdentity: string, transitions = 3): LeaseSpec => ({
  holderIdentity,
  leaseDurationSeconds: 15,
  acquireTime: EARLIER,
  renewTime: EARLIER,
  leaseTransitions: transitions,
});
const seen = (spec: LeaseSpec, atMs: number): LeaseObservation => observeLease(spec, undefined, atMs);

test('timestamps are written as MicroTime (microseconds, UTC)', () => {
  assert.equal(NOW, '2026-11-30T12:00:00.123000Z');
});

test('decideLease follows client-go tryAcquireOrRenew', () => {
  interface Case {
    name: string;
    lease: Lease | undefined;
    previous?: LeaseObservation;
    nowMs: number;
    expected: Pick<LeaseDecision, 'action'> & Record<string, unknown>;
  }
  const cases: Case[] = [
    {
      name: 'no Lease: create it held by us, no transition yet',
      lease: undefined,
      nowMs: 1000,
      expected: {
        action: 'create',
        spec: {
          holderIdentity: 'me',
          leaseDurationSeconds: 15,
          acquireTime: NOW,
          renewTime: NOW,
          leaseTransitions: 0,
        },
      },
    },
    {
      name: 'held by another, first seen now: wait a whole lease duration',
      lease: lease(heldBy('other')),
      nowMs: 1000,
      expected: { action: 'wait', holderIdentity: 'other', expiresInMs: 15_000 },
    },
    {
      name: 'held by another, unchanged for 14.9 s: still wait (remote timestamps are old but ignored)',
      lease: lease(heldBy('other')),
      previous: seen(heldBy('other'), 1000),
      nowMs: 15_900,
      expected: { action: 'wait', holderIdentity: 'other', expiresInMs: 100 },
    },
    {
      name: 'held by another, unchanged for 15 s: take it over, one more transition',
      lease: lease(heldBy('other')),
      previous: seen(heldBy('other'), 1000),
      nowMs: 16_000,
      expected: {
        action: 'update',
        acquired: true,
        spec: {
          holderIdentity: 'me',
          leaseDurationSeconds: 15,
          acquireTime: NOW,
          renewTime: NOW,
          leaseTransitions: 4,
        },
      },
    },
    {
      name: 'held by another and renewed since we last looked: the wait starts again',
      lease: lease({ ...heldBy('other'), renewTime: NOW }),
      previous: seen(heldBy('other'), 1000),
      nowMs: 30_000,
      expected: { action: 'wait', holderIdentity: 'other', expiresInMs: 15_000 },
    },
    {
      name: "the holder's own leaseDurationSeconds counts, not ours",
      lease: lease({ ...heldBy('other'), leaseDurationSeconds: 60 }),
      previous: seen({ ...heldBy('other'), leaseDurationSeconds: 60 }, 0),
      nowMs: 30_000,
      expected: { action: 'wait', holderIdentity: 'other', expiresInMs: 30_000 },
    },
    {
      name: 'released (empty holder): take it at once',
      lease: lease(releasedSpec(heldBy('other'), new Date(EARLIER))),
      nowMs: 1000,
      expected: {
        action: 'update',
        acquired: true,
        spec: {
          holderIdentity: 'me',
          leaseDurationSeconds: 15,
          acquireTime: NOW,
          renewTime: NOW,
          leaseTransitions: 4,
        },
      },
    },
    {
      name: 'held by us: renew, keeping acquireTime and the transition count',
      lease: lease(heldBy('me', 9)),
      nowMs: 1000,
      expected: {
        action: 'update',
        acquired: false,
        spec: {
          holderIdentity: 'me',
          leaseDurationSeconds: 15,
          acquireTime: EARLIER,
          renewTime: NOW,
          leaseTransitions: 9,
        },
      },
    },
    {
      name: 'a Lease without a spec: take it',
      lease: { ...lease({}), spec: undefined },
      nowMs: 1000,
      expected: {
        action: 'update',
        acquired: true,
        spec: {
          holderIdentity: 'me',
          leaseDurationSeconds: 15,
          acquireTime: NOW,
          renewTime: NOW,
          leaseTransitions: 1,
        },
      },
    },
  ];
  for (const c of cases) {
    const decision = decideLease({
      identity: 'me',
      nowMs: c.nowMs,
      wallNow: WALL,
      leaseDurationMs: 15_000,
      lease: c.lease,
      previous: c.previous,
    });
    const { observation: _observation, ...rest } = decision;
    assert.deepEqual(rest, c.expected, c.name);
  }
});

test('a lease duration that is not whole seconds is rounded up in the Lease', () => {
  const decision = decideLease({
    identity: 'me',
    nowMs: 0,
    wallNow: WALL,
    leaseDurationMs: 1500,
    lease: undefined,
    previous: undefined,
  });
  assert.equal(decision.action === 'create' && decision.spec.leaseDurationSeconds, 2);
});

test('an observation keeps its time while the record is unchanged and restarts when it changes', () => {
  const first = observeLease(heldBy('other'), undefined, 100);
  assert.equal(observeLease(heldBy('other'), first, 5000).observedAtMs, 100);
  assert.equal(observeLease({ ...heldBy('other'), renewTime: NOW }, first, 5000).observedAtMs, 5000);
  assert.notEqual(leaseRecord(heldBy('a')), leaseRecord(heldBy('b')));
});

test('release empties the holder, shortens the duration to 1 s and keeps the transition count', () => {
  assert.deepEqual(releasedSpec(heldBy('me', 5), WALL), {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: NOW,
    renewTime: NOW,
    leaseTransitions: 5,
  });
});

test('the identity is the Pod name with a unique suffix', () => {
  const a = leaderIdentity('regcred-operator-abc');
  const b = leaderIdentity('regcred-operator-abc');
  assert.match(a, /^regcred-operator-abc_[0-9a-f-]{36}$/);
  assert.notEqual(a, b);
});

/** An API server holding one Lease, with resourceVersion conflicts, that can be made to fail. */
class FakeLeaseServer {
  lease: Lease | undefined;
  private rv = 0;
  failing = false;
  writes: string[] = [];

  client(): KubeClient {
    const check = () => {
      if (this.failing) throw new Error('connection refused');
    };
    const client = {
      get: async () => {
        await Promise.resolve();
        check();
        return this.lease && structuredClone(this.lease);
      },
      create: async (_rt: unknown, obj: Lease) => {
        await Promise.resolve();
        check();
        if (this.lease) throw new ApiError(409, 'exists', 'AlreadyExists');
        return this.store(obj);
      },
      replace: async (_rt: unknown, obj: Lease) => {
        await Promise.resolve();
        check();
        if (obj.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion)
          throw new ApiError(409, 'conflict', 'Conflict');
        return this.store(obj);
      },
    };
    return client as unknown as KubeClient;
  }

  private store(obj: KubernetesObject & { spec?: LeaseSpec }): Lease {
    this.rv += 1;
    this.lease = structuredClone({ ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } });
    this.writes.push(obj.spec?.holderIdentity ?? '');
    return structuredClone(this.lease);
  }
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(5);
  }
}

const timings = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };

// Released after each test, so a failed assertion leaves no election loop keeping the process alive.
const started: LeaderElector[] = [];
const track = (e: LeaderElector) => (started.push(e), e);
afterEach(async () => {
  await Promise.all(started.splice(0).map((e) => e.release()));
});

function elector(server: FakeLeaseServer, identity: string, events: string[]) {
  const e = track(
    new LeaderElector(server.client(), {
      namespace: 'ops',
      name: 'regcred-operator',
      identity,
      logger: silentLogger,
      ...timings,
    }),
  );
  e.run({
    onStartedLeading: () => events.push(`${identity} started`),
    onStoppedLeading: () => events.push(`${identity} stopped`),
  });
  return e;
}

test('two electors: one leads; release hands over at once; the new leader counts a transition', async () => {
  const server = new FakeLeaseServer();
  const events: string[] = [];
  const a = elector(server, 'a', events);
  await until('a leads', () => a.isLeader());
  const b = elector(server, 'b', events);
  await wait(300);
  assert.equal(b.isLeader(), false, 'b follows while a renews');
  assert.ok(
    server.writes.every((w) => w === 'a'),
    `only a wrote: ${server.writes.join(',')}`,
  );
  const released = performance.now();
  await a.release();
  assert.equal(server.lease?.spec?.holderIdentity, '');
  assert.equal(a.isLeader(), false);
  await until('b leads', () => b.isLeader());
  // b polls every retry period with up to 1.2 periods of jitter: well under a lease duration.
  assert.ok(performance.now() - released < 500, 'b took over within a few retry periods');
  assert.equal(server.lease?.spec?.leaseTransitions, 1);
  assert.deepEqual(events, ['a started', 'b started']);
  await b.release();
});

test('a leader that cannot renew stops leading by its renew deadline, before a follower may take over', async () => {
  const server = new FakeLeaseServer();
  const events: string[] = [];
  const a = elector(server, 'a', events);
  await until('a leads', () => a.isLeader());
  server.failing = true;
  const failedAt = performance.now();
  await until('a stopped', () => events.includes('a stopped'));
  const after = performance.now() - failedAt;
  assert.ok(after <= timings.renewDeadlineMs + 50, `stopped after ${Math.round(after)} ms`);
  assert.equal(a.isLeader(), false);
  server.failing = false;
  await a.release();
  assert.equal(server.lease?.spec?.holderIdentity, 'a', 'a lost leader does not write a release');
});

test('a follower takes over a Lease left unrenewed for its duration (the leader was killed)', async () => {
  const server = new FakeLeaseServer();
  server.lease = lease({ ...heldBy('dead', 2), leaseDurationSeconds: 1 });
  const events: string[] = [];
  const started = performance.now();
  const b = elector(server, 'b', events);
  await until('b leads', () => b.isLeader());
  const took = performance.now() - started;
  assert.ok(took >= 1000, `not before the lease duration (${Math.round(took)} ms)`);
  assert.ok(took < 1000 + 2.2 * timings.retryPeriodMs + 100, `soon after it (${Math.round(took)} ms)`);
  assert.equal(server.lease?.spec?.leaseTransitions, 3);
  await b.release();
});

test('a follower tries again when the Lease expires, not a whole jittered retry period later', async () => {
  const server = new FakeLeaseServer();
  server.lease = lease({ ...heldBy('dead', 2), leaseDurationSeconds: 1 });
  const e = track(
    new LeaderElector(server.client(), {
      namespace: 'ops',
      name: 'regcred-operator',
      identity: 'me',
      logger: silentLogger,
      // Always the longest jitter: attempts at 0 and 990 ms, then (without waking at expiry) 1980 ms.
      random: () => 1,
      leaseDurationMs: 1000,
      renewDeadlineMs: 600,
      retryPeriodMs: 450,
    }),
  );
  const started = performance.now();
  e.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined });
  await until('leads', () => e.isLeader());
  const took = performance.now() - started;
  assert.ok(took >= 1000 && took < 1300, `took over after ${Math.round(took)} ms`);
  await e.release();
});

test('isLeader() turns false by itself once renewDeadline passed since the last renewal', async () => {
  const server = new FakeLeaseServer();
  let clock = 0;
  const e = track(
    new LeaderElector(server.client(), {
      namespace: 'ops',
      name: 'regcred-operator',
      identity: 'me',
      logger: silentLogger,
      now: () => clock,
      ...timings,
    }),
  );
  e.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined });
  await until('leads', () => e.isLeader());
  clock = timings.renewDeadlineMs - 1;
  assert.equal(e.isLeader(), true);
  clock = timings.renewDeadlineMs;
  assert.equal(e.isLeader(), false, 'a stalled process does not believe it still leads');
  await e.release();
});
