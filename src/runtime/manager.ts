import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_HEALTH_BOUNDS,
  EventLoopMonitor,
  informerReadinessProblems,
  livenessProblems,
  startHealthServer,
  type HealthBounds,
  type NamedInformerHealth,
} from './health.js';
import type { InformerFactory } from './informer-factory.js';
import {
  deletedCrdMessage,
  groupVersion,
  missingCrdMessage,
  missingCrds,
  type DiscoveryAnswer,
  type RequiredCrd,
} from '../required-crds.js';
import { AbortedError, sleep, untilAborted } from './backoff.js';
import { ApiError, isNotFound, type KubeClient } from './kube-client.js';
import type { LeaderElector } from './leader-election.js';
import { OperatorMetrics } from './metrics.js';
import type { Logger } from './logger.js';
import type { ControllerOperator } from './operator.js';
import { errorMessage } from './work-queue.js';

export interface CrdCheckOptions {
  /** How long start() waits for a missing CRD to appear before it fails (it may be being applied). */
  waitMs: number;
  /** Pause between discovery attempts while waiting. */
  intervalMs: number;
  /** How often a running manager checks that its CRDs are still there; 0 disables. */
  recheckMs: number;
}

export const DEFAULT_CRD_CHECK: CrdCheckOptions = { waitMs: 15_000, intervalMs: 1000, recheckMs: 30_000 };

export interface HealthOptions extends HealthBounds {
  /** How often the manager asks the API server for /version, to tell an outage from a wedged informer. */
  apiserverCheckMs: number;
}

export const DEFAULT_HEALTH: HealthOptions = { ...DEFAULT_HEALTH_BOUNDS, apiserverCheckMs: 30_000 };

export interface LeaderElection {
  elector: LeaderElector;
  /** The Lease's name, for the leader_election_master_status gauge. */
  name: string;
  /** Called once leadership is lost (not released); the workers are already stopping. */
  onLost?: () => void;
}

/**
 * Runs the controllers of one process: check that the CRDs they need are
 * served, init them, start the shared informers, wait for the caches, then
 * start the workers. stop() drains the queues before closing watches and
 * connections.
 *
 * A CRD missing at start fails start() with a message naming it and the
 * --controllers flag (an informer would otherwise retry its list forever and
 * never sync). A CRD deleted while running is logged and makes /readyz fail
 * until it is back; the process keeps running, so the controllers that do not
 * need it keep working.
 *
 * With leader election, every replica starts its informers and becomes ready
 * once the caches synced (warm caches, fast takeover), but only the replica
 * holding the Lease runs workers. The client refuses writes while this replica
 * does not lead (see KubeClient.guardWrites). Losing the Lease stops the
 * workers at once; stop() drains them first and then releases the Lease.
 */
export class Manager {
  private ready = false;
  private server: Server | undefined;
  private readonly missingNow = new Map<string, RequiredCrd>();
  private recheckTimer: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();
  private workersStarted = false;
  private readonly eventLoop: EventLoopMonitor;
  private apiserverTimer: NodeJS.Timeout | undefined;
  private apiserverAnsweredAt = -Infinity;
  /** The informers registered when the caches first synced; readiness follows them. */
  private requiredInformers: string[] = [];
  private readonly metricsRegistry: OperatorMetrics;

  constructor(
    private readonly client: KubeClient,
    private readonly informers: InformerFactory,
    private readonly controllers: ControllerOperator[],
    private readonly logger: Logger,
    private readonly crds: readonly RequiredCrd[] = [],
    private readonly crdCheck: CrdCheckOptions = DEFAULT_CRD_CHECK,
    private readonly leaderElection?: LeaderElection,
    private readonly health: HealthOptions = DEFAULT_HEALTH,
  ) {
    this.eventLoop = new EventLoopMonitor(health.eventLoopWindowMs);
    this.metricsRegistry = new OperatorMetrics(
      {
        queues: controllers.map((c) => c.queue),
        controllerGauges: controllers.flatMap((c) => c.metricGauges()),
        informers: () =>
          informers.all().map(({ name, informer }) => ({ name, size: informer.size, stats: informer.stats })),
        leaseName: leaderElection?.name ?? 'regcred-operator',
        isLeading: () => this.isLeading(),
        isReady: () => this.isReady(),
        crds: () => crds.map((c) => ({ crd: c.name, missing: this.missingNow.has(c.name) })),
        eventLoopMaxLagSeconds: () => Math.round(this.eventLoop.maxLagMs()) / 1000,
        apiRequestCounts: () => client.counts,
      },
      client,
    );
  }

  async start(health?: { port: number; host: string }): Promise<void> {
    this.eventLoop.start();
    void this.checkApiserver();
    this.apiserverTimer = setInterval(() => void this.checkApiserver(), this.health.apiserverCheckMs);
    this.apiserverTimer.unref();
    if (health) {
      this.server = await startHealthServer(health.port, health.host, {
        ready: () => this.isReady(),
        notReadyReason: () => this.notReadyReason(),
        livenessProblems: () => this.livenessProblems(),
        metrics: () => this.metrics(),
      });
      const addr = this.server.address() as AddressInfo;
      this.logger.info('health endpoints listening', { address: `${addr.address}:${addr.port}` });
    }
    await this.waitForCrds();
    for (const controller of this.controllers) await controller.start();
    this.informers.start();
    const started = performance.now();
    // stop() while a cache still cannot sync ends start() instead of leaving it waiting forever.
    await untilAborted(this.informers.waitForSync(), this.stopping.signal).catch((err: unknown) => {
      throw err instanceof AbortedError ? new Error('stopped before the caches synced') : err;
    });
    this.logger.info('caches synced', {
      ms: Math.round(performance.now() - started),
      informers: this.informers.all().map(({ name, informer }) => `${name}:${informer.size}`),
    });
    this.requiredInformers = this.informers.all().map(({ name }) => name);
    this.ready = true;
    const election = this.leaderElection;
    if (!election) this.runWorkers();
    else {
      election.elector.run({
        onStartedLeading: () => {
          if (this.stopping.signal.aborted) return;
          this.logger.info('leading: starting workers', { lease: election.name });
          this.runWorkers();
        },
        onStoppedLeading: () => {
          this.logger.error('leadership lost: stopping workers', { lease: election.name });
          this.workersStarted = false;
          for (const controller of this.controllers) void controller.stop();
          election.onLost?.();
        },
      });
    }
    if (this.crds.length > 0 && this.crdCheck.recheckMs > 0) {
      this.recheckTimer = setInterval(() => void this.recheckCrds(), this.crdCheck.recheckMs);
      this.recheckTimer.unref();
    }
  }

  private runWorkers(): void {
    this.workersStarted = true;
    for (const controller of this.controllers) controller.runWorkers();
  }

  /** Whether this process runs its workers: it leads, or leader election is off. */
  isLeading(): boolean {
    return this.workersStarted && (this.leaderElection?.elector.isLeader() ?? true);
  }

  isReady(): boolean {
    return this.ready && this.missingNow.size === 0 && this.informerProblems().length === 0;
  }

  private notReadyReason(): string {
    const problems = [...this.missingNow.values()].map(deletedCrdMessage);
    problems.push(...this.informerProblems());
    if (problems.length === 0 && !this.ready) problems.push('caches not synced');
    return problems.join('\n');
  }

  /**
   * Before the first sync: every informer not synced yet. After it: the
   * required informers (those registered then) that have been failing to
   * list/watch for longer than the bound. Readiness does not depend on
   * leadership, so a follower with warm caches stays ready.
   */
  private informerProblems(): string[] {
    const all = this.informerHealth();
    const checked = this.ready ? all.filter(({ name }) => this.requiredInformers.includes(name)) : all;
    return informerReadinessProblems(performance.now(), checked, this.health);
  }

  private informerHealth(): NamedInformerHealth[] {
    return this.informers.all().map(({ name, informer }) => ({ name, health: informer.health() }));
  }

  /** Why this process counts as wedged (/healthz fails); empty when live. */
  livenessProblems(): string[] {
    return livenessProblems(
      {
        now: performance.now(),
        eventLoopMaxLagMs: this.eventLoop.maxLagMs(),
        informers: this.informerHealth(),
        apiserverAnsweredAt: this.apiserverAnsweredAt,
      },
      this.health,
    );
  }

  /** Records whether the API server answers at all (any status counts). */
  private async checkApiserver(): Promise<void> {
    try {
      await this.client.request('GET', '/version');
      this.apiserverAnsweredAt = performance.now();
    } catch (err) {
      if (err instanceof ApiError) this.apiserverAnsweredAt = performance.now();
    }
  }

  /** Resolves once discovery serves every required CRD; throws when one is still missing after waitMs. */
  private async waitForCrds(): Promise<void> {
    if (this.crds.length === 0) return;
    const deadline = performance.now() + this.crdCheck.waitMs;
    let waiting = false;
    for (;;) {
      let missing: RequiredCrd[] | undefined;
      let failure: unknown;
      try {
        missing = missingCrds(this.crds, await this.discover());
      } catch (err) {
        failure = err;
      }
      if (missing?.length === 0) {
        if (waiting) this.logger.info('required CRDs are installed', { crds: this.crds.map((c) => c.name) });
        return;
      }
      if (performance.now() >= deadline) {
        if (missing) throw new Error(missing.map(missingCrdMessage).join('\n'));
        throw new Error(
          `could not check that the CRDs the controllers need are installed: ${errorMessage(failure)}`,
        );
      }
      if (missing && !waiting) {
        this.logger.warn('waiting for CRDs to be installed', {
          missing: missing.map((c) => c.name),
          waitMs: this.crdCheck.waitMs,
        });
        waiting = true;
      }
      await sleep(this.crdCheck.intervalMs, this.stopping.signal);
      if (this.stopping.signal.aborted) throw new Error('stopped while waiting for CRDs');
    }
  }

  private async recheckCrds(): Promise<void> {
    let missing: RequiredCrd[];
    try {
      missing = missingCrds(this.crds, await this.discover());
    } catch (err) {
      // Discovery itself failing says nothing about the CRDs; keep the last answer.
      this.logger.debug('CRD check failed', { error: errorMessage(err) });
      return;
    }
    const now = new Set(missing.map((c) => c.name));
    for (const crd of missing) {
      if (this.missingNow.has(crd.name)) continue;
      this.missingNow.set(crd.name, crd);
      this.logger.error(deletedCrdMessage(crd), { crd: crd.name, controllers: crd.controllers });
    }
    for (const [name, crd] of this.missingNow) {
      if (now.has(name)) continue;
      this.missingNow.delete(name);
      this.logger.info('CRD installed again', { crd: name, controllers: crd.controllers });
    }
  }

  /** What discovery serves for each group/version the required CRDs live in. */
  private async discover(): Promise<Map<string, DiscoveryAnswer>> {
    const answers = new Map<string, DiscoveryAnswer>();
    const groupVersions = [...new Set(this.crds.map((c) => groupVersion(c.resource)))];
    await Promise.all(
      groupVersions.map(async (gv) => {
        try {
          const list = await this.client.request<{ resources?: Array<{ name?: string }> }>(
            'GET',
            `/apis/${gv}`,
          );
          answers.set(
            gv,
            (list?.resources ?? []).map((r) => r.name ?? ''),
          );
        } catch (err) {
          if (!isNotFound(err)) throw err;
          answers.set(gv, 'absent');
        }
      }),
    );
    return answers;
  }

  healthAddress(): AddressInfo | undefined {
    return this.server?.address() as AddressInfo | undefined;
  }

  async stop(): Promise<void> {
    this.ready = false;
    this.stopping.abort();
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    clearInterval(this.apiserverTimer);
    this.eventLoop.stop();
    this.metricsRegistry.close();
    // Drained while still renewing the Lease, so no follower starts before the last write.
    await Promise.all(this.controllers.map((c) => c.stop()));
    this.workersStarted = false;
    await this.leaderElection?.elector.release();
    await this.informers.stop();
    this.client.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The Prometheus text exposition of /metrics. */
  metrics(): Promise<string> {
    return this.metricsRegistry.text();
  }
}
