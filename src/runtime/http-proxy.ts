// Reaching the API server through an HTTP(S) proxy, as client-go does: the
// kubeconfig cluster's `proxy-url` wins; without it HTTPS_PROXY / HTTP_PROXY
// and NO_PROXY from the environment apply (loopback and localhost never go
// through an environment proxy). Connections are CONNECT tunnels, so TLS to the
// API server stays end to end and the proxy sees only the host and port.
import { Agent as HttpAgent, type AgentOptions as HttpAgentOptions } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import { BlockList, connect as netConnect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** A proxy response head larger than this is not a proxy we understand. */
const MAX_CONNECT_RESPONSE_BYTES = 16 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** The proxy URL without its credentials, for messages. */
export function redactProxyUrl(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

/** Parses a proxy URL as client-go would (a value without a scheme means http://); throws a clear error otherwise. */
export function parseProxyUrl(value: string, source: string): URL {
  const withScheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`${source} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(
      `${source} uses the unsupported scheme ${url.protocol.slice(0, 16)}//; use an http:// or https:// proxy`,
    );
  }
  if (!url.hostname) throw new Error(`${source} has no host`);
  return url;
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name.toUpperCase()] || env[name.toLowerCase()] || undefined;
}

const bareHost = (hostname: string): string =>
  hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;

/** Whether NO_PROXY exempts `target`: `*`, IPs, CIDRs, and domains (`example.com` also matches subdomains, `.example.com` only them), each optionally with a port. */
export function noProxyMatches(noProxy: string, target: URL): boolean {
  const host = bareHost(target.hostname).toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  const hostIpFamily = isIP(host);
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      const [address, bits] = entry.split('/', 2) as [string, string];
      const family = isIP(address);
      const prefix = Number(bits);
      if (!family || !hostIpFamily || family !== hostIpFamily || !Number.isInteger(prefix)) continue;
      if (prefix < 0 || prefix > (family === 4 ? 32 : 128)) continue;
      const list = new BlockList();
      list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
      if (list.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
      continue;
    }
    // An optional port: "host:port" or "[v6]:port"; a bare IPv6 address has no port.
    let entryPort: string | undefined;
    const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      entry = bracketed[1]!;
      entryPort = bracketed[2];
    } else if (!isIP(entry)) {
      const colon = entry.lastIndexOf(':');
      if (colon > 0 && /^\d+$/.test(entry.slice(colon + 1))) {
        entryPort = entry.slice(colon + 1);
        entry = entry.slice(0, colon);
      }
    }
    if (entryPort !== undefined && entryPort !== port) continue;
    if (isIP(entry)) {
      if (entry === host) return true;
      continue;
    }
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (entry.startsWith('.')) {
      if (host.endsWith(entry)) return true;
    } else if (host === entry || host.endsWith(`.${entry}`)) {
      return true;
    }
  }
  return false;
}

const isLoopback = (host: string): boolean => {
  const h = bareHost(host).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
};

/**
 * The proxy to reach `server` through: the kubeconfig's proxy-url if set, else
 * the environment's, else none.
 */
export function proxyFor(server: URL, proxyUrl: string | undefined, env: NodeJS.ProcessEnv): URL | undefined {
  if (proxyUrl) return parseProxyUrl(proxyUrl, 'the kubeconfig cluster proxy-url');
  if (isLoopback(server.hostname)) return undefined;
  const name = server.protocol === 'https:' ? 'https_proxy' : 'http_proxy';
  const fromEnv = envValue(env, name);
  if (!fromEnv) return undefined;
  const noProxy = envValue(env, 'no_proxy');
  if (noProxy && noProxyMatches(noProxy, server)) return undefined;
  return parseProxyUrl(fromEnv, name.toUpperCase());
}

/** Opens a CONNECT tunnel to host:port through the proxy; resolves with the raw tunnel. */
export function openTunnel(
  proxy: URL,
  host: string,
  port: number,
  timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
): Promise<Duplex> {
  const proxyPort = Number(proxy.port) || (proxy.protocol === 'https:' ? 443 : 80);
  const proxyHost = bareHost(proxy.hostname);
  const socket: Socket =
    proxy.protocol === 'https:'
      ? tlsConnect({ host: proxyHost, port: proxyPort, servername: isIP(proxyHost) ? undefined : proxyHost })
      : netConnect({ host: proxyHost, port: proxyPort });
  const target = isIP(bareHost(host)) === 6 ? `[${bareHost(host)}]:${port}` : `${host}:${port}`;
  const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`];
  if (proxy.username || proxy.password) {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    lines.push(`Proxy-Authorization: Basic ${Buffer.from(credentials).toString('base64')}`);
  }
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const fail = (message: string) => {
      cleanup();
      socket.on('error', () => undefined);
      socket.destroy();
      reject(new Error(`proxy ${redactProxyUrl(proxy)}: ${message} (CONNECT ${target})`));
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_CONNECT_RESPONSE_BYTES) fail('response head too large');
        return;
      }
      const statusLine = head.subarray(0, Math.min(end, head.indexOf('\r\n'))).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      if (!status || status[1] !== '200') {
        fail(`refused the tunnel: ${statusLine.slice(0, 100) || 'no status line'}`);
        return;
      }
      cleanup();
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onError = (err: Error) => fail(err.message);
    const onClose = () => fail('closed the connection');
    const onTimeout = () => fail(`no answer within ${timeoutMs} ms`);
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('timeout', onTimeout);
      socket.setTimeout(0);
    };
    socket.setTimeout(timeoutMs);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('timeout', onTimeout);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}

type ConnectionCallback = (err: Error | null, socket?: Duplex) => void;

/** A keep-alive https.Agent whose connections are TLS inside a CONNECT tunnel. */
export class HttpsTunnelAgent extends HttpsAgent {
  constructor(
    private readonly proxy: URL,
    options: HttpsAgentOptions,
  ) {
    super(options);
  }

  // Called by the agent for each new connection; the callback form lets the tunnel open asynchronously.
  createConnection(
    options: ConnectionOptions & { host?: string; port?: number },
    callback: ConnectionCallback,
  ): undefined {
    openTunnel(this.proxy, options.host ?? 'localhost', Number(options.port) || 443).then(
      (tunnel) => {
        const tlsSocket = tlsConnect({ ...options, socket: tunnel });
        callback(null, tlsSocket);
      },
      (err: Error) => callback(err),
    );
    return undefined;
  }
}

/** A keep-alive http.Agent whose connections are CONNECT tunnels (plain-http API servers behind a proxy). */
export class HttpTunnelAgent extends HttpAgent {
  constructor(
    private readonly proxy: URL,
    options: HttpAgentOptions,
  ) {
    super(options);
  }

  createConnection(options: { host?: string; port?: number }, callback: ConnectionCallback): undefined {
    openTunnel(this.proxy, options.host ?? 'localhost', Number(options.port) || 80).then(
      (tunnel) => callback(null, tunnel),
      (err: Error) => callback(err),
    );
    return undefined;
  }
}
