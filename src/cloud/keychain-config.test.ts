import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keychainAllowed, keychainSettings, normalizeHost, parseKeychainList } from './keychain-config.js';

describe('parseKeychainList', () => {
  const cases: Array<[string, string[] | RegExp]> = [
    ['', []],
    ['ecr', ['ecr']],
    // kapp-controller's IMGPKG_ACTIVE_KEYCHAINS names and ours, any case, deduplicated
    ['gke,aks,ecr', ['acr', 'ecr', 'gcr']],
    [' GCR , gke ,, acr ', ['acr', 'gcr']],
    ['ecr,github', /unknown keychain "github"; known: ecr, gcr \(or gke\), acr \(or aks\)/],
  ];
  for (const [text, expected] of cases) {
    it(JSON.stringify(text), () => {
      const parsed = parseKeychainList(text);
      if (expected instanceof RegExp) {
        assert.equal(parsed.ok, false);
        assert.match(parsed.ok ? '' : parsed.error, expected);
      } else assert.deepEqual(parsed, { ok: true, names: expected });
    });
  }
});

describe('normalizeHost', () => {
  const cases: Array<[string, string | undefined]> = [
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com', '123456789012.dkr.ecr.eu-west-1.amazonaws.com'],
    ['Europe-Docker.PKG.dev', 'europe-docker.pkg.dev'],
    ['127.0.0.1:5000', '127.0.0.1:5000'],
    ['myregistry.azurecr.io:443', 'myregistry.azurecr.io'],
    ['host:0', undefined],
    ['host:65536', undefined],
    ['*.gcr.io', undefined],
    ['https://gcr.io', undefined],
    ['gcr.io/path', undefined],
    ['a..b', undefined],
    ['', undefined],
    ['a'.repeat(256), undefined],
  ];
  for (const [text, expected] of cases) {
    it(`${JSON.stringify(text.slice(0, 40))} -> ${expected}`, () =>
      assert.equal(normalizeHost(text), expected));
  }
});

describe('keychainSettings', () => {
  const base = { operatorNamespace: 'regcred-operator' };

  it('is off by default; registryTokenNamespaces defaults to the operator namespace', () => {
    const s = keychainSettings({ ...base, values: {} });
    assert.deepEqual([...s.keychains], []);
    assert.equal(s.keychainsFrom, 'default');
    assert.equal(s.keychainNamespaces, undefined);
    assert.deepEqual([...s.registryTokenNamespaces], ['regcred-operator']);
    assert.deepEqual(s.problems, []);
  });

  it('takes --iaas-keychains when the Secret has no iaasKeychains key', () => {
    const s = keychainSettings({ ...base, values: {}, flag: ['ecr'] });
    assert.deepEqual([...s.keychains], ['ecr']);
    assert.equal(s.keychainsFrom, 'flag');
  });

  it('a present iaasKeychains key replaces the flag, and a blank one turns keychains off', () => {
    const on = keychainSettings({ ...base, values: { iaasKeychains: 'gke' }, flag: ['ecr'] });
    assert.deepEqual([...on.keychains], ['gcr']);
    assert.equal(on.keychainsFrom, 'config');
    const off = keychainSettings({ ...base, values: { iaasKeychains: ' ' }, flag: ['ecr'] });
    assert.deepEqual([...off.keychains], []);
    assert.equal(off.keychainsFrom, 'config');
  });

  it('an invalid iaasKeychains turns keychains off and says why (it never falls back to the flag)', () => {
    const s = keychainSettings({ ...base, values: { iaasKeychains: 'ecr,nope' }, flag: ['ecr'] });
    assert.deepEqual([...s.keychains], []);
    assert.deepEqual(s.problems, [
      'iaasKeychains: unknown keychain "nope"; known: ecr, gcr (or gke), acr (or aks)',
    ]);
  });

  it('reads iaasKeychainHosts per provider (aliases, repeats, :443 dropped) and reports bad entries', () => {
    const s = keychainSettings({
      ...base,
      values: {
        iaasKeychainHosts:
          'gke=127.0.0.1:5000,ecr=ecr.internal,ecr=ECR.internal:443,aks=x.io,bad,ecr=a/b,foo=h',
      },
    });
    assert.deepEqual(s.extraHosts, { ecr: ['ecr.internal'], gcr: ['127.0.0.1:5000'], acr: ['x.io'] });
    assert.deepEqual(s.problems, [
      'iaasKeychainHosts: "bad" must be provider=host[:port] with provider ecr, gcr (or gke), acr (or aks)',
      'iaasKeychainHosts: "ecr=a/b" does not name a host[:port]',
      'iaasKeychainHosts: "foo=h" must be provider=host[:port] with provider ecr, gcr (or gke), acr (or aks)',
    ]);
  });

  it('reads the namespace lists; a blank list means the default', () => {
    const s = keychainSettings({
      ...base,
      values: { iaasKeychainNamespaces: 'team-a, team-b', registryTokenNamespaces: 'secrets-ns,Bad_NS' },
    });
    assert.deepEqual([...s.keychainNamespaces!], ['team-a', 'team-b']);
    assert.deepEqual([...s.registryTokenNamespaces], ['secrets-ns']);
    assert.deepEqual(s.problems, ['registryTokenNamespaces: "Bad_NS" is not a namespace name']);
    const blank = keychainSettings({
      ...base,
      values: { iaasKeychainNamespaces: '', registryTokenNamespaces: ' ' },
    });
    assert.equal(blank.keychainNamespaces, undefined);
    assert.deepEqual([...blank.registryTokenNamespaces], ['regcred-operator']);
  });

  it('bounds list sizes', () => {
    const many = Array.from({ length: 1001 }, (_, i) => `ns-${i}`).join(',');
    const s = keychainSettings({ ...base, values: { iaasKeychainNamespaces: many } });
    assert.deepEqual([...s.keychainNamespaces!], []);
    assert.deepEqual(s.problems, ['iaasKeychainNamespaces: more than 1000 entries']);
  });
});

describe('keychainAllowed', () => {
  const settings = keychainSettings({
    operatorNamespace: 'op',
    values: { iaasKeychains: 'ecr', iaasKeychainNamespaces: 'team-a' },
  });
  it('allows an enabled provider in a listed namespace only', () => {
    assert.deepEqual(keychainAllowed(settings, 'ecr', 'team-a'), { ok: true });
    assert.deepEqual(keychainAllowed(settings, 'ecr', 'team-b'), {
      ok: false,
      reason: 'namespace team-b is not listed in iaasKeychainNamespaces',
    });
    assert.deepEqual(keychainAllowed(settings, 'gcr', 'team-a'), {
      ok: false,
      reason: 'the gcr keychain is not enabled (iaasKeychains / --iaas-keychains)',
    });
  });
});
