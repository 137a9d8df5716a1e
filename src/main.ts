import { parseConfig, type OperatorConfig } from './config.js';
import { buildControllers } from './controllers.js';
import { EventRecorder } from './runtime/events.js';
import { HeapCompactor } from './runtime/heap-compactor.js';
import { InformerFactory } from './runtime/informer-factory.js';
import { KubeClient } from './runtime/kube-client.js';
import { leaderIdentity, LeaderElector } from './runtime/leader-election.js';
import { loadKubeAuth } from './runtime/kubeconfig.js';
import { createLogger, type Logger } from './runtime/logger.js';
import { DEFAULT_CRD_CHECK, Manager, type LeaderElection } from './runtime/manager.js';
import { buildPodWebhook, withWebhookCrd, type PodWebhook } from './pods/webhook/index.js';
import { requiredCrds } from './required-crds.js';
import { errorMessage } from './runtime/work-queue.js';

export interface RunningOperator {
  manager: Manager;
  client: KubeClient;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Called when this replica loses the leader Lease (the workers are already stopping). */
  onLostLeadership?: () => void;
}

/** Wires the process: one API client, shared informers, the selected controllers. */
export async function startOperator(
  config: OperatorConfig,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningOperator> {
  const kc = loadKubeAuth(config.kubeconfig);
  const client = await KubeClient.create(kc, {
    qps: config.kubeApiQps,
    burst: config.kubeApiBurst,
    maxInFlight: config.kubeApiMaxInFlight,
    timeoutMs: 30_000,
    userAgent: 'regcred-operator/0.2.0',
    logger,
  });
  // The framework base class loads its own KubeConfig from the default locations.
  if (config.kubeconfig) process.env.KUBECONFIG = config.kubeconfig;
  const informers = new InformerFactory(client, logger);
  const ctx = {
    client,
    informers,
    events: new EventRecorder(client, logger),
    logger,
    concurrency: config.concurrency,
    resyncPeriodMs: config.resyncPeriodMs,
  };
  const controllers = buildControllers(ctx, config);
  // Every replica serves the webhook; its setup controller writes only where it leads.
  const webhook: PodWebhook | undefined = config.webhookPort > 0 ? buildPodWebhook(ctx, config) : undefined;
  if (webhook) controllers.push(webhook.controller);
  let election: LeaderElection | undefined;
  let electionClient: KubeClient | undefined;
  if (config.leaderElect) {
    // A client of its own: no shared rate limiter or connection pool can delay a renewal,
    // and no request outlives the renew deadline.
    electionClient = await KubeClient.create(kc, {
      qps: 0,
      burst: 1,
      timeoutMs: config.leaderElectRenewDeadlineMs,
      userAgent: 'regcred-operator/0.2.0 leader-election',
      // The elector tries again every retry period; a wait for Retry-After must not outlast the renew deadline.
      maxRetries: 0,
      logger,
    });
    const elector = new LeaderElector(electionClient, {
      namespace: config.namespace,
      name: config.leaderElectLeaseName,
      identity: leaderIdentity(),
      leaseDurationMs: config.leaderElectLeaseDurationMs,
      renewDeadlineMs: config.leaderElectRenewDeadlineMs,
      retryPeriodMs: config.leaderElectRetryPeriodMs,
      logger,
    });
    // A replica that does not hold the Lease writes nothing, whatever code path tries.
    client.guardWrites(() => elector.isLeader());
    election = {
      elector,
      name: config.leaderElectLeaseName,
      ...(options.onLostLeadership ? { onLost: options.onLostLeadership } : {}),
    };
  }
  const manager = new Manager(
    client,
    informers,
    controllers,
    logger,
    webhook ? withWebhookCrd(requiredCrds(config.controllers)) : requiredCrds(config.controllers),
    DEFAULT_CRD_CHECK,
    election,
  );
  const stop = async () => {
    try {
      await webhook?.close();
      await manager.stop();
    } finally {
      electionClient?.close();
    }
  };
  try {
    await webhook?.listen();
    await manager.start({ port: config.healthPort, host: config.healthHost });
  } catch (err) {
    // Close the health server and connections, so an in-process caller is not left with them.
    await stop().catch(() => undefined);
    throw err;
  }
  logger.info('operator started', {
    controllers: config.controllers,
    namespace: config.namespace,
    webhook: config.webhookPort > 0 ? (config.webhookUrl ?? `port ${config.webhookPort}`) : 'disabled',
    ...(client.proxyDescription ? { apiProxy: client.proxyDescription } : {}),
    ...(election
      ? {
          leaderElection: `${config.namespace}/${config.leaderElectLeaseName}`,
          identity: election.elector.identity,
        }
      : {}),
  });
  return { manager, client, stop };
}

async function main(): Promise<void> {
  let config: OperatorConfig;
  try {
    const parsed = parseConfig(process.argv.slice(2), process.env);
    if ('help' in parsed) {
      process.stdout.write(parsed.help);
      return;
    }
    config = parsed;
  } catch (err) {
    console.error(`regcred-operator: ${errorMessage(err)}`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  try {
    // Started with the flag (an older Deployment's command line), V8 already compacts at every full GC,
    // and turning the flag off after each compaction would undo that choice.
    if (!process.execArgv.includes('--compact-on-every-full-gc')) new HeapCompactor(logger).start();
  } catch (err) {
    logger.warn('heap compaction unavailable: RSS may stay higher after bursts of work', {
      error: errorMessage(err),
    });
  }
  let operator: RunningOperator | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down: draining work queues', { signal });
    const deadline = setTimeout(() => {
      logger.error('shutdown took longer than 25s; exiting');
      process.exit(1);
    }, 25_000);
    deadline.unref();
    void (operator?.stop() ?? Promise.resolve()).then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error('error during shutdown', { error: errorMessage(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    operator = await startOperator(config, logger, {
      // As controller-runtime: another replica may lead now, so stop at once (no drain, no release)
      // and let the Deployment restart this one as a follower.
      onLostLeadership: () => {
        console.error('regcred-operator: leader election lost');
        process.exit(1);
      },
    });
  } catch (err) {
    const message = errorMessage(err);
    logger.error('operator failed to start', { error: message });
    // Also plain and synchronous: the JSON logger may not have flushed when the process exits.
    console.error(`regcred-operator: ${message}`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
