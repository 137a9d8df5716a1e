import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { sleep } from './backoff.js';
import { isConflict, isNotFound, type KubeClient, type ResourceType } from './kube-client.js';
import type { Logger } from './logger.js';
import { errorMessage } from './work-queue.js';

export const LeasesResource: ResourceType = {
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  kind: 'Lease',
  namespaced: true,
};

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KubernetesObject {
  spec?: LeaseSpec;
}

/**
 * What this replica last saw of the Lease, timed by its own monotonic clock:
 * expiry is judged from when the record was last seen to change here, never
 * from the timestamps written by another machine (their clocks may differ).
 */
export interface LeaseObservation {
  /** The leader election fields of the Lease, as one string to compare. */
  record: string;
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** Monotonic ms at which `record` was first seen. */
  observedAtMs: number;
}

export interface LeaseDecisionInput {
  identity: string;
  /** Monotonic ms (performance.now()). */
  nowMs: number;
  /** Wall clock, only for the timestamps written into the Lease. */
  wallNow: Date;
  leaseDurationMs: number;
  /** The Lease as just read; undefined when it does not exist. */
  lease: Lease | undefined;
  previous: LeaseObservation | undefined;
}

export type LeaseDecision =
  | { action: 'create'; spec: LeaseSpec; observation: LeaseObservation | undefined }
  | {
      action: 'update';
      spec: LeaseSpec;
      /** True when another identity (or nobody) held it before. */
      acquired: boolean;
      observation: LeaseObservation;
    }
  | { action: 'wait'; holderIdentity: string; expiresInMs: number; observation: LeaseObservation };

/** The MicroTime format of Lease timestamps (RFC 3339 with microseconds). */
export function microTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

export function leaseRecord(spec: LeaseSpec | undefined): string {
  const s = spec ?? {};
  return JSON.stringify([
    s.holderIdentity ?? '',
    s.leaseDurationSeconds ?? 0,
    s.acquireTime ?? '',
    s.renewTime ?? '',
    s.leaseTransitions ?? 0,
  ]);
}

/** What the Lease looks like to this replica now, given what it saw before. */
export function observeLease(
  spec: LeaseSpec | undefined,
  previous: LeaseObservation | undefined,
  nowMs: number,
): LeaseObservation {
  const record = leaseRecord(spec);
  if (previous?.record === record) return previous;
  return {
    record,
    holderIdentity: spec?.holderIdentity ?? '',
    leaseDurationSeconds: spec?.leaseDurationSeconds ?? 0,
    observedAtMs: nowMs,
  };
}

/**
 * client-go's tryAcquireOrRenew as a pure function: create a missing Lease;
 * wait while another identity holds one that changed less than its
 * leaseDurationSeconds ago (by this replica's clock); otherwise take or renew
 * it, counting a transition when the holder changes.
 */
export function decideLease(input: LeaseDecisionInput): LeaseDecision {
  const { identity, nowMs, wallNow, leaseDurationMs, lease } = input;
  const now = microTime(wallNow);
  // Rounded up: followers never wait less than the configured duration.
  const leaseDurationSeconds = Math.max(1, Math.ceil(leaseDurationMs / 1000));
  if (!lease) {
    return {
      action: 'create',
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      },
      observation: undefined,
    };
  }
  const observation = observeLease(lease.spec, input.previous, nowMs);
  const holder = observation.holderIdentity;
  if (holder !== '' && holder !== identity) {
    const expiresAt = observation.observedAtMs + observation.leaseDurationSeconds * 1000;
    if (expiresAt > nowMs)
      return { action: 'wait', holderIdentity: holder, expiresInMs: expiresAt - nowMs, observation };
  }
  const transitions = lease.spec?.leaseTransitions ?? 0;
  if (holder === identity) {
    return {
      action: 'update',
      acquired: false,
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: lease.spec?.acquireTime ?? now,
        renewTime: now,
        leaseTransitions: transitions,
      },
      observation,
    };
  }
  return {
    action: 'update',
    acquired: true,
    spec: {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: transitions + 1,
    },
    observation,
  };
}

/** The Lease spec that hands leadership back at once (as client-go's ReleaseOnCancel writes it). */
export function releasedSpec(spec: LeaseSpec | undefined, wallNow: Date): LeaseSpec {
  const now = microTime(wallNow);
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: spec?.leaseTransitions ?? 0,
  };
}

/** The holder identity of this process: the Pod name (or host name) and a unique suffix, as controller-runtime makes it. */
export function leaderIdentity(podName = process.env.POD_NAME): string {
  return `${podName || hostname()}_${randomUUID()}`;
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  /** Monotonic clock; injectable for tests. */
  now?: () => number;
  /** Source of the retry jitter; injectable for tests. */
  random?: () => number;
}

export interface LeaderCallbacks {
  onStartedLeading(): void;
  /** Leadership was lost (not released): every write must stop now. */
  onStoppedLeading(): void;
}

/**
 * Leader election on a coordination.k8s.io Lease with client-go's semantics:
 * followers poll every retryPeriod (jittered) and take over a Lease that has
 * not changed for its leaseDurationSeconds; the leader renews every
 * retryPeriod and stops leading when renewDeadline passes since its last
 * successful renewal (counted from when that write was sent, so it always
 * stops before a follower may take over). release() hands the Lease back.
 *
 * Use a client of its own (no shared rate limiter or connection pool), so
 * heavy controller traffic cannot delay a renewal.
 */
export class LeaderElector {
  private leading = false;
  private renewedAtMs = -Infinity;
  private observation: LeaseObservation | undefined;
  /** The Lease as we last wrote it, so a renewal needs no read. */
  private ours: Lease | undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private lastHolder: string | undefined;
  /** When the Lease another replica holds expires by our clock, as of the last attempt. */
  private expiresInMs = Infinity;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(
    private readonly client: KubeClient,
    private readonly options: LeaderElectionOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.log = options.logger.child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
  }

  get identity(): string {
    return this.options.identity;
  }

  /** Whether this process may write now: it holds the Lease and its last renewal is within renewDeadline. */
  isLeader(): boolean {
    return this.leading && this.now() < this.renewedAtMs + this.options.renewDeadlineMs;
  }

  run(callbacks: LeaderCallbacks): void {
    this.loop ??= this.electAndRenew(callbacks).catch((err: unknown) => {
      this.log.error('leader election failed', { error: errorMessage(err) });
      if (this.leading) this.stepDown(callbacks, 'failed');
    });
  }

  private async electAndRenew(callbacks: LeaderCallbacks): Promise<void> {
    const signal = this.stopping.signal;
    this.log.info('waiting to become leader');
    while (!signal.aborted) {
      const outcome = await this.tryAcquireOrRenew();
      if (outcome === 'held') break;
      // As client-go: up to 1.2 retry periods of jitter, so followers do not move in step; but
      // wake when the holder's Lease expires rather than up to a jittered period later.
      const jittered = this.options.retryPeriodMs * (1 + (this.options.random ?? Math.random)() * 1.2);
      await sleep(Math.min(jittered, this.expiresInMs + 10), signal);
    }
    if (signal.aborted) return;
    this.leading = true;
    this.log.info('became leader', { leaseTransitions: this.ours?.spec?.leaseTransitions });
    callbacks.onStartedLeading();
    while (!signal.aborted) {
      await sleep(this.options.retryPeriodMs, signal);
      if (signal.aborted) return;
      const renewal = await this.renewWithinDeadline();
      if (renewal !== 'renewed') {
        if (signal.aborted) return;
        this.stepDown(callbacks, renewal);
        return;
      }
    }
  }

  private stepDown(callbacks: LeaderCallbacks, why: 'expired' | 'taken' | 'failed'): void {
    this.leading = false;
    if (why === 'taken') {
      this.log.error('lost leadership: another replica holds the Lease', { leader: this.lastHolder });
    } else {
      this.log.error('lost leadership: could not renew the Lease within the renew deadline', {
        renewDeadlineMs: this.options.renewDeadlineMs,
      });
    }
    callbacks.onStoppedLeading();
  }

  /** Renews, retrying every retryPeriod, until renewedAtMs + renewDeadline passed ('expired'). */
  private async renewWithinDeadline(): Promise<'renewed' | 'expired' | 'taken'> {
    const signal = this.stopping.signal;
    for (;;) {
      const remaining = this.renewedAtMs + this.options.renewDeadlineMs - this.now();
      if (remaining <= 0) return 'expired';
      const outcome = await withDeadline(this.tryAcquireOrRenew(), remaining);
      if (outcome === 'held') return 'renewed';
      if (outcome === 'lost') return 'taken';
      if (signal.aborted) return 'expired';
      const left = this.renewedAtMs + this.options.renewDeadlineMs - this.now();
      if (left <= 0) return 'expired';
      await sleep(Math.min(this.options.retryPeriodMs, left), signal);
    }
  }

  /**
   * One attempt: 'held' when we hold the Lease now, 'lost' when another
   * identity holds it, 'failed' on an error or conflict (try again later).
   */
  private async tryAcquireOrRenew(): Promise<'held' | 'lost' | 'failed'> {
    const { namespace, name, identity } = this.options;
    this.expiresInMs = Infinity;
    try {
      // The leader writes on top of what it wrote last; a conflict means someone else wrote: read again.
      if (this.leading && this.ours) {
        const sentAt = this.now();
        try {
          const written = await this.client.replace<Lease>(LeasesResource, {
            ...this.ours,
            spec: { ...this.ours.spec, renewTime: microTime(new Date()) },
          });
          this.wrote(written, sentAt);
          return 'held';
        } catch (err) {
          this.ours = undefined;
          if (!isConflict(err)) throw err;
        }
      }
      const lease = await this.client.get<Lease>(LeasesResource, namespace, name);
      const decision = decideLease({
        identity,
        nowMs: this.now(),
        wallNow: new Date(),
        leaseDurationMs: this.options.leaseDurationMs,
        lease,
        previous: this.observation,
      });
      this.observation = decision.observation;
      this.expiresInMs = decision.action === 'wait' ? decision.expiresInMs : Infinity;
      if (decision.action === 'wait') {
        if (this.lastHolder !== decision.holderIdentity) {
          this.lastHolder = decision.holderIdentity;
          this.log.info('another replica is leader', {
            leader: decision.holderIdentity,
            expiresInMs: Math.round(decision.expiresInMs),
          });
        }
        return this.leading ? 'lost' : 'failed';
      }
      const sentAt = this.now();
      const written =
        decision.action === 'create'
          ? await this.client.create<Lease>(LeasesResource, {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { namespace, name },
              spec: decision.spec,
            })
          : await this.client.replace<Lease>(LeasesResource, { ...lease!, spec: decision.spec });
      this.wrote(written, sentAt);
      return 'held';
    } catch (err) {
      // 409: another replica wrote in between (or created it first); the next attempt reads again.
      const level = isConflict(err) || isNotFound(err) ? 'debug' : 'warn';
      this.log[level]('could not acquire or renew the Lease', { error: errorMessage(err) });
      return 'failed';
    }
  }

  private wrote(lease: Lease, sentAtMs: number): void {
    this.ours = lease;
    this.renewedAtMs = sentAtMs;
    this.observation = observeLease(lease.spec, undefined, sentAtMs);
    this.lastHolder = this.options.identity;
  }

  /**
   * Stops electing and renewing; when leading, hands the Lease back (empty
   * holder, 1 s duration) so a follower takes over at its next attempt.
   * Call after the workers drained.
   */
  async release(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    const { namespace, name, identity } = this.options;
    for (let attempt = 0; attempt < 2; attempt++) {
      const lease =
        attempt === 0 && this.ours
          ? this.ours
          : await this.client.get<Lease>(LeasesResource, namespace, name).catch(() => undefined);
      if (!lease || lease.spec?.holderIdentity !== identity) return;
      try {
        await this.client.replace<Lease>(LeasesResource, {
          ...lease,
          spec: releasedSpec(lease.spec, new Date()),
        });
        this.log.info('released the Lease');
        return;
      } catch (err) {
        if (!isConflict(err)) {
          this.log.warn('could not release the Lease; followers take over when it expires', {
            error: errorMessage(err),
          });
          return;
        }
      }
    }
  }
}

/** The attempt's outcome, or 'timeout' once `ms` passed (the attempt is left to finish on its own). */
async function withDeadline<T>(attempt: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
