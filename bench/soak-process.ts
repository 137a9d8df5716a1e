// The operator as its own process for the soak (as bench/run.ts starts it),
// and what /proc says about it: RSS and its file descriptors, sockets
// classified by the peer they talk to.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync, readlinkSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../e2e/harness/cluster.js';
import { freePort } from '../e2e/harness/control-plane.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The node flags between `node` and the script in package.json's start script. */
export function startScriptNodeFlags(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const m = /^node((?: --\S+)*) dist\/src\/main\.js$/.exec(pkg.scripts.start);
  if (!m) throw new Error(`package.json start script has an unexpected shape: ${pkg.scripts.start}`);
  return m[1]!.trim();
}

export interface OperatorOptions {
  kubeconfig: string;
  nodeFlags: string[];
  /** The operator's stderr (JSON log lines) is appended here. */
  logFile: string;
  extraArgs?: string[];
  /** --log-level of the operator (info shows watch relists after 410 Gone). */
  logLevel?: string;
}

/** One operator process at a time; start() after a kill gives a new incarnation (new pid). */
export class OperatorProcess {
  child: ChildProcess | undefined;
  port = 0;
  incarnation = 0;
  /** Exits we did not cause (crash, exit 1): each is a soak failure. */
  readonly unexpectedExits: Array<{ incarnation: number; code: number | null; signal: string | null }> = [];
  private expectingExit = false;
  private readonly log: WriteStream;

  constructor(private readonly options: OperatorOptions) {
    this.log = createWriteStream(options.logFile, { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.incarnation++;
    this.expectingExit = false;
    const child = spawn(
      process.execPath,
      [
        ...this.options.nodeFlags,
        join(REPO_ROOT, 'dist', 'src', 'main.js'),
        '--kubeconfig',
        this.options.kubeconfig,
        '--health-port',
        String(this.port),
        '--health-host',
        '127.0.0.1',
        '--log-level',
        this.options.logLevel ?? 'warn',
        ...(this.options.extraArgs ?? []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr.pipe(this.log, { end: false });
    const incarnation = this.incarnation;
    child.once('exit', (code, signal) => {
      if (!this.expectingExit) this.unexpectedExits.push({ incarnation, code, signal });
    });
    this.child = child;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${this.port}/readyz`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) return;
      if (child.exitCode !== null) throw new Error(`operator exited with ${child.exitCode} during start`);
      if (Date.now() > deadline) throw new Error('operator did not become ready within 120 s');
      await sleep(200);
    }
  }

  /** Whether it exited on its own; restarts it then (the soak goes on, the exit is reported). */
  async restartIfExited(): Promise<boolean> {
    if (!this.child || this.pid !== undefined || this.expectingExit) return false;
    await this.start();
    return true;
  }

  async kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.expectingExit = true;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }

  /** How many log lines of every incarnation so far carry each of `messages`. */
  countLogMessages(messages: string[]): Record<string, number> {
    const counts: Record<string, number> = Object.fromEntries(messages.map((m) => [m, 0]));
    let text: string;
    try {
      text = readFileSync(this.options.logFile, 'utf8');
    } catch {
      return counts;
    }
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const message = (JSON.parse(line) as { message?: string }).message;
        if (message !== undefined && message in counts) counts[message]!++;
      } catch {
        // a line cut by SIGKILL
      }
    }
    return counts;
  }

  async close(): Promise<void> {
    await this.kill('SIGTERM');
    await new Promise<void>((r) => this.log.end(r));
  }
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

export interface FdSample {
  total: number;
  /** TCP sockets to the API server (through the soak's proxy). */
  apiserver: number;
  /** TCP sockets to the registry (through the soak's proxy). */
  registry: number;
  /** Listening sockets (the health port). */
  listening: number;
  /** Any other TCP socket (should stay 0). */
  otherTcp: number;
  unix: number;
  /** Sockets not found in /proc/net (closing, or another family). */
  otherSocket: number;
  files: number;
  pipes: number;
  anon: number;
}

/** inode → [state, remote port] for the TCP sockets of the network namespace of `pid`. */
function tcpTable(pid: number): Map<string, { state: string; remotePort: number }> {
  const out = new Map<string, { state: string; remotePort: number }>();
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const remote = f[2]!;
      out.set(f[9]!, { state: f[3]!, remotePort: parseInt(remote.slice(remote.indexOf(':') + 1), 16) });
    }
  }
  return out;
}

function unixInodes(pid: number): Set<string> {
  const out = new Set<string>();
  try {
    for (const line of readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 7) out.add(f[6]!);
    }
  } catch {
    // no unix table: every socket counts as other
  }
  return out;
}

/** The process's descriptors by kind; sockets by peer (ports of the API server and registry proxies). */
export function sampleFds(pid: number, ports: { apiserver: number; registry: number }): FdSample {
  const sample: FdSample = {
    total: 0,
    apiserver: 0,
    registry: 0,
    listening: 0,
    otherTcp: 0,
    unix: 0,
    otherSocket: 0,
    files: 0,
    pipes: 0,
    anon: 0,
  };
  const tcp = tcpTable(pid);
  const unix = unixInodes(pid);
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while reading
    }
    sample.total++;
    const socket = /^socket:\[(\d+)\]$/.exec(target);
    if (socket) {
      const entry = tcp.get(socket[1]!);
      if (entry?.state === '0A') sample.listening++;
      else if (entry?.remotePort === ports.apiserver) sample.apiserver++;
      else if (entry?.remotePort === ports.registry) sample.registry++;
      else if (entry) sample.otherTcp++;
      else if (unix.has(socket[1]!)) sample.unix++;
      else sample.otherSocket++;
    } else if (target.startsWith('pipe:')) sample.pipes++;
    else if (target.startsWith('anon_inode:')) sample.anon++;
    else sample.files++;
  }
  return sample;
}
