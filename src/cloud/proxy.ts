// Cloud token endpoints (STS, ECR, Google's OAuth endpoint, Entra ID, a
// registry's /oauth2/exchange) behind the operator configuration's
// `httpsProxy`, as registry traffic is: each request is TLS inside a CONNECT
// tunnel, so the proxy sees only host and port. `noProxy` means what it means
// for registries. Plain-http endpoints are the node's own metadata servers and
// credential agents (link-local or loopback addresses a proxy cannot reach):
// they are always called directly.

import type { Agent } from 'node:https';

import { NoProxy, proxyUrlOption } from '../registry/http.js';
import { HttpsTunnelAgent, redactProxyUrl } from '../runtime/http-proxy.js';

/** How a provider reaches token endpoints: the operator configuration's caCerts and proxy. */
export interface TokenEndpointTransport {
  caCerts?: string;
  proxy?: CloudProxy;
}

/** The transport fields a provider's options set, without undefined ones (requests take them as they are). */
export function tokenEndpointTransport(options: {
  caCerts?: string | undefined;
  proxy?: CloudProxy | undefined;
}): TokenEndpointTransport {
  return {
    ...(options.caCerts ? { caCerts: options.caCerts } : {}),
    ...(options.proxy ? { proxy: options.proxy } : {}),
  };
}

/** The operator configuration's proxy keys, as text. */
export interface CloudProxySettings {
  httpsProxy?: string;
  noProxy?: string;
}

export class CloudProxy {
  /** What is wrong with the settings (names the key, never its value); undefined when they are valid. */
  readonly problem: string | undefined;
  private readonly proxyUrl: URL | undefined = undefined;
  private readonly noProxy: NoProxy | undefined = undefined;
  private agent: HttpsTunnelAgent | undefined;

  constructor(settings: CloudProxySettings = {}) {
    let problem: string | undefined;
    try {
      this.proxyUrl = proxyUrlOption('httpsProxy', settings.httpsProxy);
    } catch (err) {
      problem = (err as Error).message;
    }
    try {
      this.noProxy = new NoProxy(settings.noProxy);
    } catch (err) {
      problem ??= `noProxy: ${(err as Error).message}`;
    }
    // Without httpsProxy nothing is proxied, so a bad noProxy stops nothing.
    this.problem = settings.httpsProxy?.trim() ? problem : undefined;
  }

  /** `http://host:port` of httpsProxy without its credentials, for logs; undefined when none is set. */
  get display(): string | undefined {
    return this.proxyUrl ? redactProxyUrl(this.proxyUrl) : undefined;
  }

  /**
   * The agent that carries a request to `url`: a tunnel through httpsProxy,
   * or undefined to connect directly. Throws while the settings are invalid:
   * a proxy that was configured is never bypassed.
   */
  agentFor(url: URL): Agent | undefined {
    if (url.protocol !== 'https:') return undefined;
    if (this.problem !== undefined) {
      throw new Error(
        `the operator configuration's ${this.problem}; cloud token endpoints are not called until it is fixed`,
      );
    }
    if (!this.proxyUrl || this.noProxy?.matches(url)) return undefined;
    // keepAlive off: token endpoints are called a few times an hour, and a kept tunnel would hold a proxy slot.
    return (this.agent ??= new HttpsTunnelAgent(this.proxyUrl, { keepAlive: false }));
  }
}
