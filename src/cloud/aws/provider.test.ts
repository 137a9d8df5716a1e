// The ECR provider against the loopback AWS fake: every credential source,
// their order, caching, fast failure without a metadata server, and errors.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';

import { AwsFake, startSilentServer, type AwsFakeOptions } from '../../../e2e/fixtures/cloud/aws-fake.js';
import type { CloudEnvironment, CloudIdentity } from '../types.js';
import { createEcrProvider, type EcrProviderOptions } from './index.js';

const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/regcred';
const STATIC = { accessKeyId: 'AKIASTATICEXAMPLE', secretAccessKey: 'static/secret/EXAMPLEKEY' };
const AMBIENT: CloudIdentity = { kind: 'ambient' };
const HOUR = 3_600_000;

let dir: string;
let clockMs: number;
const now = (): Date => new Date(clockMs);
const live = (): AbortSignal => new AbortController().signal;

async function withFake(options: AwsFakeOptions, body: (fake: AwsFake) => Promise<void>): Promise<void> {
  const fake = await AwsFake.start({ staticKeys: [STATIC], roleArn: ROLE_ARN, now, ...options });
  try {
    await body(fake);
  } finally {
    await fake.close();
  }
}

function provider(fake: AwsFake, env: CloudEnvironment, options: EcrProviderOptions = {}) {
  return createEcrProvider({ ...fake.endpointEnv(), ...env }, { now, ...options });
}

function secretIdentity(data: Record<string, string>): CloudIdentity {
  return {
    kind: 'secret',
    namespace: 'team-a',
    name: 'aws-creds',
    data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value)])),
  };
}

async function tokenFile(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `${content}\n`);
  return path;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aws-provider-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  clockMs = Date.now();
});

describe('ECR provider: ambient credential sources', () => {
  it('environment keys sign GetAuthorizationToken; the token decodes to AWS:<password>', () =>
    withFake({}, async (fake) => {
      const ecr = provider(fake, {
        AWS_ACCESS_KEY_ID: STATIC.accessKeyId,
        AWS_SECRET_ACCESS_KEY: STATIC.secretAccessKey,
      });
      const minted = await ecr.mint(REGISTRY, AMBIENT, live());
      assert.equal(minted.username, 'AWS');
      assert.equal(minted.password, fake.ecrPassword);
      assert.ok(Math.abs(minted.expiresAt.getTime() - (clockMs + 12 * HOUR)) < 2000);
      assert.deepEqual(fake.ecrCallers, ['static']);
      assert.deepEqual(fake.ecrRegions, ['eu-west-1']);
      assert.equal(fake.calls.imdsToken, 0);
    }));

  it('web identity (IRSA): reads the token file, calls AssumeRoleWithWebIdentity, signs with the session keys', () =>
    withFake({ webIdentityToken: 'projected-sa-token' }, async (fake) => {
      const ecr = provider(fake, {
        AWS_ROLE_ARN: ROLE_ARN,
        AWS_WEB_IDENTITY_TOKEN_FILE: await tokenFile('web-identity', 'projected-sa-token'),
      });
      const minted = await ecr.mint(REGISTRY, AMBIENT, live());
      assert.equal(minted.password, fake.ecrPassword);
      assert.equal(fake.calls.webIdentity, 1);
      assert.deepEqual(fake.ecrCallers, ['web-identity']);
    }));

  it('web identity with a token STS refuses: the STS code, not the token, is in the error', () =>
    withFake({ webIdentityToken: 'the-right-one' }, async (fake) => {
      const ecr = provider(fake, {
        AWS_ROLE_ARN: ROLE_ARN,
        AWS_WEB_IDENTITY_TOKEN_FILE: await tokenFile('wrong-web-identity', 'a-wrong-token'),
      });
      await assert.rejects(ecr.mint(REGISTRY, AMBIENT, live()), (error: Error) => {
        assert.match(error.message, /AssumeRoleWithWebIdentity .*HTTP 400 InvalidIdentityToken/);
        assert.ok(!error.message.includes('a-wrong-token'));
        return true;
      });
      assert.equal(fake.calls.ecr, 0);
    }));

  it('EKS Pod Identity: token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, or from the variable', () =>
    withFake({ podIdentityToken: 'eks-pod-identity-token' }, async (fake) => {
      const fromFile = provider(fake, {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: fake.podIdentityUrl,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: await tokenFile('eks-token', 'eks-pod-identity-token'),
      });
      assert.equal((await fromFile.mint(REGISTRY, AMBIENT, live())).password, fake.ecrPassword);
      const fromVariable = provider(fake, {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: fake.podIdentityUrl,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 'eks-pod-identity-token',
      });
      await fromVariable.mint(REGISTRY, AMBIENT, live());
      assert.equal(fake.calls.podIdentity, 2);
      assert.deepEqual(fake.ecrCallers, ['pod-identity', 'pod-identity']);
    }));

  it('EKS Pod Identity with a wrong token fails with the HTTP status, without the token', () =>
    withFake({ podIdentityToken: 'eks-pod-identity-token' }, async (fake) => {
      const ecr = provider(fake, {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: fake.podIdentityUrl,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 'stolen-token',
      });
      await assert.rejects(ecr.mint(REGISTRY, AMBIENT, live()), (error: Error) => {
        assert.match(
          error.message,
          /container credentials at http:\/\/127\.0\.0\.1:\d+\/pod-identity\/credentials: HTTP 403/,
        );
        assert.ok(!error.message.includes('stolen-token'));
        return true;
      });
    }));

  it('a plain-http Pod Identity URI off loopback and the agent addresses is refused', () =>
    withFake({}, async (fake) => {
      const ecr = provider(fake, {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://10.1.2.3/creds',
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 't',
      });
      await assert.rejects(ecr.mint(REGISTRY, AMBIENT, live()), /plain http is only allowed to loopback/);
    }));

  it('IMDSv2: session token first, then role and credentials; cached for the next mint', () =>
    withFake({ imdsRoleName: 'node-role' }, async (fake) => {
      const ecr = provider(fake, {});
      assert.equal((await ecr.mint(REGISTRY, AMBIENT, live())).password, fake.ecrPassword);
      await ecr.mint(REGISTRY, AMBIENT, live());
      assert.deepEqual(
        [fake.calls.imdsToken, fake.calls.imdsRole, fake.calls.imdsCredentials, fake.calls.ecr],
        [1, 1, 1, 2],
      );
      assert.deepEqual(fake.ecrCallers, ['imds', 'imds']);
    }));

  it('the fake refuses IMDS reads without a session token (IMDSv1)', () =>
    withFake({}, async (fake) => {
      const response = await fetch(`${fake.url}/latest/meta-data/iam/security-credentials/`);
      assert.equal(response.status, 401);
    }));

  it('concurrent mints share one credential lookup', () =>
    withFake({}, async (fake) => {
      const ecr = provider(fake, {});
      await Promise.all(Array.from({ length: 5 }, () => ecr.mint(REGISTRY, AMBIENT, live())));
      assert.equal(fake.calls.imdsCredentials, 1);
      assert.equal(fake.calls.ecr, 5);
    }));
});

describe('ECR provider: chain order', () => {
  const everything = async (fake: AwsFake): Promise<CloudEnvironment> => ({
    AWS_ACCESS_KEY_ID: STATIC.accessKeyId,
    AWS_SECRET_ACCESS_KEY: STATIC.secretAccessKey,
    AWS_ROLE_ARN: ROLE_ARN,
    AWS_WEB_IDENTITY_TOKEN_FILE: await tokenFile('order-web-identity', 'web-identity-token'),
    AWS_CONTAINER_CREDENTIALS_FULL_URI: fake.podIdentityUrl,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: 'pod-identity-token',
  });
  const cases: Array<{ name: string; drop: string[]; want: string }> = [
    { name: 'environment keys before everything', drop: [], want: 'static' },
    { name: 'web identity before Pod Identity and IMDS', drop: ['AWS_ACCESS_KEY_ID'], want: 'web-identity' },
    { name: 'Pod Identity before IMDS', drop: ['AWS_ACCESS_KEY_ID', 'AWS_ROLE_ARN'], want: 'pod-identity' },
    {
      name: 'IMDS last',
      drop: ['AWS_ACCESS_KEY_ID', 'AWS_ROLE_ARN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI'],
      want: 'imds',
    },
    {
      name: 'half-configured environment keys are skipped',
      drop: ['AWS_SECRET_ACCESS_KEY', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI'],
      want: 'imds',
    },
  ];
  for (const { name, drop, want } of cases) {
    it(name, () =>
      withFake({}, async (fake) => {
        const env: Record<string, string | undefined> = { ...(await everything(fake)) };
        for (const key of drop) delete env[key];
        await provider(fake, env).mint(REGISTRY, AMBIENT, live());
        assert.deepEqual(fake.ecrCallers, [want]);
      }),
    );
  }

  it('AWS_EC2_METADATA_DISABLED=true with nothing else configured fails without probing', () =>
    withFake({}, async (fake) => {
      await assert.rejects(
        provider(fake, { AWS_EC2_METADATA_DISABLED: 'true' }).mint(REGISTRY, AMBIENT, live()),
        /AWS credentials: none configured/,
      );
      assert.equal(fake.calls.imdsToken, 0);
    }));
});

describe('ECR provider: caching and refresh', () => {
  it('temporary credentials are reused until the refresh margin before Expiration, then fetched again', () =>
    withFake({ credentialLifetimeMs: HOUR }, async (fake) => {
      const ecr = provider(fake, {}, { refreshMarginMs: 5 * 60_000 });
      await ecr.mint(REGISTRY, AMBIENT, live());
      clockMs += 54 * 60_000; // 6 min before expiry: still fresh enough
      await ecr.mint(REGISTRY, AMBIENT, live());
      assert.equal(fake.calls.imdsCredentials, 1);
      clockMs += 2 * 60_000; // 4 min before expiry: inside the margin
      await ecr.mint(REGISTRY, AMBIENT, live());
      assert.equal(fake.calls.imdsCredentials, 2);
      assert.equal(fake.calls.ecr, 3);
    }));

  it('short-lived credentials are refreshed at half their lifetime at the latest', () =>
    withFake({ credentialLifetimeMs: 60_000 }, async (fake) => {
      const ecr = provider(fake, {}, { refreshMarginMs: 5 * 60_000 });
      await ecr.mint(REGISTRY, AMBIENT, live());
      clockMs += 20_000;
      await ecr.mint(REGISTRY, AMBIENT, live());
      assert.equal(fake.calls.imdsCredentials, 1);
      clockMs += 15_000;
      await ecr.mint(REGISTRY, AMBIENT, live());
      assert.equal(fake.calls.imdsCredentials, 2);
    }));

  it('a failed early refresh keeps the old credentials until they expire', () =>
    withFake({ credentialLifetimeMs: HOUR }, async (fake) => {
      const ecr = provider(fake, {}, { refreshMarginMs: 5 * 60_000 });
      await ecr.mint(REGISTRY, AMBIENT, live());
      fake.imdsBehavior = 'error';
      clockMs += 56 * 60_000; // inside the margin: a refresh is tried and fails
      await ecr.mint(REGISTRY, AMBIENT, live());
      assert.equal(fake.calls.ecr, 2);
      assert.deepEqual(fake.ecrCallers, ['imds', 'imds']);
      clockMs += 5 * 60_000; // past Expiration: nothing left to fall back on
      await assert.rejects(
        ecr.mint(REGISTRY, AMBIENT, live()),
        /instance metadata failed: IMDSv2 session token: HTTP 500/,
      );
      fake.imdsBehavior = 'ok';
      clockMs += 31_000;
      await ecr.mint(REGISTRY, AMBIENT, live());
      assert.equal(fake.calls.imdsCredentials, 2);
    }));

  it('the ECR token lifetime is the one ECR reports (short for the tests)', () =>
    withFake({ tokenLifetimeMs: 3000 }, async (fake) => {
      const minted = await provider(fake, {}).mint(REGISTRY, AMBIENT, live());
      assert.ok(Math.abs(minted.expiresAt.getTime() - (clockMs + 3000)) < 1000);
    }));
});

describe('ECR provider: no metadata server', () => {
  it('an IMDS that never answers fails within ~1 s, and the failure is cached', async () => {
    const silent = await startSilentServer();
    try {
      const ecr = createEcrProvider(
        { AWS_EC2_METADATA_SERVICE_ENDPOINT: silent.url, AWS_ENDPOINT_URL_ECR: 'http://127.0.0.1:9/ecr' },
        { now, failureCacheMs: 30_000 },
      );
      let started = performance.now();
      await assert.rejects(
        ecr.mint(REGISTRY, AMBIENT, live()),
        /instance metadata failed: .*no answer within 1000 ms/,
      );
      // 1 s timeout plus slack for a loaded CI machine; the message shows the timeout used.
      assert.ok(performance.now() - started < 2500, `took ${performance.now() - started} ms`);
      assert.equal(silent.connections(), 1);
      started = performance.now();
      await assert.rejects(ecr.mint(REGISTRY, AMBIENT, live()), /instance metadata failed/);
      assert.ok(performance.now() - started < 500);
      assert.equal(silent.connections(), 1, 'the cached failure does not probe again');
      clockMs += 31_000;
      await assert.rejects(ecr.mint(REGISTRY, AMBIENT, live()), /instance metadata failed/);
      assert.equal(silent.connections(), 2, 'probed again once the failure expired');
    } finally {
      await silent.close();
    }
  });
});

describe('ECR provider: credentials from a Secret', () => {
  it('keys from the Secret sign the request', () =>
    withFake({}, async (fake) => {
      const minted = await provider(fake, {}).mint(
        REGISTRY,
        secretIdentity({
          aws_access_key_id: STATIC.accessKeyId,
          aws_secret_access_key: `${STATIC.secretAccessKey}\n`,
        }),
        live(),
      );
      assert.equal(minted.password, fake.ecrPassword);
      assert.deepEqual(fake.ecrCallers, ['static']);
      assert.equal(fake.calls.imdsToken, 0, 'the operator identity is not touched');
    }));

  it('role_arn: AssumeRole signed with the Secret keys, then ECR with the role session', () =>
    withFake({}, async (fake) => {
      await provider(fake, {}).mint(
        REGISTRY,
        secretIdentity({
          ...{ aws_access_key_id: STATIC.accessKeyId, aws_secret_access_key: STATIC.secretAccessKey },
          role_arn: ROLE_ARN,
        }),
        live(),
      );
      assert.equal(fake.calls.assumeRole, 1);
      assert.deepEqual(fake.ecrCallers, ['assume-role']);
    }));

  it('missing keys are named, values never shown', () =>
    withFake({}, async (fake) => {
      await assert.rejects(
        provider(fake, {}).mint(REGISTRY, secretIdentity({ aws_session_token: 'tok-value' }), live()),
        (error: Error) => {
          assert.equal(
            error.message,
            'Secret team-a/aws-creds: missing or empty key(s) aws_access_key_id, aws_secret_access_key',
          );
          return true;
        },
      );
    }));

  it("a wrong secret key gets ECR's 403 InvalidSignatureException, without the secret", () =>
    withFake({}, async (fake) => {
      await assert.rejects(
        provider(fake, {}).mint(
          REGISTRY,
          secretIdentity({ aws_access_key_id: STATIC.accessKeyId, aws_secret_access_key: 'not-the-secret' }),
          live(),
        ),
        (error: Error) => {
          assert.match(
            error.message,
            /^ECR GetAuthorizationToken at http:\/\/127\.0\.0\.1:\d+\/ecr \(credentials from Secret team-a\/aws-creds\): HTTP 403 InvalidSignatureException: The request signature we calculated does not match/,
          );
          assert.ok(!error.message.includes('not-the-secret'));
          return true;
        },
      );
      assert.equal(fake.calls.ecr, 0);
    }));

  it('AssumeRole with a wrong secret key is refused by STS with a clear error', () =>
    withFake({}, async (fake) => {
      await assert.rejects(
        provider(fake, {}).mint(
          REGISTRY,
          secretIdentity({
            aws_access_key_id: STATIC.accessKeyId,
            aws_secret_access_key: 'nope',
            role_arn: ROLE_ARN,
          }),
          live(),
        ),
        /STS AssumeRole \(arn:aws:iam::123456789012:role\/regcred\) at .*: HTTP 403 InvalidSignatureException/,
      );
    }));

  it('values with line breaks inside are refused before any request', () =>
    withFake({}, async (fake) => {
      await assert.rejects(
        provider(fake, {}).mint(
          REGISTRY,
          secretIdentity({ aws_access_key_id: 'AKIA\r\nX-Evil: 1', aws_secret_access_key: 's' }),
          live(),
        ),
        /key aws_access_key_id holds spaces or characters that are not printable ASCII/,
      );
      assert.equal(fake.calls.ecr, 0);
    }));
});

describe('ECR provider: hosts, limits, abort', () => {
  it('extra hosts are served with the configured region; others are not', () =>
    withFake({}, async (fake) => {
      const env = { AWS_ACCESS_KEY_ID: STATIC.accessKeyId, AWS_SECRET_ACCESS_KEY: STATIC.secretAccessKey };
      const ecr = provider(
        fake,
        { ...env, AWS_REGION: 'us-west-2' },
        { extraHosts: ['127.0.0.1:5000', 'Cache.Example:443'] },
      );
      assert.ok(ecr.servesHost('127.0.0.1:5000'));
      assert.ok(ecr.servesHost('cache.example'));
      assert.ok(ecr.servesHost(REGISTRY));
      assert.ok(ecr.servesHost('123456789012.dkr-ecr.eu-west-1.on.aws'), 'dual-stack registry host');
      assert.ok(ecr.servesHost('123456789012.DKR-ECR.eu-west-1.on.aws:443'), 'normalized');
      assert.ok(!ecr.servesHost('127.0.0.1:5001'));
      assert.ok(!ecr.servesHost('gcr.io'));
      await ecr.mint('127.0.0.1:5000', AMBIENT, live());
      assert.deepEqual(fake.ecrRegions, ['us-west-2']);
      // A dual-stack host's region comes from its name, as for the IPv4-only hosts.
      await ecr.mint('123456789012.dkr-ecr.eu-central-1.on.aws', AMBIENT, live());
      assert.deepEqual(fake.ecrRegions, ['us-west-2', 'eu-central-1']);
      await assert.rejects(ecr.mint('gcr.io', AMBIENT, live()), /gcr\.io is not an ECR registry host/);
      const noRegion = provider(fake, env, { extraHosts: ['127.0.0.1:5000'] });
      await assert.rejects(
        noRegion.mint('127.0.0.1:5000', AMBIENT, live()),
        /no valid region is \(set AWS_REGION\)/,
      );
    }));

  it('a response beyond 64 KiB is cut off with a clear error', () =>
    withFake({}, async (fake) => {
      fake.ecrBehavior = 'huge';
      await assert.rejects(
        provider(fake, {
          AWS_ACCESS_KEY_ID: STATIC.accessKeyId,
          AWS_SECRET_ACCESS_KEY: STATIC.secretAccessKey,
        }).mint(REGISTRY, AMBIENT, live()),
        /response larger than 65536 bytes/,
      );
    }));

  it('a hanging ECR times out, and the caller can abort', () =>
    withFake({}, async (fake) => {
      fake.ecrBehavior = 'hang';
      const env = { AWS_ACCESS_KEY_ID: STATIC.accessKeyId, AWS_SECRET_ACCESS_KEY: STATIC.secretAccessKey };
      await assert.rejects(
        provider(fake, env, { requestTimeoutMs: 300 }).mint(REGISTRY, AMBIENT, live()),
        /no answer within 300 ms/,
      );
      const started = performance.now();
      await assert.rejects(provider(fake, env).mint(REGISTRY, AMBIENT, AbortSignal.timeout(100)), /aborted/);
      assert.ok(performance.now() - started < 2000);
    }));
});
