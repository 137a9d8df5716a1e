import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  holdsCredentialFor,
  mintedSecretContent,
  mintRetryDelayMs,
  planRegistryToken,
  refreshAt,
  tallyRegistryTokens,
  type PlanInput,
  type SecretView,
  type ValidToken,
} from './registry-token-plan.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const HOUR = 3_600_000;
const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';

function input(
  overrides: Partial<PlanInput> = {},
  spec: Partial<PlanInput['token']['spec']> = {},
): PlanInput {
  return {
    token: {
      namespace: 'secrets-ns',
      name: 'ecr',
      uid: 'token-uid',
      spec: { provider: 'ecr', registry: REGISTRY, secretName: 'ecr-creds', ...spec },
    },
    registryTokenNamespaces: new Set(['secrets-ns']),
    configSecret: 'regcred-operator/regcred-operator-config',
    servesHost: (provider, host) => provider === 'ecr' && host.includes('.dkr.ecr.'),
    nowMs: NOW,
    ...overrides,
  };
}

/** The Secret a mint at `mintedAt` living `lifetime` leaves, owned by the token. */
function minted(mintedAt: number, lifetime: number, plan = planRegistryToken(input())): SecretView {
  assert.equal(plan.action, 'mint');
  const token = (plan as { token: ValidToken }).token;
  const content = mintedSecretContent(
    token,
    { username: 'AWS', password: 'pw', expiresAt: new Date(mintedAt + lifetime) },
    mintedAt,
  );
  return {
    type: 'kubernetes.io/dockerconfigjson',
    uid: 'secret-uid',
    resourceVersion: '7',
    annotations: content.annotations,
    ownerReferences: [{ uid: 'token-uid', controller: true }],
    data: content.data,
  };
}

describe('planRegistryToken', () => {
  it('mints when the Secret does not exist', () => {
    const plan = planRegistryToken(input());
    assert.equal(plan.action, 'mint');
    assert.equal(plan.action === 'mint' && plan.why, 'Secret ecr-creds does not exist');
    assert.equal(plan.action === 'mint' && plan.token.host, REGISTRY);
  });

  it('keeps a fresh Secret until refreshBefore (default 1h) before expiry', () => {
    const target = minted(NOW - HOUR, 12 * HOUR);
    const plan = planRegistryToken(input({ target }));
    assert.equal(plan.action, 'keep');
    assert.equal(plan.action === 'keep' && plan.refreshAtMs, NOW - HOUR + 11 * HOUR);
    assert.deepEqual(plan.action === 'keep' && plan.current, {
      refreshedAtMs: NOW - HOUR,
      expiresAtMs: NOW + 11 * HOUR,
    });
    const due = planRegistryToken(input({ target, nowMs: NOW + 10 * HOUR }));
    assert.equal(due.action === 'mint' && due.why, 'the credential is due for renewal');
  });

  it('renews at half the lifetime when that is shorter than refreshBefore, and honours spec.refreshBefore', () => {
    assert.equal(refreshAt({ refreshedAtMs: 0, expiresAtMs: 20_000 }, HOUR), 10_000);
    assert.equal(refreshAt({ refreshedAtMs: 0, expiresAtMs: 12 * HOUR }, 30 * 60_000), 11.5 * HOUR);
    // never sooner than 5 s after minting
    assert.equal(refreshAt({ refreshedAtMs: 0, expiresAtMs: 2_000 }, HOUR), 5_000);
    const target = minted(NOW, 12 * HOUR);
    const plan = planRegistryToken(input({ target, nowMs: NOW + 9 * HOUR }, { refreshBefore: '3h' }));
    assert.equal(plan.action, 'mint');
  });

  it('mints again when the provider, registry or credentials Secret changed, or the data was edited', () => {
    const target = minted(NOW, 12 * HOUR);
    const other = planRegistryToken(
      input({ target }, { registry: '210987654321.dkr.ecr.eu-west-1.amazonaws.com' }),
    );
    assert.equal(other.action === 'mint' && other.why, 'the provider, registry or identity changed');
    const edited = {
      ...target,
      data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
    };
    assert.equal(
      planRegistryToken(input({ target: edited })).action === 'mint' &&
        (planRegistryToken(input({ target: edited })) as { why: string }).why,
      'the Secret does not hold the credential',
    );
  });

  it('never overwrites a Secret it does not control', () => {
    const target = { ...minted(NOW, HOUR), ownerReferences: [{ uid: 'someone-else', controller: true }] };
    const plan = planRegistryToken(input({ target }));
    assert.equal(plan.action, 'refuse');
    assert.equal(plan.action === 'refuse' && plan.reason, 'SecretNotOwned');
    assert.match(
      plan.action === 'refuse' ? plan.message : '',
      /Secret ecr-creds exists and is not controlled by this RegistryToken/,
    );
  });

  it("refuses the operator's identity outside registryTokenNamespaces, and deletes a Secret it minted there", () => {
    const target = minted(NOW, HOUR);
    const plan = planRegistryToken(input({ target, registryTokenNamespaces: new Set(['regcred-operator']) }));
    assert.equal(plan.action, 'refuse');
    if (plan.action !== 'refuse') return;
    assert.equal(plan.reason, 'IdentityNotAllowed');
    assert.equal(
      plan.message,
      "spec.credentialsSecretRef is not set, so the operator's own cloud identity would mint the credential, " +
        'but namespace secrets-ns is not listed in registryTokenNamespaces of the operator configuration Secret ' +
        'regcred-operator/regcred-operator-config (allowed: regcred-operator); set spec.credentialsSecretRef to a ' +
        'Secret of this namespace holding cloud credentials',
    );
    assert.deepEqual(plan.deleteOwned, { name: 'ecr-creds', uid: 'secret-uid', resourceVersion: '7' });
  });

  it('with credentialsSecretRef: any namespace, but the Secret must exist', () => {
    const elsewhere = { registryTokenNamespaces: new Set(['regcred-operator']) };
    const missing = planRegistryToken(input(elsewhere, { credentialsSecretRef: { name: 'aws' } }));
    assert.equal(missing.action === 'refuse' && missing.reason, 'CredentialsSecretMissing');
    assert.equal(
      missing.action === 'refuse' && missing.message,
      'Secret aws (spec.credentialsSecretRef) not found in namespace secrets-ns',
    );
    const present = planRegistryToken(
      input(
        { ...elsewhere, credentialsSecret: { uid: 'c', resourceVersion: '1' } },
        { credentialsSecretRef: { name: 'aws' } },
      ),
    );
    assert.equal(present.action, 'mint');
  });

  it('a changed credentials Secret mints again', () => {
    const withSecret = (rv: string) =>
      input(
        { credentialsSecret: { uid: 'c', resourceVersion: rv } },
        { credentialsSecretRef: { name: 'aws' } },
      );
    const target = minted(NOW, 12 * HOUR, planRegistryToken(withSecret('1')));
    assert.equal(planRegistryToken({ ...withSecret('1'), target }).action, 'keep');
    assert.equal(planRegistryToken({ ...withSecret('2'), target }).action, 'mint');
  });

  const invalid: Array<[string, Partial<PlanInput['token']['spec']>, RegExp]> = [
    ['unknown provider', { provider: 'quay' }, /spec.provider must be one of ecr, gcr, acr/],
    ['malformed registry', { registry: 'https://x' }, /spec.registry "https:\/\/x" is not a registry host/],
    [
      'a host the provider does not serve',
      { registry: 'registry.example.com' },
      /spec.registry registry.example.com is not a ecr registry host \(<account>.dkr.ecr.<region>.amazonaws.com, or a host listed for ecr in iaasKeychainHosts/,
    ],
    ['bad refreshBefore', { refreshBefore: 'soon' }, /spec.refreshBefore "soon" must be a positive duration/],
    ['bad secretName', { secretName: 'Not_A_Name' }, /spec.secretName "Not_A_Name" is not a Secret name/],
  ];
  for (const [what, spec, message] of invalid) {
    it(`refuses ${what} (InvalidSpec), leaving the Secret alone`, () => {
      const plan = planRegistryToken(input({ target: minted(NOW, HOUR) }, spec));
      assert.equal(plan.action, 'refuse');
      if (plan.action !== 'refuse') return;
      assert.equal(plan.reason, 'InvalidSpec');
      assert.match(plan.message, message);
      assert.equal(plan.deleteOwned, undefined);
    });
  }
});

describe('mintedSecretContent', () => {
  it('writes a dockerconfigjson for exactly the registry, with expiry annotations', () => {
    const plan = planRegistryToken(input());
    if (plan.action !== 'mint') throw new Error('expected mint');
    const content = mintedSecretContent(
      plan.token,
      { username: 'AWS', password: 'pw', expiresAt: new Date(NOW + 12 * HOUR) },
      NOW,
    );
    const doc: unknown = JSON.parse(
      Buffer.from(content.data['.dockerconfigjson']!, 'base64').toString('utf8'),
    );
    assert.deepEqual(doc, {
      auths: {
        [REGISTRY]: { username: 'AWS', password: 'pw', auth: Buffer.from('AWS:pw').toString('base64') },
      },
    });
    assert.equal(content.annotations['regcred.dev/expires-at'], '2026-01-02T00:00:00Z');
    assert.equal(content.annotations['regcred.dev/refreshed-at'], '2026-01-01T12:00:00Z');
    assert.ok(holdsCredentialFor({ type: 'kubernetes.io/dockerconfigjson', data: content.data }, REGISTRY));
    assert.ok(!holdsCredentialFor({ type: 'Opaque', data: content.data }, REGISTRY));
  });
});

describe('mintRetryDelayMs', () => {
  it('starts at 5 s, doubles, and stops at 5 min', () => {
    assert.deepEqual(
      [1, 2, 3, 7, 8, 50].map(mintRetryDelayMs),
      [5_000, 10_000, 20_000, 300_000, 300_000, 300_000],
    );
  });
});

describe('tallyRegistryTokens', () => {
  const ok = { type: 'ReconcileSucceeded', status: 'True' };
  const failed = { type: 'ReconcileFailed', status: 'True' };
  const cases: Array<{
    name: string;
    statuses: Parameters<typeof tallyRegistryTokens>[0];
    want: ReturnType<typeof tallyRegistryTokens>;
  }> = [
    { name: 'no tokens', statuses: [], want: { ready: 0, notReady: 0, earliestExpiryMs: undefined } },
    {
      name: 'a token not reconciled yet has no status',
      statuses: [undefined, {}],
      want: { ready: 0, notReady: 2, earliestExpiryMs: undefined },
    },
    {
      name: 'ready and failing; the earliest expiry of all, the failing one keeping its old credential',
      statuses: [
        { conditions: [ok], expiresAt: '2026-01-01T13:00:00Z' },
        { conditions: [failed], expiresAt: '2026-01-01T12:30:00Z' },
        { conditions: [ok], expiresAt: '2026-01-01T14:00:00Z' },
      ],
      want: { ready: 2, notReady: 1, earliestExpiryMs: Date.parse('2026-01-01T12:30:00Z') },
    },
    {
      name: 'a ReconcileSucceeded condition that is not True is not ready; an unparsable expiry is skipped',
      statuses: [{ conditions: [{ type: 'ReconcileSucceeded', status: 'False' }], expiresAt: 'soon' }],
      want: { ready: 0, notReady: 1, earliestExpiryMs: undefined },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(tallyRegistryTokens(c.statuses), c.want));
  }
});
