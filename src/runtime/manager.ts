import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startHealthServer } from './health.js';
import type { InformerFactory } from './informer-factory.js';
import type { KubeClient } from './kube-client.js';
import type { Logger } from './logger.js';
import type { ControllerOperator } from './operator.js';

/**
 * Runs the controllers of one process: init them, start the shared
 * informers, wait for the caches, then start the workers. stop() drains the
 * queues before closing watches and connections.
 */
export class Manager {
  private ready = false;
  private server: Server | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly informers: InformerFactory,
    private readonly controllers: ControllerOperator[],
    private readonly logger: Logger,
  ) {}

  async start(health?: { port: number; host: string }): Promise<void> {
    if (health) {
      this.server = await startHealthServer(health.port, health.host, {
        ready: () => this.ready,
        metrics: () => this.metrics(),
      });
      const addr = this.server.address() as AddressInfo;
      this.logger.info('health endpoints listening', { address: `${addr.address}:${addr.port}` });
    }
    for (const controller of this.controllers) await controller.start();
    this.informers.start();
    const started = performance.now();
    await this.informers.waitForSync();
    this.logger.info('caches synced', {
      ms: Math.round(performance.now() - started),
      informers: this.informers.all().map(({ name, informer }) => `${name}:${informer.size}`),
    });
    for (const controller of this.controllers) controller.runWorkers();
    this.ready = true;
  }

  isReady(): boolean {
    return this.ready;
  }

  healthAddress(): AddressInfo | undefined {
    return this.server?.address() as AddressInfo | undefined;
  }

  async stop(): Promise<void> {
    this.ready = false;
    await Promise.all(this.controllers.map((c) => c.stop()));
    await this.informers.stop();
    this.client.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  metrics(): string {
    const lines: string[] = [];
    const metric = (
      name: string,
      help: string,
      type: string,
      rows: Array<[Record<string, string>, number]>,
    ) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of rows) {
        const l = Object.entries(labels)
          .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
          .join(',');
        lines.push(`${name}{${l}} ${value}`);
      }
    };
    metric('regcred_ready', 'Whether every cache has synced.', 'gauge', [[{}, this.ready ? 1 : 0]]);
    metric(
      'regcred_workqueue_depth',
      'Keys waiting in each controller queue.',
      'gauge',
      this.controllers.map((c) => [{ queue: c.queue.name }, c.queue.length]),
    );
    for (const field of ['added', 'processed', 'failures', 'retries'] as const) {
      metric(
        `regcred_workqueue_${field}_total`,
        `Work queue ${field} per controller.`,
        'counter',
        this.controllers.map((c) => [{ queue: c.queue.name }, c.queue.stats[field]]),
      );
    }
    metric(
      'regcred_informer_cached_objects',
      'Objects held in each informer cache.',
      'gauge',
      this.informers.all().map(({ name, informer }) => [{ informer: name }, informer.size]),
    );
    metric(
      'regcred_api_requests_total',
      'Kubernetes API requests by verb.',
      'counter',
      Object.entries(this.client.counts).map(([verb, n]) => [{ verb }, n]),
    );
    return lines.join('\n') + '\n';
  }
}
