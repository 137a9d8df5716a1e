// Which cloud requests go through the operator configuration's httpsProxy,
// and real requests (Google/Entra-style form POST and AWS) tunnelled through a
// loopback CONNECT proxy to an https endpoint with a throwaway CA.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';

import { startConnectProxy, type ConnectProxy } from '../../e2e/fixtures/cloud/net.js';
import { makeTestCertificates } from '../../e2e/harness/registry.js';
import { HttpsTunnelAgent } from '../runtime/http-proxy.js';
import { awsHttp } from './aws/http.js';
import { CloudCredentialError, formPostRequest, sendCloudRequest } from './http.js';
import { CloudProxy, type CloudProxySettings } from './proxy.js';

test('CloudProxy: which requests are tunnelled, and invalid settings', () => {
  const proxy = 'http://proxy.corp:3128';
  const cases: Array<{
    settings: CloudProxySettings;
    url: string;
    want: 'direct' | 'tunnel' | RegExp;
  }> = [
    { settings: {}, url: 'https://sts.eu-west-1.amazonaws.com/', want: 'direct' },
    { settings: { httpsProxy: '' }, url: 'https://sts.eu-west-1.amazonaws.com/', want: 'direct' },
    { settings: { httpsProxy: proxy }, url: 'https://sts.eu-west-1.amazonaws.com/', want: 'tunnel' },
    {
      settings: { httpsProxy: 'proxy.corp:3128' },
      url: 'https://oauth2.googleapis.com/token',
      want: 'tunnel',
    },
    // Metadata servers and credential agents speak plain http on the node: never proxied.
    { settings: { httpsProxy: proxy }, url: 'http://169.254.169.254/latest/api/token', want: 'direct' },
    { settings: { httpsProxy: proxy }, url: 'http://169.254.170.23/v1/credentials', want: 'direct' },
    {
      settings: { httpsProxy: proxy, noProxy: '.amazonaws.com' },
      url: 'https://ecr.us-east-1.amazonaws.com/',
      want: 'direct',
    },
    {
      settings: { httpsProxy: proxy, noProxy: 'amazonaws.com' },
      url: 'https://amazonaws.com/',
      want: 'direct',
    },
    {
      settings: { httpsProxy: proxy, noProxy: '.amazonaws.com' },
      url: 'https://myacr.azurecr.io/oauth2/exchange',
      want: 'tunnel',
    },
    {
      settings: { httpsProxy: proxy, noProxy: '*' },
      url: 'https://login.microsoftonline.com/t/oauth2/v2.0/token',
      want: 'direct',
    },
    {
      settings: { httpsProxy: proxy, noProxy: '10.0.0.0/8' },
      url: 'https://10.1.2.3:8443/token',
      want: 'direct',
    },
    {
      settings: { httpsProxy: proxy, noProxy: '10.0.0.0/8' },
      url: 'https://127.0.0.1:8443/token',
      want: 'tunnel',
    },
    // A configured proxy that cannot be used is never bypassed.
    {
      settings: { httpsProxy: 'https://proxy.corp:3128' },
      url: 'https://sts.amazonaws.com/',
      want: /httpsProxy: only http:\/\/ proxies are supported; cloud token endpoints are not called/,
    },
    {
      settings: { httpsProxy: 'http://[' },
      url: 'https://sts.amazonaws.com/',
      want: /httpsProxy: not a valid URL/,
    },
    {
      settings: { httpsProxy: proxy, noProxy: '10.0.0.0/99' },
      url: 'https://sts.amazonaws.com/',
      want: /noProxy: /,
    },
    { settings: { httpsProxy: 'https://proxy.corp:3128' }, url: 'http://169.254.169.254/', want: 'direct' },
    // Without httpsProxy a bad noProxy stops nothing.
    { settings: { noProxy: '10.0.0.0/99' }, url: 'https://sts.amazonaws.com/', want: 'direct' },
  ];
  for (const { settings, url, want } of cases) {
    const what = `${JSON.stringify(settings)} ${url}`;
    const cloudProxy = new CloudProxy(settings);
    if (want instanceof RegExp) {
      assert.throws(() => cloudProxy.agentFor(new URL(url)), want, what);
      continue;
    }
    const agent = cloudProxy.agentFor(new URL(url));
    if (want === 'direct') assert.equal(agent, undefined, what);
    else assert.ok(agent instanceof HttpsTunnelAgent, what);
  }
  assert.equal(new CloudProxy({}).problem, undefined);
  assert.equal(new CloudProxy({ noProxy: '10.0.0.0/99' }).problem, undefined);
  assert.match(
    new CloudProxy({ httpsProxy: 'socks5://p:1080' }).problem ?? '',
    /^httpsProxy: only http:\/\//,
  );
  // Credentials of the proxy stay out of what is logged.
  assert.equal(
    new CloudProxy({ httpsProxy: 'http://user:S3cret@proxy.corp:3128' }).display,
    'http://proxy.corp:3128',
  );
  assert.equal(new CloudProxy({}).display, undefined);
});

describe('requests to token endpoints through a CONNECT proxy', () => {
  let dir: string;
  let ca: string;
  let server: https.Server;
  let origin: string;
  let proxy: ConnectProxy;
  const received: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'regcred-cloud-proxy-'));
    const files = await makeTestCertificates(dir);
    ca = readFileSync(files.caFile, 'utf8');
    server = https.createServer(
      { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) },
      (req, res) => {
        received.push(`${req.method} ${req.url}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"t"}');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    proxy = await startConnectProxy();
  });

  after(async () => {
    await proxy.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const reset = () => {
    received.length = 0;
    proxy.targets.length = 0;
    proxy.authorizations.length = 0;
    proxy.refuse = false;
  };

  it('a form POST (Google, Entra ID, ACR) goes through the tunnel with the proxy credentials, TLS verified end to end', async () => {
    reset();
    const cloudProxy = new CloudProxy({ httpsProxy: `http://egress:Pr0xy-pw@${proxy.host}` });
    const response = await sendCloudRequest(
      formPostRequest(
        new URL(`${origin}/token`),
        { grant_type: 'x' },
        {
          timeoutMs: 5000,
          signal: new AbortController().signal,
          caCerts: ca,
          proxy: cloudProxy,
        },
      ),
    );
    assert.equal(response.status, 200);
    assert.deepEqual(received, ['POST /token']);
    assert.deepEqual(proxy.targets, [new URL(origin).host]);
    assert.deepEqual(proxy.authorizations, [`Basic ${Buffer.from('egress:Pr0xy-pw').toString('base64')}`]);
    // Without caCerts the endpoint's certificate is refused inside the tunnel: TLS is not the proxy's.
    await assert.rejects(
      sendCloudRequest({
        url: new URL(`${origin}/token`),
        method: 'GET',
        timeoutMs: 5000,
        signal: new AbortController().signal,
        proxy: cloudProxy,
      }),
      (error: Error) =>
        error instanceof CloudCredentialError &&
        /SELF_SIGNED|UNABLE_TO_VERIFY|unable to verify/i.test(error.message),
    );
  });

  it('an AWS call (STS, ECR) goes through the tunnel; a refusing proxy is named in the error', async () => {
    reset();
    const cloudProxy = new CloudProxy({ httpsProxy: `http://${proxy.host}` });
    const request = {
      method: 'POST' as const,
      url: new URL(`${origin}/sts`),
      body: 'Action=AssumeRoleWithWebIdentity',
      timeoutMs: 5000,
      maxBytes: 1024,
      caCerts: ca,
      proxy: cloudProxy,
    };
    const response = await awsHttp(request);
    assert.equal(response.status, 200);
    assert.deepEqual(received, ['POST /sts']);
    assert.deepEqual(proxy.targets, [new URL(origin).host]);
    proxy.refuse = true;
    await assert.rejects(awsHttp(request), (error: Error) => {
      assert.match(
        error.message,
        new RegExp(`proxy http://${proxy.host}: refused the tunnel: HTTP/1.1 403 Forbidden`),
      );
      return true;
    });
    assert.deepEqual(received, ['POST /sts'], 'the refused request never reached the endpoint');
  });

  it('an invalid httpsProxy fails the request before anything is sent', async () => {
    reset();
    const cloudProxy = new CloudProxy({ httpsProxy: 'https://proxy.corp:3128' });
    await assert.rejects(
      sendCloudRequest({
        url: new URL(`${origin}/token`),
        method: 'GET',
        timeoutMs: 5000,
        signal: new AbortController().signal,
        proxy: cloudProxy,
      }),
      /httpsProxy: only http:\/\/ proxies are supported/,
    );
    await assert.rejects(
      awsHttp({
        method: 'POST',
        url: new URL(`${origin}/ecr`),
        timeoutMs: 5000,
        maxBytes: 1024,
        proxy: cloudProxy,
      }),
      /httpsProxy: only http:\/\/ proxies are supported/,
    );
    assert.deepEqual(received, []);
    assert.deepEqual(proxy.targets, []);
  });
});
