import { createServer, type Server } from 'node:http';
import type { InformerHealth } from './informer.js';

export interface HealthSource {
  ready(): boolean;
  /** What /readyz says while not ready (default: caches not synced). */
  notReadyReason?(): string;
  /** Why the process counts as wedged; /healthz and /livez fail while this is not empty. */
  livenessProblems?(): string[];
  /** The Prometheus text exposition (prom-client's registry answers asynchronously). */
  metrics(): string | Promise<string>;
}

/** /healthz and /livez (not wedged), /readyz (caches synced and fresh) and /metrics (Prometheus text). */
export function startHealthServer(port: number, host: string, source: HealthSource): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez') {
      const problems = source.livenessProblems?.() ?? [];
      res
        .writeHead(problems.length === 0 ? 200 : 500, { 'Content-Type': 'text/plain' })
        .end(problems.length === 0 ? 'ok' : problems.join('\n'));
    } else if (path === '/readyz') {
      const ready = source.ready();
      res
        .writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' })
        .end(ready ? 'ok' : (source.notReadyReason?.() ?? 'caches not synced'));
    } else if (path === '/metrics') {
      Promise.resolve()
        .then(() => source.metrics())
        .then(
          (text) =>
            res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
          (err: unknown) =>
            res
              .writeHead(500, { 'Content-Type': 'text/plain' })
              .end(`metrics failed: ${err instanceof Error ? err.message : String(err)}`),
        );
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export interface HealthBounds {
  /** Readiness: an informer failing to list/watch this long makes the replica not ready. */
  informerFailingMs: number;
  /**
   * Liveness: an informer whose list/watch loop made no progress this long
   * (hung, or failing without reaching the API server) while the API server
   * answers other requests counts as wedged.
   */
  informerStalledMs: number;
  /** How recent an answer from the API server must be for it to count as reachable. */
  apiserverAnsweredWithinMs: number;
  /** Liveness: the event loop was blocked this long at once ... */
  eventLoopStallMs: number;
  /** ... within this window. */
  eventLoopWindowMs: number;
}

/**
 * Readiness follows the caches and liveness only catches a wedged process, so
 * an API server outage makes replicas unready but never gets them restarted in
 * a loop. The event-loop bound matches the leader's renew deadline: a process
 * blocked that long has already lost its Lease.
 */
export const DEFAULT_HEALTH_BOUNDS: HealthBounds = {
  informerFailingMs: 60_000,
  informerStalledMs: 600_000,
  apiserverAnsweredWithinMs: 90_000,
  eventLoopStallMs: 10_000,
  eventLoopWindowMs: 30_000,
};

export interface NamedInformerHealth {
  name: string;
  health: InformerHealth;
}

/** 75s, or 0.4s below ten seconds (tests use short bounds). */
const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
const lastError = (h: InformerHealth): string => (h.lastError ? `: ${h.lastError}` : '');

/** Why the replica is not ready, one line per informer; empty when ready. */
export function informerReadinessProblems(
  now: number,
  informers: readonly NamedInformerHealth[],
  bounds: Pick<HealthBounds, 'informerFailingMs'>,
): string[] {
  const problems: string[] = [];
  for (const { name, health } of informers) {
    if (!health.synced) {
      problems.push(`informer ${name} has not synced its cache yet${lastError(health)}`);
    } else if (health.failingSince !== undefined && now - health.failingSince > bounds.informerFailingMs) {
      problems.push(
        `informer ${name} has failed to list/watch for ${seconds(now - health.failingSince)} ` +
          `(over ${seconds(bounds.informerFailingMs)})${lastError(health)}`,
      );
    }
  }
  return problems;
}

export interface LivenessInput {
  now: number;
  /** Longest event-loop block seen within the window. */
  eventLoopMaxLagMs: number;
  informers: readonly NamedInformerHealth[];
  /** Last time the API server answered a request (any status); -Infinity if never. */
  apiserverAnsweredAt: number;
}

/** Why the process counts as wedged; empty when it is live. */
export function livenessProblems(input: LivenessInput, bounds: HealthBounds): string[] {
  const problems: string[] = [];
  if (input.eventLoopMaxLagMs > bounds.eventLoopStallMs) {
    problems.push(
      `event loop blocked for ${seconds(input.eventLoopMaxLagMs)} (over ${seconds(bounds.eventLoopStallMs)}) ` +
        `within the last ${seconds(bounds.eventLoopWindowMs)}`,
    );
  }
  // Without an answering API server, no progress is expected: that is for readiness, not a restart.
  if (input.now - input.apiserverAnsweredAt > bounds.apiserverAnsweredWithinMs) return problems;
  for (const { name, health } of input.informers) {
    if (!health.started) continue;
    const idle = input.now - health.lastProgressAt;
    if (idle > bounds.informerStalledMs) {
      problems.push(
        `informer ${name} made no list/watch progress for ${seconds(idle)} ` +
          `(over ${seconds(bounds.informerStalledMs)}) while the API server answers${lastError(health)}`,
      );
    }
  }
  return problems;
}

/**
 * Measures how long the event loop was blocked: a timer due every
 * `intervalMs` that fires late was held up by that much.
 */
export class EventLoopMonitor {
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  /** Lags above a small floor, newest last, pruned to the window. */
  private readonly lags: Array<{ at: number; lagMs: number }> = [];

  constructor(
    private readonly windowMs: number,
    private readonly intervalMs = 500,
    private readonly now: () => number = () => performance.now(),
  ) {}

  start(): void {
    if (this.timer) return;
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Records one timer tick; public so tests can drive it with a fake clock. */
  tick(): void {
    const now = this.now();
    const lagMs = now - this.lastTick - this.intervalMs;
    this.lastTick = now;
    if (lagMs > 50) this.lags.push({ at: now, lagMs });
    this.prune(now);
  }

  /** The longest block within the window, including one still going on now. */
  maxLagMs(): number {
    const now = this.now();
    this.prune(now);
    let max = this.timer ? Math.max(0, now - this.lastTick - this.intervalMs) : 0;
    for (const { lagMs } of this.lags) max = Math.max(max, lagMs);
    return max;
  }

  private prune(now: number): void {
    while (this.lags.length > 0 && now - this.lags[0]!.at > this.windowMs) this.lags.shift();
  }
}
