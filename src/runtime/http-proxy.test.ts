import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noProxyMatches, parseProxyUrl, proxyFor } from './http-proxy.js';

test('proxyFor: proxy-url wins, else the environment as client-go reads it', () => {
  const cases: Array<{
    name: string;
    server: string;
    proxyUrl?: string;
    env?: NodeJS.ProcessEnv;
    want: string | undefined;
  }> = [
    { name: 'nothing set', server: 'https://10.0.0.1', want: undefined },
    {
      name: 'proxy-url',
      server: 'https://api.example.com:6443',
      proxyUrl: 'http://proxy:3128',
      want: 'http://proxy:3128/',
    },
    {
      name: 'proxy-url applies to loopback too',
      server: 'https://127.0.0.1:6443',
      proxyUrl: 'https://proxy:3128',
      want: 'https://proxy:3128/',
    },
    {
      name: 'proxy-url wins over the environment and NO_PROXY',
      server: 'https://api.example.com',
      proxyUrl: 'http://a:1',
      env: { HTTPS_PROXY: 'http://b:2', NO_PROXY: '*' },
      want: 'http://a:1/',
    },
    {
      name: 'HTTPS_PROXY for an https server',
      server: 'https://api.example.com',
      env: { HTTPS_PROXY: 'http://b:2' },
      want: 'http://b:2/',
    },
    {
      name: 'https_proxy, no scheme means http',
      server: 'https://api.example.com',
      env: { https_proxy: 'b:2' },
      want: 'http://b:2/',
    },
    {
      name: 'HTTP_PROXY is not used for an https server',
      server: 'https://api.example.com',
      env: { HTTP_PROXY: 'http://b:2' },
      want: undefined,
    },
    {
      name: 'HTTP_PROXY for an http server',
      server: 'http://api.example.com:8080',
      env: { HTTP_PROXY: 'http://b:2' },
      want: 'http://b:2/',
    },
    {
      name: 'loopback never uses an environment proxy',
      server: 'https://127.0.0.1:6443',
      env: { HTTPS_PROXY: 'http://b:2' },
      want: undefined,
    },
    {
      name: 'localhost never uses an environment proxy',
      server: 'https://localhost:6443',
      env: { HTTPS_PROXY: 'http://b:2' },
      want: undefined,
    },
    {
      name: 'NO_PROXY CIDR holds the in-cluster service IP',
      server: 'https://10.96.0.1:443',
      env: { HTTPS_PROXY: 'http://b:2', NO_PROXY: 'example.org,10.96.0.0/12' },
      want: undefined,
    },
    {
      name: 'no_proxy domain',
      server: 'https://api.cluster.local',
      env: { HTTPS_PROXY: 'http://b:2', no_proxy: 'cluster.local' },
      want: undefined,
    },
    {
      name: 'NO_PROXY not matching',
      server: 'https://api.example.com',
      env: { HTTPS_PROXY: 'http://b:2', NO_PROXY: 'example.org,10.0.0.0/8' },
      want: 'http://b:2/',
    },
  ];
  for (const c of cases) {
    assert.equal(proxyFor(new URL(c.server), c.proxyUrl, c.env ?? {})?.href, c.want, c.name);
  }
});

test('noProxyMatches: NO_PROXY entries', () => {
  const cases: Array<[string, string, boolean]> = [
    ['*', 'https://a.b', true],
    ['a.b', 'https://a.b', true],
    ['b', 'https://a.b', true],
    ['.b', 'https://a.b', true],
    ['.a.b', 'https://a.b', false],
    ['*.b', 'https://a.b', true],
    ['xa.b', 'https://a.b', false],
    ['a.b:443', 'https://a.b', true],
    ['a.b:6443', 'https://a.b', false],
    ['a.b:6443', 'https://a.b:6443', true],
    ['10.0.0.1', 'https://10.0.0.1:6443', true],
    ['10.0.0.2', 'https://10.0.0.1:6443', false],
    ['10.0.0.0/8', 'https://10.0.0.1', true],
    ['11.0.0.0/8', 'https://10.0.0.1', false],
    ['10.0.0.0/99', 'https://10.0.0.1', false],
    ['fd00::/8', 'https://[fd00::1]:6443', true],
    ['fd00::1', 'https://[fd00::1]:6443', true],
    ['[fd00::1]:6443', 'https://[fd00::1]:6443', true],
    ['[fd00::1]:443', 'https://[fd00::1]:6443', false],
    [' , ,A.B ', 'https://a.b', true],
  ];
  for (const [noProxy, server, want] of cases) {
    assert.equal(noProxyMatches(noProxy, new URL(server)), want, `${noProxy} vs ${server}`);
  }
});

test('parseProxyUrl: a clear error for what cannot be used, without the credentials', () => {
  assert.throws(
    () => parseProxyUrl('socks5://user:secret@proxy:1080', 'the kubeconfig cluster proxy-url'),
    /^Error: the kubeconfig cluster proxy-url uses the unsupported scheme socks5:\/\/; use an http:\/\/ or https:\/\/ proxy$/,
  );
  assert.throws(() => parseProxyUrl('http://[bad', 'HTTPS_PROXY'), /^Error: HTTPS_PROXY is not a valid URL$/);
  assert.equal(parseProxyUrl('proxy:3128', 'HTTPS_PROXY').href, 'http://proxy:3128/');
});
