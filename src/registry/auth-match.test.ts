import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ANONYMOUS,
  credentialFromEntry,
  decodeAuthField,
  matchingRegistries,
  parseRegistryKey,
  selectCredential,
} from './auth-match.js';
import { parseDockerConfigJson, type DockerConfigEntry, type DockerConfigRegistry } from './dockerconfig.js';
import { parseImageRef } from './image-ref.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const SECRET = 'pa55:w0rd';
const basic = (user: string): DockerConfigEntry => ({ auth: b64(`${user}:${SECRET}`) });

describe('selectCredential', () => {
  const cases: Array<{ name: string; image: string; keys: string[]; want: string | undefined }> = [
    { name: 'a bare host key matches every repository', image: 'r.io/a/b', keys: ['r.io'], want: 'r.io' },
    {
      name: 'a scheme and a /v1/ suffix are ignored',
      image: 'r.io/a',
      keys: ['https://r.io/v1/'],
      want: 'https://r.io/v1/',
    },
    { name: 'a /v2/ suffix is ignored', image: 'r.io/a', keys: ['http://r.io/v2/'], want: 'http://r.io/v2/' },
    { name: 'a /v2 suffix without slash is ignored', image: 'r.io/a', keys: ['r.io/v2'], want: 'r.io/v2' },
    { name: 'a different host does not match', image: 'r.io/a', keys: ['q.io'], want: undefined },
    { name: 'host is not host:443', image: 'r.io/a', keys: ['r.io:443'], want: undefined },
    { name: 'host:443 is not host', image: 'r.io:443/a', keys: ['r.io'], want: undefined },
    { name: 'the same port matches', image: 'r.io:5000/a', keys: ['r.io:5000'], want: 'r.io:5000' },
    { name: 'a different port does not match', image: 'r.io:5000/a', keys: ['r.io:5001'], want: undefined },
    {
      name: 'hosts compare case-insensitively',
      image: 'R.IO/a',
      keys: ['https://r.Io'],
      want: 'https://r.Io',
    },
    { name: 'a glob label matches one label', image: 'eu.gcr.io/p/a', keys: ['*.gcr.io'], want: '*.gcr.io' },
    {
      name: 'a glob label never spans two labels',
      image: 'a.b.gcr.io/p',
      keys: ['*.gcr.io'],
      want: undefined,
    },
    { name: 'a glob needs the label to exist', image: 'gcr.io/p', keys: ['*.gcr.io'], want: undefined },
    {
      name: 'a partial glob label',
      image: 'us-docker.pkg.dev/p',
      keys: ['*-docker.pkg.dev'],
      want: '*-docker.pkg.dev',
    },
    { name: 'a path prefix matches', image: 'r.io/team/app', keys: ['r.io/team'], want: 'r.io/team' },
    {
      name: 'a path equal to the repository matches',
      image: 'r.io/team/app',
      keys: ['r.io/team/app'],
      want: 'r.io/team/app',
    },
    {
      name: 'a path prefix stops at segment boundaries',
      image: 'r.io/teamwork/app',
      keys: ['r.io/team'],
      want: undefined,
    },
    {
      name: 'a longer path than the repository does not match',
      image: 'r.io/team',
      keys: ['r.io/team/app'],
      want: undefined,
    },
    {
      name: 'a path with a trailing slash',
      image: 'r.io/team/app',
      keys: ['https://r.io/team/'],
      want: 'https://r.io/team/',
    },
    {
      name: 'the most specific path wins over the host key',
      image: 'r.io/team/app',
      keys: ['r.io', 'https://r.io/v1/', 'r.io/team', 'r.io/team/app', 'r.io/other'],
      want: 'r.io/team/app',
    },
    {
      name: 'an exact host wins over a glob at equal path depth',
      image: 'eu.gcr.io/p/a',
      keys: ['*.gcr.io', 'eu.gcr.io'],
      want: 'eu.gcr.io',
    },
    {
      name: 'a glob host with a longer path wins over an exact host',
      image: 'eu.gcr.io/p/a',
      keys: ['eu.gcr.io', '*.gcr.io/p'],
      want: '*.gcr.io/p',
    },
    {
      name: 'Docker Hub images match the index.docker.io/v1/ key',
      image: 'k14stest/private-repo',
      keys: ['https://index.docker.io/v1/'],
      want: 'https://index.docker.io/v1/',
    },
    {
      name: 'Docker Hub images match a docker.io key (Beyond upstream)',
      image: 'k14stest/private-repo',
      keys: ['docker.io'],
      want: 'docker.io',
    },
    {
      name: 'docker.io/ images match index.docker.io',
      image: 'docker.io/library/nginx',
      keys: ['index.docker.io'],
      want: 'index.docker.io',
    },
    {
      name: 'index.docker.io wins over the docker.io alias',
      image: 'nginx',
      keys: ['docker.io', 'index.docker.io'],
      want: 'index.docker.io',
    },
    {
      name: 'a Docker Hub key with a namespace path',
      image: 'k14stest/private-repo',
      keys: ['index.docker.io', 'docker.io/k14stest'],
      want: 'docker.io/k14stest',
    },
    {
      name: 'single-segment Hub names live under library/',
      image: 'busybox',
      keys: ['docker.io/library'],
      want: 'docker.io/library',
    },
    {
      name: 'Docker Hub keys do not match other registries',
      image: 'r.io/a',
      keys: ['docker.io'],
      want: undefined,
    },
    {
      name: 'loopback IP with port',
      image: '127.0.0.1:5000/a',
      keys: ['127.0.0.1:5000'],
      want: '127.0.0.1:5000',
    },
    {
      name: 'loopback IP with port, scheme and path',
      image: '127.0.0.1:5000/some/path/b',
      keys: ['https://127.0.0.1:5000/v1/', '127.0.0.1:5000/some/path'],
      want: '127.0.0.1:5000/some/path',
    },
    { name: 'IPv6 hosts compare exactly', image: '[::1]:5000/a', keys: ['[::1]:5000'], want: '[::1]:5000' },
    { name: 'no keys at all is anonymous', image: 'r.io/a', keys: [], want: undefined },
    {
      name: 'user info in a key is ignored for matching',
      image: 'r.io/a',
      keys: ['https://u:p@r.io'],
      want: 'https://u:p@r.io',
    },
    { name: 'a run of * is one *', image: 'eu.gcr.io/p', keys: ['**.gcr.io'], want: '**.gcr.io' },
    {
      name: 'four * in a label still match',
      image: 'xaybzcw.r.io/p',
      keys: ['*a*b*c*.r.io'],
      want: '*a*b*c*.r.io',
    },
    {
      name: 'a key with more than four * in a label never matches',
      image: 'xaybzcwdv.r.io/p',
      keys: ['*a*b*c*d*.r.io'],
      want: undefined,
    },
    {
      name: 'a key longer than 255 characters never matches, even one a run of * would shorten',
      image: 'r.io/a',
      keys: [`${'*'.repeat(300)}.io`],
      want: undefined,
    },
  ];
  for (const { name, image, keys, want } of cases) {
    it(name, () => {
      const registries = keys.map((registry, i) => ({ registry, entry: basic(`user${i}`) }));
      const selection = selectCredential(registries, parseImageRef(image));
      assert.equal(selection.key, want);
      if (want === undefined) assert.deepEqual(selection.credential, ANONYMOUS);
      else {
        const username = `user${keys.indexOf(want)}`;
        assert.deepEqual(selection.credential, { kind: 'basic', username, password: SECRET });
      }
    });
  }

  it('passes over a more specific key whose entry is unusable, and says so without values', () => {
    const registries: DockerConfigRegistry[] = [
      { registry: 'r.io/team', entry: { auth: 'bm90LWEtcGFpcg==' } },
      { registry: 'r.io', entry: basic('u') },
    ];
    const selection = selectCredential(registries, parseImageRef('r.io/team/app'));
    assert.equal(selection.key, 'r.io');
    assert.deepEqual(selection.problems, ['auths["r.io/team"]: auth is not base64 of "username:password"']);
  });

  it('names a passed-over key without the user info written into it', () => {
    const registries: DockerConfigRegistry[] = [
      { registry: 'https://bob:hunter2@r.io/team', entry: { auth: 'bm90LWEtcGFpcg==' } },
    ];
    const selection = selectCredential(registries, parseImageRef('r.io/team/app'));
    assert.deepEqual(selection.problems, [
      'auths["https://***@r.io/team"]: auth is not base64 of "username:password"',
    ]);
  });

  // Issue 9: this key against a 40-character label held the event loop for 41 s (a backtracking
  // regex per label). Matching is linear by construction (see registry-key.test.ts); this only
  // guards against a return of the exponential blow-up, so its bound is loose.
  it('answers at once for the key of issue 9', () => {
    const started = performance.now();
    const selection = selectCredential(
      [{ registry: '*a*a*a*a*a*a*a*a*a*a*b.example.com', entry: basic('u') }],
      parseImageRef(`${'a'.repeat(40)}.example.com/app`),
    );
    const elapsed = performance.now() - started;
    assert.equal(selection.key, undefined);
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  });

  // Before the fix each of these keys took about 5 ms against 60-character labels: 54 s in all.
  it('reads a 1 MiB Secret of 10,000 four-* glob keys and matches an image against it quickly', () => {
    const auths = Object.fromEntries(
      Array.from({ length: 10_000 }, (_, i) => [
        `*a*a*a*b${i}.*a*a*a*.example.com`,
        { ...basic(`user${i}`), email: `user${i}@example.com`.padEnd(22, '.') },
      ]),
    );
    const text = JSON.stringify({ auths });
    assert.ok(text.length > 1000 * 1024 && text.length < 1024 * 1024, `${text.length} bytes`);
    const started = performance.now();
    const parsed = parseDockerConfigJson(text);
    assert.ok(parsed.ok);
    const miss = selectCredential(
      parsed.registries,
      parseImageRef(`${'a'.repeat(60)}.${'a'.repeat(60)}.example.com/app`),
    );
    const hit = selectCredential(parsed.registries, parseImageRef('aaab9999.aaa.example.com/app'));
    const elapsed = performance.now() - started;
    assert.equal(miss.key, undefined);
    assert.equal(hit.key, '*a*a*a*b9999.*a*a*a*.example.com');
    // ~0.3 s on an idle core; backtracking glob matching would take minutes. The bound leaves room
    // for a machine shared by parallel test runs.
    assert.ok(elapsed < 15_000, `took ${elapsed.toFixed(0)} ms`);
  });

  it('lists every match most specific first', () => {
    const registries = ['r.io', 'r.io/a', 'q.io', '*.io/a/b'].map((registry) => ({
      registry,
      entry: basic('u'),
    }));
    assert.deepEqual(
      matchingRegistries(registries, parseImageRef('r.io/a/b/c')).map((r) => r.registry),
      ['*.io/a/b', 'r.io/a', 'r.io'],
    );
  });
});

describe('credentialFromEntry', () => {
  const cases: Array<{ name: string; entry: DockerConfigEntry; want: unknown }> = [
    {
      name: 'auth decodes to username and password',
      entry: { auth: b64('u:p') },
      want: { kind: 'basic', username: 'u', password: 'p' },
    },
    {
      name: 'a password may contain colons',
      entry: { auth: b64('u:a:b') },
      want: { kind: 'basic', username: 'u', password: 'a:b' },
    },
    {
      name: 'auth wins over username and password',
      entry: { username: 'x', password: 'y', auth: b64('u:p') },
      want: { kind: 'basic', username: 'u', password: 'p' },
    },
    {
      name: 'username and password are used when auth is malformed',
      entry: { username: 'x', password: 'y', auth: 'not-base64-of-u:p' },
      want: { kind: 'basic', username: 'x', password: 'y' },
    },
    {
      name: 'identitytoken is a refresh token',
      entry: { identitytoken: 'it', auth: b64('u:p') },
      want: { kind: 'identityToken', token: 'it' },
    },
    {
      name: 'registrytoken wins over everything',
      entry: { registrytoken: 'rt', identitytoken: 'it', auth: b64('u:p') },
      want: { kind: 'registryToken', token: 'rt' },
    },
    { name: 'an empty user and password is anonymous', entry: { auth: b64(':') }, want: ANONYMOUS },
    {
      name: 'auth without a colon is a problem',
      entry: { auth: b64('nocolon') },
      want: { problem: 'auth is not base64 of "username:password"' },
    },
    {
      name: 'nothing usable is a problem',
      entry: { email: 'e@x' },
      want: { problem: 'no credential (none of username, password, auth, identitytoken, registrytoken)' },
    },
  ];
  for (const { name, entry, want } of cases) {
    it(name, () => assert.deepEqual(credentialFromEntry(entry), want));
  }

  it('reads only strictly padded standard base64', () => {
    assert.equal(decodeAuthField('dTpwMQ'), undefined);
    assert.deepEqual(decodeAuthField('dTpwMQ=='), { username: 'u', password: 'p1' });
    assert.deepEqual(decodeAuthField(b64('u:p')), { username: 'u', password: 'p' });
  });
});

describe('parseRegistryKey', () => {
  it('normalizes scheme, version suffix, case and slashes', () => {
    assert.deepEqual(parseRegistryKey('HTTPS://R.io:5000//team//app/v2/'), {
      key: 'HTTPS://R.io:5000//team//app/v2/',
      host: 'r.io',
      port: '5000',
      path: 'team/app',
      registry: 'r.io:5000',
      wildcards: 0,
    });
  });

  it('maps Docker Hub aliases to index.docker.io', () => {
    assert.equal(parseRegistryKey('docker.io')?.registry, 'index.docker.io');
    assert.equal(parseRegistryKey('https://index.docker.io/v1/')?.registry, 'index.docker.io');
  });

  it('rejects keys without a host or with a bad port', () => {
    assert.equal(parseRegistryKey('https:///path'), undefined);
    assert.equal(parseRegistryKey('r.io:http'), undefined);
  });

  it('rejects keys beyond the caps', () => {
    assert.equal(parseRegistryKey('*a*a*a*a*a*a*a*a*a*a*b.example.com'), undefined);
    assert.equal(parseRegistryKey(`r.io/${'a'.repeat(251)}`), undefined);
    assert.equal(parseRegistryKey(`r.io/${'a'.repeat(250)}`)?.path, 'a'.repeat(250));
  });

  it('collapses runs of * and counts the wildcards left', () => {
    assert.deepEqual(parseRegistryKey('https://u:p@**.*X**.io'), {
      key: 'https://u:p@**.*X**.io',
      host: '*.*x*.io',
      path: '',
      registry: '*.*x*.io',
      wildcards: 3,
    });
  });
});
