import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ControlPlaneOptions {
  /** Also start kube-controller-manager (garbage collector, namespace, serviceaccount controllers). */
  controllerManager?: boolean;
  /** etcd without fsync: fine for tests, not for benchmarks compared against a floor. */
  unsafeNoFsync?: boolean;
  /** Record create/update/patch/delete in an audit log (Metadata level). */
  auditLog?: boolean;
  /**
   * CRD manifests applied before kube-controller-manager starts: its garbage
   * collector discovers new resource types only every 30 s.
   */
  crdsDir?: string;
  /** Extra kube-apiserver flags, e.g. to shorten etcd compaction for 410 tests. */
  apiserverArgs?: string[];
  /**
   * Serve the API with a certificate issued by a test CA made here (kubeconfigs
   * trust the CA, not the serving certificate), so startApiserver({ newServingCert })
   * can roll the serving certificate while clients keep verifying it.
   */
  servingCa?: boolean;
  log?: (line: string) => void;
}

export interface User {
  name: string;
  token: string;
  groups: string[];
}

export interface ControlPlane {
  server: string;
  /** kubeconfig of the cluster admin (group system:masters). */
  kubeconfig: string;
  /** Writes a kubeconfig for a token user declared at start. */
  kubeconfigFor(user: string): string;
  binDir: string;
  kubectlPath: string;
  auditLogPath?: string;
  dir: string;
  adminToken: string;
  startMs: number;
  /** etcd's client URL (its v3 JSON gateway answers there too, e.g. POST /v3/kv/compaction). */
  etcdUrl: string;
  /** The CA file the kubeconfigs trust. */
  caFile: string;
  /** Stops kube-apiserver only (etcd and the controller manager keep running): SIGTERM, or SIGKILL. */
  stopApiserver(opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /**
   * Starts kube-apiserver again on the same port, etcd, flags and audit log, and waits for /readyz.
   * newServingCert (needs servingCa) issues a fresh key and certificate from the same CA first.
   */
  startApiserver(opts?: { newServingCert?: boolean }): Promise<void>;
  /** SHA-256 fingerprint of the serving certificate on disk (servingCa only). */
  servingCertFingerprint(): string;
  stop(): Promise<void>;
}

/** Finds or builds the binaries (cached outside the repo, keyed by version; KUBEBUILDER_ASSETS honoured). */
export async function controlPlaneBinaries(log: (line: string) => void = () => undefined): Promise<string> {
  const started = performance.now();
  const { stdout, stderr } = await execFileAsync(join(REPO_ROOT, 'scripts', 'build-control-plane.sh'), [], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 80 * 60_000,
  });
  const dir = stdout.trim().split('\n').pop()!;
  if (!stderr.includes('cached:') && !stderr.includes('KUBEBUILDER_ASSETS')) {
    log(`control-plane binaries built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
`;

const openssl = (dir: string, args: string[]) => execFileAsync('openssl', args, { cwd: dir });

async function makeApiCa(dir: string): Promise<void> {
  // prettier-ignore
  await openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=regcred e2e apiserver CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

/** A fresh key and serving certificate for 127.0.0.1 (and the in-cluster names), signed by ca.key. */
async function issueServingCert(dir: string): Promise<void> {
  // prettier-ignore
  await openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'serving.key', '-out', 'serving.csr', '-subj', '/CN=kube-apiserver']);
  writeFileSync(
    join(dir, 'serving.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' +
      'extendedKeyUsage=serverAuth\n',
  );
  // prettier-ignore
  await openssl(dir, ['x509', '-req', '-in', 'serving.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', 'serving.crt', '-days', '2', '-extfile', 'serving.ext']);
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function startProcess(name: string, bin: string, args: string[], dir: string): ChildProcess {
  const out = createWriteStream(join(dir, `${name}.log`));
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function waitHttpOk(
  url: string,
  token: string,
  timeoutMs: number,
  isAlive: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`process exited while waiting for ${url}`);
    try {
      const code = await new Promise<number>((res, rej) => {
        const req = request(
          url,
          { rejectUnauthorized: false, headers: { Authorization: `Bearer ${token}` }, timeout: 2000 },
          (r) => {
            r.resume();
            res(r.statusCode ?? 0);
          },
        );
        req.on('error', rej);
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end();
      });
      if (code === 200) return;
      last = `HTTP ${code}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${url}: ${last}`);
}

function kubeconfigYaml(server: string, caFile: string, user: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ${server}
    certificate-authority: ${caFile}
users:
- name: ${user}
  user:
    token: ${token}
contexts:
- name: local
  context: {cluster: local, user: ${user}}
current-context: local
`;
}

/**
 * Starts etcd, kube-apiserver and (optionally) kube-controller-manager on free
 * loopback ports with RBAC on, and writes kubeconfigs. stop() ends them in
 * dependency order (controller manager, apiserver, etcd) and removes the
 * temporary directory.
 */
export async function startControlPlane(
  opts: ControlPlaneOptions = {},
  users: User[] = [],
): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  const binDir = await controlPlaneBinaries(log);
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'regcred-cp-'));
  const procs: { etcd?: ChildProcess; apiserver?: ChildProcess; kcm?: ChildProcess } = {};
  const stop = async () => {
    await stopProcess(procs.kcm, 5000);
    await stopProcess(procs.apiserver, 10_000);
    await stopProcess(procs.etcd, 5000);
    // E2E_FAULTS_LOG_DIR keeps the audit log for a post-mortem of a failed fault case.
    const keepDir = process.env.E2E_FAULTS_LOG_DIR;
    if (keepDir && existsSync(join(dir, 'audit.log')))
      copyFileSync(join(dir, 'audit.log'), join(keepDir, `audit-${basename(dir)}.log`));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [etcdClient, etcdPeer, apiPort, kcmPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const adminToken = randomBytes(24).toString('hex');
    const tokens = [`${adminToken},admin,admin-uid,"system:masters"`];
    for (const u of users) tokens.push(`${u.token},${u.name},${u.name}-uid,"${u.groups.join(',')}"`);
    writeFileSync(join(dir, 'tokens.csv'), tokens.join('\n') + '\n');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs1', format: 'pem' }));
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

    // prettier-ignore
    const etcdArgs = [
      '--data-dir', join(dir, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${etcdClient}`,
      '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`,
      '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster', `default=http://127.0.0.1:${etcdPeer}`,
      '--log-level', 'warn',
    ];
    if (opts.unsafeNoFsync) etcdArgs.push('--unsafe-no-fsync');
    procs.etcd = startProcess('etcd', join(binDir, 'etcd'), etcdArgs, dir);

    const server = `https://127.0.0.1:${apiPort}`;
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const tlsDir = join(dir, 'tls');
    // prettier-ignore
    const apiArgs = [
      '--etcd-servers', `http://127.0.0.1:${etcdClient}`,
      '--bind-address', '127.0.0.1',
      '--advertise-address', '127.0.0.1',
      '--endpoint-reconciler-type', 'none',
      '--secure-port', String(apiPort),
      '--cert-dir', join(dir, 'certs'),
      '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file', join(dir, 'sa.pub'),
      '--service-account-signing-key-file', join(dir, 'sa.key'),
      '--service-cluster-ip-range', '10.0.0.0/24',
      '--authorization-mode', 'RBAC',
      '--token-auth-file', join(dir, 'tokens.csv'),
      '--v', '0',
    ];
    if (opts.servingCa) {
      mkdirSync(tlsDir);
      await makeApiCa(tlsDir);
      await issueServingCert(tlsDir);
      apiArgs.push('--tls-cert-file', join(tlsDir, 'serving.crt'));
      apiArgs.push('--tls-private-key-file', join(tlsDir, 'serving.key'));
    }
    apiArgs.push(...(opts.apiserverArgs ?? []));
    let auditLogPath: string | undefined;
    if (opts.auditLog) {
      auditLogPath = join(dir, 'audit.log');
      writeFileSync(join(dir, 'audit-policy.yaml'), AUDIT_POLICY);
      apiArgs.push('--audit-policy-file', join(dir, 'audit-policy.yaml'), '--audit-log-path', auditLogPath);
      apiArgs.push('--audit-log-mode', 'blocking');
    }
    let apiserverStarts = 0;
    const launchApiserver = async () => {
      // Each start logs to its own file, so a restart keeps the first run's log.
      const name = apiserverStarts++ === 0 ? 'kube-apiserver' : `kube-apiserver-${apiserverStarts}`;
      procs.apiserver = startProcess(name, join(binDir, 'kube-apiserver'), apiArgs, dir);
      await waitHttpOk(`${server}/readyz`, adminToken, 60_000, alive(procs.apiserver));
    };
    const alive = (p: ChildProcess | undefined) => () => !!p && p.exitCode === null && p.signalCode === null;
    await launchApiserver();

    const caFile = opts.servingCa ? join(tlsDir, 'ca.crt') : join(dir, 'certs', 'apiserver.crt');
    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(server, caFile, 'admin', adminToken));
    const kubectlPath = existsSync(join(binDir, 'kubectl')) ? join(binDir, 'kubectl') : 'kubectl';
    if (opts.crdsDir) {
      await execFileAsync(kubectlPath, ['--kubeconfig', kubeconfig, 'apply', '-R', '-f', opts.crdsDir]);
      await execFileAsync(kubectlPath, [
        '--kubeconfig',
        kubeconfig,
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd',
        '--all',
      ]);
    }

    if (opts.controllerManager !== false) {
      // prettier-ignore
      procs.kcm = startProcess(
        'kube-controller-manager',
        join(binDir, 'kube-controller-manager'),
        [
          '--kubeconfig', kubeconfig,
          '--authentication-kubeconfig', kubeconfig,
          '--authorization-kubeconfig', kubeconfig,
          '--controllers', 'garbagecollector,namespace,serviceaccount,serviceaccount-token',
          '--leader-elect=false',
          '--service-account-private-key-file', join(dir, 'sa.key'),
          '--root-ca-file', caFile,
          '--bind-address', '127.0.0.1',
          '--secure-port', String(kcmPort),
          '--v', '0',
        ],
        dir,
      );
      await waitHttpOk(`https://127.0.0.1:${kcmPort}/healthz`, adminToken, 30_000, alive(procs.kcm));
    }
    const startMs = Math.round(performance.now() - started);
    log(`control plane ready in ${startMs} ms at ${server}`);
    return {
      server,
      kubeconfig,
      kubeconfigFor(user: string) {
        const u = users.find((x) => x.name === user);
        if (!u) throw new Error(`no user ${user}`);
        const path = join(dir, `${user}.kubeconfig`);
        writeFileSync(path, kubeconfigYaml(server, caFile, user, u.token));
        return path;
      },
      binDir,
      kubectlPath,
      auditLogPath,
      dir,
      adminToken,
      startMs,
      etcdUrl,
      caFile,
      async stopApiserver({ signal = 'SIGTERM' } = {}) {
        if (signal === 'SIGKILL' && procs.apiserver && procs.apiserver.exitCode === null) {
          const exited = new Promise<void>((r) => procs.apiserver!.once('exit', () => r()));
          procs.apiserver.kill('SIGKILL');
          await exited;
        } else {
          await stopProcess(procs.apiserver, 10_000);
        }
      },
      async startApiserver({ newServingCert = false } = {}) {
        if (procs.apiserver && procs.apiserver.exitCode === null && procs.apiserver.signalCode === null)
          throw new Error('kube-apiserver is still running; stopApiserver() first');
        if (newServingCert) {
          if (!opts.servingCa) throw new Error('newServingCert needs the servingCa option');
          await issueServingCert(tlsDir);
        }
        await launchApiserver();
      },
      servingCertFingerprint() {
        if (!opts.servingCa) throw new Error('servingCertFingerprint needs the servingCa option');
        return new X509Certificate(readFileSync(join(tlsDir, 'serving.crt'))).fingerprint256;
      },
      stop,
    };
  } catch (err) {
    for (const name of ['etcd', 'kube-apiserver', 'kube-controller-manager']) {
      const file = join(dir, `${name}.log`);
      if (existsSync(file))
        log(`--- ${name}.log (tail)\n${readFileSync(file, 'utf8').split('\n').slice(-30).join('\n')}`);
    }
    await stop();
    throw err;
  }
}
