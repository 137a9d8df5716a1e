import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reuseUntil } from './keychain-cache.js';
import { CloudKeychain, identityKey, KeychainError, type ProviderFactoryOptions } from './keychain.js';
import type { CloudIdentity, CloudRegistryProvider, MintedRegistryCredential } from './types.js';

const AMBIENT: CloudIdentity = { kind: 'ambient' };
const MINUTE = 60_000;

/** A provider serving *.test.example (and its configured hosts) that counts its mints. */
function testProvider(
  options: ProviderFactoryOptions,
  clock: { now: number },
  behaviour: {
    lifetimeMs?: number;
    fail?: string;
    gate?: Promise<void>;
    mints: Array<{ host: string; identity: CloudIdentity; signal: AbortSignal }>;
  },
): CloudRegistryProvider {
  return {
    name: 'ecr',
    servesHost: (host) => host.endsWith('.test.example') || options.extraHosts.includes(host),
    async mint(host, identity, signal): Promise<MintedRegistryCredential> {
      behaviour.mints.push({ host, identity, signal });
      if (behaviour.gate) await behaviour.gate;
      if (behaviour.fail) throw new Error(behaviour.fail);
      const n = behaviour.mints.length;
      return {
        username: 'AWS',
        password: `secret-${n}`,
        expiresAt: new Date(clock.now + (behaviour.lifetimeMs ?? 12 * 60 * MINUTE)),
      };
    },
  };
}

function setup(behaviour: Omit<Parameters<typeof testProvider>[2], 'mints'> = {}, maxEntries = 1000) {
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  const mints: Array<{ host: string; identity: CloudIdentity; signal: AbortSignal }> = [];
  const b = { ...behaviour, mints };
  const keychain = new CloudKeychain({
    factories: { ecr: (o) => testProvider(o, clock, b) },
    now: () => clock.now,
    maxEntries,
  });
  return { keychain, clock, mints, behaviour: b };
}

describe('reuseUntil', () => {
  it('is 10% of the lifetime before expiry, at most 5 minutes', () => {
    assert.equal(reuseUntil(0, 20_000), 18_000);
    assert.equal(reuseUntil(0, 12 * 60 * MINUTE), 12 * 60 * MINUTE - 5 * MINUTE);
  });
});

describe('CloudKeychain', () => {
  it('reuses a credential per (provider, registry, identity) until shortly before it expires', async () => {
    const { keychain, clock, mints } = setup({ lifetimeMs: 20_000 });
    const first = await keychain.credential('ecr', 'a.test.example', AMBIENT);
    assert.equal((await keychain.credential('ecr', 'a.test.example', AMBIENT)).password, first.password);
    assert.equal(mints.length, 1);
    // another registry, another identity: their own credentials
    await keychain.credential('ecr', 'b.test.example', AMBIENT);
    await keychain.credential('ecr', 'a.test.example', {
      kind: 'secret',
      namespace: 'ns',
      name: 'aws',
      data: { aws_access_key_id: Buffer.from('AKIA') },
    });
    assert.equal(mints.length, 3);
    clock.now += 17_999;
    assert.equal((await keychain.credential('ecr', 'a.test.example', AMBIENT)).password, first.password);
    clock.now += 1; // 2 s (10% of 20 s) before expiry
    assert.notEqual((await keychain.credential('ecr', 'a.test.example', AMBIENT)).password, first.password);
    assert.equal(mints.length, 4);
  });

  it('mints once for concurrent askers of one key', async () => {
    let open!: () => void;
    const { keychain, mints } = setup({ gate: new Promise<void>((resolve) => (open = resolve)) });
    const askers = Array.from({ length: 20 }, () => keychain.credential('ecr', 'a.test.example', AMBIENT));
    open();
    const results = await Promise.all(askers);
    assert.equal(mints.length, 1);
    assert.ok(results.every((r) => r.password === results[0]!.password));
  });

  it('remembers a failure briefly, then tries again', async () => {
    const { keychain, clock, mints, behaviour } = setup({ fail: 'no metadata server at 169.254.169.254' });
    await assert.rejects(keychain.credential('ecr', 'a.test.example', AMBIENT), (err: unknown) => {
      assert.ok(err instanceof KeychainError);
      assert.equal(err.message, 'no metadata server at 169.254.169.254');
      assert.equal(err.cached, false);
      return true;
    });
    await assert.rejects(keychain.credential('ecr', 'a.test.example', AMBIENT), (err: unknown) => {
      assert.ok(err instanceof KeychainError && err.cached);
      return true;
    });
    assert.equal(mints.length, 1);
    clock.now += 10_000;
    delete behaviour.fail;
    await keychain.credential('ecr', 'a.test.example', AMBIENT);
    assert.equal(mints.length, 2);
  });

  it('keeps at most maxEntries credentials, dropping the least recently used', async () => {
    const { keychain, mints } = setup({}, 2);
    await keychain.credential('ecr', 'a.test.example', AMBIENT);
    await keychain.credential('ecr', 'b.test.example', AMBIENT);
    await keychain.credential('ecr', 'a.test.example', AMBIENT); // a is now the most recent
    await keychain.credential('ecr', 'c.test.example', AMBIENT); // drops b
    assert.equal(keychain.cachedCount, 2);
    await keychain.credential('ecr', 'a.test.example', AMBIENT);
    assert.equal(mints.length, 3);
    await keychain.credential('ecr', 'b.test.example', AMBIENT);
    assert.equal(mints.length, 4);
  });

  it("an asker's abort rejects only that asker; the shared mint goes on for the others", async () => {
    let open!: () => void;
    const { keychain, mints } = setup({ gate: new Promise<void>((resolve) => (open = resolve)) });
    const controller = new AbortController();
    const aborted = keychain.credential('ecr', 'a.test.example', AMBIENT, controller.signal);
    const patient = keychain.credential('ecr', 'a.test.example', AMBIENT);
    controller.abort(new Error('fetch timed out'));
    await assert.rejects(aborted, /fetch timed out/);
    open();
    assert.equal((await patient).password, 'secret-1');
    assert.equal(mints.length, 1);
    // The mint itself runs under the keychain's own deadline, not the first asker's signal.
    assert.equal(mints[0]!.signal.aborted, false);
  });

  it('mintFresh never answers from the cache', async () => {
    const { keychain, mints } = setup();
    await keychain.credential('ecr', 'a.test.example', AMBIENT);
    const fresh = await keychain.mintFresh('ecr', 'a.test.example', AMBIENT);
    assert.equal(fresh.password, 'secret-2');
    assert.equal(mints.length, 2);
  });

  it('rebuilds providers with the configured extra hosts', () => {
    const { keychain } = setup();
    assert.equal(keychain.providerServing('127.0.0.1:5000'), undefined);
    keychain.configure({ extraHosts: { ecr: ['127.0.0.1:5000'], gcr: [], acr: [] } });
    assert.equal(keychain.providerServing('127.0.0.1:5000'), 'ecr');
    assert.equal(keychain.providerServing('a.test.example'), 'ecr');
    assert.equal(keychain.providerForHost('a.test.example', ['gcr']), undefined);
  });

  it('hands every provider the configured proxy and CAs, and rebuilds them only when those change', () => {
    const built: ProviderFactoryOptions[] = [];
    const factory = (o: ProviderFactoryOptions): CloudRegistryProvider => {
      built.push(o);
      return testProvider(o, { now: 0 }, { mints: [] });
    };
    const keychain = new CloudKeychain({ factories: { ecr: factory, gcr: factory, acr: factory } });
    const none = { ecr: [], gcr: [], acr: [] };
    assert.equal(built.length, 3);
    assert.ok(built.every((o) => o.proxy === undefined && o.caCerts === undefined));
    const proxied = {
      extraHosts: none,
      caCerts: 'PEM',
      proxy: { httpsProxy: 'http://proxy.corp:3128', noProxy: '.internal' },
    };
    keychain.configure(proxied);
    const sts = new URL('https://sts.amazonaws.com/');
    assert.equal(built.length, 6);
    // Read through a function: an assertion would otherwise narrow the getter's type for the rest.
    const proxyNow = () => keychain.proxy;
    assert.equal(proxyNow(), built[5]?.proxy);
    for (const o of built.slice(3)) {
      assert.equal(o.caCerts, 'PEM');
      assert.equal(o.proxy?.display, 'http://proxy.corp:3128');
      assert.ok(o.proxy?.agentFor(sts), 'STS goes through the proxy');
      assert.equal(o.proxy?.agentFor(new URL('https://x.internal/')), undefined, 'noProxy applies');
    }
    keychain.configure({ ...proxied, proxy: { ...proxied.proxy } });
    assert.equal(built.length, 6, 'same settings: providers kept');
    keychain.configure({ ...proxied, proxy: { httpsProxy: '', noProxy: '.internal' } });
    assert.equal(built.length, 9, 'proxy removed: providers rebuilt');
    assert.ok(built.slice(6).every((o) => o.proxy === undefined));
    assert.equal(proxyNow(), undefined);
    // The configuration watch reports an unusable proxy from the one the providers hold.
    keychain.configure({ ...proxied, proxy: { httpsProxy: 'https://proxy.corp:3128' } });
    assert.equal(proxyNow(), built.at(-1)?.proxy);
    assert.match(proxyNow()?.problem ?? '', /^httpsProxy: only http:\/\/ proxies are supported/);
  });

  it('identity keys: equal for the same Secret data, different when the data or the Secret differs', () => {
    const secret = (name: string, value: string): CloudIdentity => ({
      kind: 'secret',
      namespace: 'ns',
      name,
      data: { key: Buffer.from(value) },
    });
    assert.equal(identityKey(secret('a', 'x')), identityKey(secret('a', 'x')));
    assert.notEqual(identityKey(secret('a', 'x')), identityKey(secret('a', 'y')));
    assert.notEqual(identityKey(secret('a', 'x')), identityKey(secret('b', 'x')));
    assert.equal(identityKey(AMBIENT), 'ambient');
    assert.doesNotMatch(identityKey(secret('a', 'x')), /x$/);
  });
});
