// A real control plane with an audit log, and the whole operator running
// in-process under its own user, so its writes can be told apart from the
// test's in the audit log. Shared by the e2e suites that run the operator.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  createWriteStream,
  existsSync,
  openSync,
  readSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, type OperatorConfig } from '../../src/config.js';
import { startOperator, type RunningOperator } from '../../src/main.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { createLogger } from '../../src/runtime/logger.js';
import { startTestCluster, type TestCluster } from './cluster.js';
import { waitFor } from './wait.js';

export interface AuditEvent {
  stage: string;
  verb: string;
  user: { username: string };
  objectRef?: {
    resource?: string;
    namespace?: string;
    name?: string;
    subresource?: string;
    apiGroup?: string;
  };
  responseStatus?: { code?: number };
  requestReceivedTimestamp?: string;
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** Reads the API server's audit log (JSON lines) from a byte offset on. */
export class AuditLog {
  constructor(readonly path: string) {}

  /** Byte offset of the end of the log; pass it to since() later. */
  offset(): number {
    return existsSync(this.path) ? statSync(this.path).size : 0;
  }

  /** Completed requests logged after `offset`. */
  since(offset: number): AuditEvent[] {
    const end = this.offset();
    if (end <= offset) return [];
    // One byte before the offset too: an offset taken while the API server was writing a long line
    // falls inside that line, which belongs to before the offset.
    const from = Math.max(0, offset - 1);
    const buffer = Buffer.alloc(end - from);
    const fd = openSync(this.path, 'r');
    try {
      readSync(fd, buffer, 0, buffer.length, from);
    } finally {
      closeSync(fd);
    }
    let text = buffer.toString('utf8');
    if (offset > 0) text = text.slice(text.indexOf('\n') + 1);
    // Only whole lines: the last one may still be being written.
    return text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as AuditEvent)
      .filter((e) => e.stage === 'ResponseComplete');
  }

  /** Create/update/patch/delete requests of `user` after `offset`. */
  writesBy(user: string, offset: number): AuditEvent[] {
    return this.since(offset).filter((e) => e.user.username === user && WRITE_VERBS.has(e.verb));
  }
}

/** An audit event in one line, for assertion messages. */
export function describeAudit(e: AuditEvent): string {
  const ref = e.objectRef ?? {};
  return `${e.verb} ${ref.resource ?? '?'}${ref.subresource ? `/${ref.subresource}` : ''} ${ref.namespace ?? ''}/${ref.name ?? ''} (${e.responseStatus?.code ?? '?'})`;
}

export interface OperatorEnv {
  cluster: TestCluster;
  client: KubeClient;
  operator: RunningOperator;
  config: OperatorConfig;
  audit: AuditLog;
  operatorUser: string;
  /** Stops the operator and starts a fresh one (empty caches and queues) with the same configuration. */
  restartOperator(): Promise<void>;
  /** The operator's writes after `offset`. */
  operatorWritesSince(offset: number): AuditEvent[];
  stop(): Promise<void>;
}

export interface OperatorEnvOptions {
  operatorUser: string;
  config: Partial<OperatorConfig>;
}

/**
 * Starts the control plane (audit log and controller manager on) and the
 * operator with every controller. E2E_OPERATOR_LOG=<file> keeps the
 * operator's JSON log; E2E_AUDIT_COPY=<file> keeps the audit log.
 */
export async function startOperatorEnv(opts: OperatorEnvOptions): Promise<OperatorEnv> {
  const token = randomBytes(24).toString('hex');
  const cluster = await startTestCluster({ auditLog: true, controllerManager: true }, [
    { name: opts.operatorUser, token, groups: ['system:masters'] },
  ]);
  const audit = new AuditLog(cluster.cp.auditLogPath!);
  const logPath = process.env.E2E_OPERATOR_LOG ?? join(cluster.cp.dir, 'operator.log');
  const logStream = createWriteStream(logPath, { flags: 'a' });
  const config = defaultConfig({
    kubeconfig: cluster.cp.kubeconfigFor(opts.operatorUser),
    logLevel: 'debug',
    healthPort: 0,
    healthHost: '127.0.0.1',
    // The Pod webhook is tested by e2e/pod-webhook.e2e.ts; elsewhere it would only race for port 9443.
    webhookPort: 0,
    ...opts.config,
  });
  const logger = createLogger(config.logLevel, logStream);
  let operator: RunningOperator;
  try {
    operator = await startOperator(config, logger);
  } catch (err) {
    logStream.end();
    await cluster.stop();
    throw err;
  }
  const env: OperatorEnv = {
    cluster,
    client: cluster.client,
    operator,
    config,
    audit,
    operatorUser: opts.operatorUser,
    async restartOperator() {
      await env.operator.stop();
      env.operator = await startOperator(config, logger);
    },
    operatorWritesSince: (offset) => audit.writesBy(opts.operatorUser, offset),
    async stop() {
      await env.operator.stop();
      if (process.env.E2E_AUDIT_COPY && existsSync(audit.path))
        copyFileSync(audit.path, process.env.E2E_AUDIT_COPY);
      await new Promise<void>((resolve) => logStream.end(resolve));
      await cluster.stop();
    },
  };
  return env;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until the operator has written nothing for `quietMs`, so a test starts from a settled cluster. */
export async function waitForOperatorIdle(
  env: Pick<OperatorEnv, 'audit' | 'operatorWritesSince'>,
  quietMs = 1000,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    `the operator to make no write for ${quietMs} ms`,
    async () => {
      const offset = env.audit.offset();
      await sleep(quietMs);
      return env.operatorWritesSince(offset).length === 0;
    },
    { timeoutMs, intervalMs: 0 },
  );
}
