import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keychainSettings, type KeychainConfigKey } from './keychain-config.js';
import { keychainAnswer } from './keychain-fetch.js';
import { CloudKeychain } from './keychain.js';

const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';

function source(values: Partial<Record<KeychainConfigKey, string>>, fail?: string) {
  let mints = 0;
  const keychain = new CloudKeychain({
    factories: {
      ecr: ({ extraHosts }) => ({
        name: 'ecr',
        servesHost: (host) => host.endsWith('.amazonaws.com') || extraHosts.includes(host),
        mint: async () => {
          mints++;
          if (fail) throw new Error(fail);
          return { username: 'AWS', password: 'minted', expiresAt: new Date(Date.now() + 3_600_000) };
        },
      }),
    },
  });
  const settings = keychainSettings({ values, operatorNamespace: 'op' });
  keychain.configure({ extraHosts: settings.extraHosts });
  return { keychain, settings: async () => settings, mints: () => mints };
}

describe('keychainAnswer', () => {
  it('is silent for a registry no provider serves', async () => {
    assert.deepEqual(await keychainAnswer(source({ iaasKeychains: 'ecr' }), 'ns', 'registry.example.com'), {
      kind: 'none',
    });
  });

  it('is silent for a provider registry while keychains are off by default', async () => {
    const s = source({});
    assert.deepEqual(await keychainAnswer(s, 'ns', ECR), { kind: 'none' });
    assert.equal(s.mints(), 0);
  });

  it('mints with the operator identity for an enabled provider in an allowed namespace', async () => {
    const s = source({ iaasKeychains: 'ecr', iaasKeychainNamespaces: 'team-a' });
    assert.deepEqual(await keychainAnswer(s, 'team-a', ECR), {
      kind: 'credential',
      provider: 'ecr',
      username: 'AWS',
      password: 'minted',
    });
    assert.deepEqual(await keychainAnswer(s, 'team-b', ECR), {
      kind: 'none',
      note: 'the ecr keychain was not used: namespace team-b is not listed in iaasKeychainNamespaces',
    });
    assert.equal(s.mints(), 1);
  });

  it('serves a host listed in iaasKeychainHosts (how tests reach a loopback registry), with :443 dropped', async () => {
    const s = source({ iaasKeychains: 'ecr', iaasKeychainHosts: 'ecr=127.0.0.1:5000' });
    assert.equal((await keychainAnswer(s, 'ns', '127.0.0.1:5000')).kind, 'credential');
    assert.equal((await keychainAnswer(s, 'ns', '127.0.0.1:5001')).kind, 'none');
    assert.equal((await keychainAnswer(s, 'ns', `${ECR}:443`)).kind, 'credential');
  });

  it('reports a failed mint with its provider, and a repeated one as remembered', async () => {
    const s = source({ iaasKeychains: 'ecr' }, 'IMDS: no answer from 169.254.169.254 within 1000 ms');
    assert.deepEqual(await keychainAnswer(s, 'ns', ECR), {
      kind: 'failed',
      provider: 'ecr',
      error: 'IMDS: no answer from 169.254.169.254 within 1000 ms',
    });
    assert.deepEqual(await keychainAnswer(s, 'ns', ECR), {
      kind: 'failed',
      provider: 'ecr',
      error: 'IMDS: no answer from 169.254.169.254 within 1000 ms (remembered from a failure moments ago)',
    });
    assert.equal(s.mints(), 1);
  });
});
