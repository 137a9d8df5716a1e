// ACR provider against the loopback Azure fakes (IMDS, Entra ID, an HTTPS
// registry front with /oauth2/exchange) and, at the end, a real docker-registry
// behind that front.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { startAzureFake, type AzureFake } from '../../e2e/fixtures/cloud/azure-fake.js';
import { closedPort, registryStatus, startSilentServer } from '../../e2e/fixtures/cloud/net.js';
import { startRegistry } from '../../e2e/harness/registry.js';
import { ACR_REFRESH_TOKEN_DEFAULT_LIFETIME_MS, ACR_USERNAME, createAcrProvider } from './azure.js';
import type { CloudEnvironment, CloudIdentity } from './types.js';

const AMBIENT: CloudIdentity = { kind: 'ambient' };
const signal = () => new AbortController().signal;
const jwtExp = (token: string) =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;

describe('ACR servesHost', () => {
  const provider = createAcrProvider({}, { extraHosts: ['127.0.0.1:8443'] });
  const cases: Array<[string, boolean]> = [
    ['myregistry.azurecr.io', true],
    ['myregistry.azurecr.cn', true],
    ['myregistry.azurecr.us', true],
    ['myregistry.azurecr.io:443', true],
    ['myregistry.azurecr.io:5000', false],
    ['azurecr.io', false],
    ['a.b.azurecr.io', false],
    ['myregistry.azurecr.io.evil.example', false],
    ['myregistryazurecr.io', false],
    ['myregistry.azurecr.de', false],
    ['127.0.0.1:8443', true],
    ['127.0.0.1', false],
  ];
  for (const [host, want] of cases) {
    it(`${host} → ${want}`, () => assert.equal(provider.servesHost(host), want));
  }
});

describe('ACR provider against the Azure fakes', () => {
  let fake: AzureFake;
  let dir: string;
  let tokenFile: string;
  before(async () => {
    fake = await startAzureFake();
    dir = mkdtempSync(join(tmpdir(), 'regcred-azure-test-'));
    tokenFile = join(dir, 'azure-identity-token');
    writeFileSync(tokenFile, fake.federatedToken + '\n');
  });
  after(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const provider = (env: CloudEnvironment, extra: Parameters<typeof createAcrProvider>[1] = {}) =>
    createAcrProvider(
      { AZURE_AUTHORITY_HOST: fake.authorityHost, ...env },
      { extraHosts: [fake.registryHost], caCerts: fake.caCert, ...extra },
    );
  const workloadEnv = () => ({
    AZURE_FEDERATED_TOKEN_FILE: tokenFile,
    AZURE_CLIENT_ID: fake.clientId,
    AZURE_TENANT_ID: fake.tenantId,
  });
  const secretIdentity = (data: Record<string, string>): CloudIdentity => ({
    kind: 'secret',
    namespace: 'team-b',
    name: 'sp',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v)])),
  });

  it('workload identity: federated token → Entra ID → /oauth2/exchange → refresh token until its exp', async () => {
    const imds = fake.imdsRequests;
    const credential = await provider(workloadEnv()).mint(fake.registryHost, AMBIENT, signal());
    assert.deepEqual(fake.rejections, []);
    assert.equal(credential.username, ACR_USERNAME);
    assert.equal(credential.password, fake.issuedRefreshTokens.at(-1));
    assert.equal(credential.expiresAt.getTime(), jwtExp(credential.password) * 1000);
    const form = fake.exchangeForms.at(-1)!;
    assert.equal(form.grant_type, 'access_token');
    assert.equal(form.service, fake.registryHost);
    assert.equal(form.tenant, fake.tenantId);
    assert.equal(fake.imdsRequests, imds, 'IMDS is not asked when workload identity is configured');
  });

  it('workload identity reports a rejected federated token without quoting it', async () => {
    const wrong = join(dir, 'wrong-token');
    writeFileSync(wrong, 'eyJhbGciOi.not-the-projected-token.sig');
    await assert.rejects(
      provider({ ...workloadEnv(), AZURE_FEDERATED_TOKEN_FILE: wrong }).mint(
        fake.registryHost,
        AMBIENT,
        signal(),
      ),
      (error: Error) => {
        assert.match(error.message, /HTTP 401 \(invalid_client: AADSTS700213/);
        assert.match(error.message, /\(workload identity\)/);
        assert.doesNotMatch(error.message, /not-the-projected-token/);
        return true;
      },
    );
  });

  it('workload identity explains missing settings and files', async () => {
    await assert.rejects(
      provider({ AZURE_FEDERATED_TOKEN_FILE: tokenFile, AZURE_TENANT_ID: fake.tenantId }).mint(
        fake.registryHost,
        AMBIENT,
        signal(),
      ),
      /AZURE_FEDERATED_TOKEN_FILE needs AZURE_CLIENT_ID and AZURE_TENANT_ID/,
    );
    await assert.rejects(
      provider({ ...workloadEnv(), AZURE_FEDERATED_TOKEN_FILE: join(dir, 'absent') }).mint(
        fake.registryHost,
        AMBIENT,
        signal(),
      ),
      /workload identity: cannot open .*absent \(ENOENT\)/,
    );
  });

  it('client secret from the environment', async () => {
    const credential = await provider({
      AZURE_CLIENT_SECRET: fake.clientSecret,
      AZURE_CLIENT_ID: fake.clientId,
      AZURE_TENANT_ID: fake.tenantId,
    }).mint(fake.registryHost, AMBIENT, signal());
    assert.equal(credential.password, fake.issuedRefreshTokens.at(-1));
  });

  it('managed identity through IMDS (Metadata: true), tenant taken from the token', async () => {
    const start = fake.imdsRequests;
    const credential = await provider({ AZURE_POD_IDENTITY_AUTHORITY_HOST: fake.imdsHost }).mint(
      fake.registryHost,
      AMBIENT,
      signal(),
    );
    assert.equal(fake.imdsRequests - start, 1);
    assert.deepEqual(
      fake.rejections.filter((r) => r.startsWith('imds')),
      [],
    );
    assert.equal(credential.password, fake.issuedRefreshTokens.at(-1));
    assert.equal(fake.exchangeForms.at(-1)!.tenant, fake.tenantId);
  });

  it('does not cache successes: every mint exchanges again', async () => {
    const p = provider(workloadEnv());
    const start = fake.exchangeRequests;
    const first = await p.mint(fake.registryHost, AMBIENT, signal());
    const second = await p.mint(fake.registryHost, AMBIENT, signal());
    assert.equal(fake.exchangeRequests - start, 2);
    assert.notEqual(first.password, second.password);
  });

  it('remembers an IMDS failure briefly, then asks again', async () => {
    let clock = Date.now();
    const p = provider({ AZURE_POD_IDENTITY_AUTHORITY_HOST: fake.imdsHost }, { now: () => clock });
    fake.imdsMode = 'error';
    try {
      const start = fake.imdsRequests;
      await assert.rejects(p.mint(fake.registryHost, AMBIENT, signal()), /Azure IMDS .*: HTTP 500/);
      await assert.rejects(p.mint(fake.registryHost, AMBIENT, signal()), /remembered for 10 s/);
      assert.equal(fake.imdsRequests - start, 1);
      fake.imdsMode = 'ok';
      clock += 10_000;
      await p.mint(fake.registryHost, AMBIENT, signal());
      assert.equal(fake.imdsRequests - start, 2);
    } finally {
      fake.imdsMode = 'ok';
    }
  });

  it('service principal from a Secret (tenantId, clientId, clientSecret)', async () => {
    const start = fake.imdsRequests;
    const credential = await provider({}).mint(
      fake.registryHost,
      secretIdentity({ tenantId: fake.tenantId, clientId: fake.clientId, clientSecret: fake.clientSecret }),
      signal(),
    );
    assert.equal(credential.password, fake.issuedRefreshTokens.at(-1));
    assert.equal(fake.imdsRequests, start, 'a Secret identity never touches IMDS');
  });

  it('a wrong client secret is reported without the secret', async () => {
    const wrong = 'wr0ng-Secret-Value-1234';
    await assert.rejects(
      provider({}).mint(
        fake.registryHost,
        secretIdentity({ tenantId: fake.tenantId, clientId: fake.clientId, clientSecret: wrong }),
        signal(),
      ),
      (error: Error) => {
        assert.match(error.message, /Secret team-b\/sp\): HTTP 401 \(invalid_client: AADSTS7000215/);
        assert.ok(!error.message.includes(wrong));
        return true;
      },
    );
  });

  it('refuses Secret fields that are missing or would change the authority path, without a request', async () => {
    const start = fake.authorityRequests;
    const p = provider({});
    await assert.rejects(
      p.mint(
        fake.registryHost,
        secretIdentity({ tenantId: fake.tenantId, clientId: fake.clientId }),
        signal(),
      ),
      /Secret team-b\/sp has no data key clientSecret/,
    );
    await assert.rejects(
      p.mint(
        fake.registryHost,
        secretIdentity({ tenantId: '../evil', clientId: fake.clientId, clientSecret: 'x' }),
        signal(),
      ),
      /tenant id is not a GUID or domain name/,
    );
    await assert.rejects(
      p.mint(
        fake.registryHost,
        secretIdentity({ tenantId: fake.tenantId, clientId: 'a/b?c', clientSecret: 'x' }),
        signal(),
      ),
      /client id is not a GUID/,
    );
    assert.equal(fake.authorityRequests, start);
  });

  it('refuses a registry it does not serve without asking anyone', async () => {
    const start = fake.authorityRequests + fake.exchangeRequests;
    await assert.rejects(
      provider(workloadEnv()).mint('docker.io', AMBIENT, signal()),
      /not an Azure Container Registry/,
    );
    assert.equal(fake.authorityRequests + fake.exchangeRequests, start);
  });

  it('reports a refused exchange without the access token', async () => {
    const expired = await startAzureFake({ accessTokenLifetimeSeconds: 0 });
    try {
      const p = createAcrProvider(
        { AZURE_POD_IDENTITY_AUTHORITY_HOST: expired.imdsHost },
        { extraHosts: [expired.registryHost], caCerts: expired.caCert },
      );
      await assert.rejects(p.mint(expired.registryHost, AMBIENT, signal()), (error: Error) => {
        assert.match(error.message, /ACR token exchange at 127\.0\.0\.1:\d+: HTTP 401/);
        assert.doesNotMatch(error.message, /eyJ/);
        return true;
      });
    } finally {
      await expired.stop();
    }
  });

  it('a refresh token without exp is taken to live 3 hours', async () => {
    const noExp = await startAzureFake({ refreshTokenLifetimeSeconds: null });
    try {
      const p = createAcrProvider(
        { AZURE_POD_IDENTITY_AUTHORITY_HOST: noExp.imdsHost },
        { extraHosts: [noExp.registryHost], caCerts: noExp.caCert },
      );
      const before = Date.now();
      const credential = await p.mint(noExp.registryHost, AMBIENT, signal());
      const lifetime = credential.expiresAt.getTime() - before;
      assert.ok(Math.abs(lifetime - ACR_REFRESH_TOKEN_DEFAULT_LIFETIME_MS) < 5000, `lifetime ${lifetime}`);
    } finally {
      await noExp.stop();
    }
  });

  it('without the registry’s CA the exchange fails on TLS', async () => {
    const p = createAcrProvider(
      { AZURE_POD_IDENTITY_AUTHORITY_HOST: fake.imdsHost },
      { extraHosts: [fake.registryHost] },
    );
    await assert.rejects(
      p.mint(fake.registryHost, AMBIENT, signal()),
      /: ACR token exchange at 127\.0\.0\.1:\d+: [A-Z_]*(CERT|SIGNATURE|ISSUER)[A-Z_]*$/,
    );
  });
});

describe('ACR provider without IMDS', () => {
  it('fails within about a second where the address never answers, and remembers it', async () => {
    const silent = await startSilentServer();
    try {
      const p = createAcrProvider({ AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://${silent.host}` });
      const started = performance.now();
      await assert.rejects(
        p.mint('r.azurecr.io', AMBIENT, signal()),
        /Azure IMDS .*no answer within 1000 ms/,
      );
      assert.ok(performance.now() - started < 1500);
      const again = performance.now();
      await assert.rejects(p.mint('r.azurecr.io', AMBIENT, signal()), /remembered/);
      assert.ok(performance.now() - again < 100);
    } finally {
      await silent.stop();
    }
  });

  it('fails at once where nothing listens', async () => {
    const p = createAcrProvider({
      AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${await closedPort()}`,
    });
    const started = performance.now();
    await assert.rejects(p.mint('r.azurecr.io', AMBIENT, signal()), /ECONNREFUSED/);
    assert.ok(performance.now() - started < 1500);
  });
});

const haveRegistry = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v docker-registry && command -v htpasswd && command -v openssl']);
    return true;
  } catch {
    return false;
  }
})();

describe(
  'ACR provider with a real registry behind the front',
  { skip: !haveRegistry && 'docker-registry not installed' },
  () => {
    it('the minted refresh token reads the real registry until it expires; a new mint works again', async () => {
      const upstreamUser = { username: 'acr-upstream', password: 'upstream-pw-1234' };
      const registry = await startRegistry({ users: [upstreamUser] });
      const fake = await startAzureFake({
        refreshTokenLifetimeSeconds: 2,
        upstream: { url: `https://${registry.host}`, caCert: registry.caCert, ...upstreamUser },
      });
      try {
        const p = createAcrProvider(
          { AZURE_POD_IDENTITY_AUTHORITY_HOST: fake.imdsHost },
          { extraHosts: [fake.registryHost], caCerts: fake.caCert },
        );
        const credential = await p.mint(fake.registryHost, AMBIENT, signal());
        assert.equal(
          await registryStatus(fake.registryHost, fake.caCert, credential.username, credential.password),
          200,
        );
        assert.equal(
          await registryStatus(fake.registryHost, fake.caCert, credential.username, 'not-a-token'),
          401,
        );
        await sleep(Math.max(0, credential.expiresAt.getTime() - Date.now()) + 200);
        assert.equal(
          await registryStatus(fake.registryHost, fake.caCert, credential.username, credential.password),
          401,
        );
        const renewed = await p.mint(fake.registryHost, AMBIENT, signal());
        assert.equal(
          await registryStatus(fake.registryHost, fake.caCert, renewed.username, renewed.password),
          200,
        );
      } finally {
        await fake.stop();
        await registry.stop();
      }
    });
  },
);
