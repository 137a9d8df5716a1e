// GCR/Artifact Registry provider against the loopback Google fakes (metadata
// server, OAuth token endpoint) and, for the last test, a real docker-registry.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { makeServiceAccountKey, startGcpFake, type GcpFake } from '../../e2e/fixtures/cloud/gcp-fake.js';
import { closedPort, registryStatus, startSilentServer } from '../../e2e/fixtures/cloud/net.js';
import { startRegistry } from '../../e2e/harness/registry.js';
import { createGcrProvider, GCR_USERNAME, GOOGLE_TOKEN_URL } from './gcp.js';
import type { CloudIdentity } from './types.js';

const AMBIENT: CloudIdentity = { kind: 'ambient' };
const signal = () => new AbortController().signal;
const secretIdentity = (data: Record<string, Buffer>): CloudIdentity => ({
  kind: 'secret',
  namespace: 'team-a',
  name: 'gcp-key',
  data,
});

describe('GCR servesHost', () => {
  const provider = createGcrProvider({}, { extraHosts: ['127.0.0.1:5000', 'Mirror.Example:443'] });
  const cases: Array<[string, boolean]> = [
    ['gcr.io', true],
    ['us.gcr.io', true],
    ['eu.gcr.io', true],
    ['europe-west1-docker.pkg.dev', true],
    ['gcr.io:443', true],
    ['gcr.io:5000', false],
    ['pkg.dev', false],
    ['a.b.pkg.dev', false],
    ['gcr.io.evil.example', false],
    ['evilgcr.io', false],
    ['us.gcr.io.', false],
    ['docker.io', false],
    ['127.0.0.1:5000', true],
    ['127.0.0.1:5001', false],
    ['127.0.0.1', false],
    ['mirror.example', true],
  ];
  for (const [host, want] of cases) {
    it(`${host} → ${want}`, () => assert.equal(provider.servesHost(host), want));
  }

  it('checks a long hostile host in linear time', () => {
    const started = performance.now();
    assert.equal(provider.servesHost('a-'.repeat(50_000) + '.pkg.dev'), false);
    assert.ok(performance.now() - started < 100);
  });
});

describe('GCR provider, ambient identity (metadata server)', () => {
  let fake: GcpFake;
  before(async () => {
    fake = await startGcpFake();
  });
  after(() => fake.stop());

  it('mints oauth2accesstoken with the metadata token, expiring after expires_in', async () => {
    const provider = createGcrProvider(fake.env);
    const before = Date.now();
    const credential = await provider.mint('europe-docker.pkg.dev', AMBIENT, signal());
    assert.equal(credential.username, GCR_USERNAME);
    assert.equal(credential.password, fake.issued.at(-1));
    const expected = before + fake.expiresInSeconds * 1000;
    assert.ok(Math.abs(credential.expiresAt.getTime() - expected) < 5000);
    assert.deepEqual(fake.rejections, [], 'the request carried Metadata-Flavor: Google');
  });

  it('does not cache successes: every mint asks the metadata server', async () => {
    const provider = createGcrProvider(fake.env);
    const start = fake.metadataRequests;
    const first = await provider.mint('gcr.io', AMBIENT, signal());
    const second = await provider.mint('gcr.io', AMBIENT, signal());
    assert.equal(fake.metadataRequests - start, 2);
    assert.notEqual(first.password, second.password);
  });

  it('refuses an answer without Metadata-Flavor: Google', async () => {
    fake.metadataMode = 'no-flavor';
    try {
      const provider = createGcrProvider(fake.env);
      await assert.rejects(provider.mint('gcr.io', AMBIENT, signal()), (error: Error) => {
        assert.match(error.message, /lacks the header Metadata-Flavor: Google/);
        assert.ok(!error.message.includes(fake.issued.at(-1)!), 'no token in the message');
        return true;
      });
    } finally {
      fake.metadataMode = 'ok';
    }
  });

  it('remembers a metadata failure briefly, then asks again', async () => {
    let clock = Date.now();
    const provider = createGcrProvider(fake.env, { metadataFailureTtlMs: 10_000, now: () => clock });
    fake.metadataMode = 'error';
    try {
      const start = fake.metadataRequests;
      await assert.rejects(provider.mint('gcr.io', AMBIENT, signal()), /GCE metadata server .*: HTTP 500/);
      await assert.rejects(provider.mint('gcr.io', AMBIENT, signal()), /HTTP 500 \(remembered for 10 s\)/);
      assert.equal(fake.metadataRequests - start, 1);
      fake.metadataMode = 'ok';
      clock += 10_000;
      const credential = await provider.mint('gcr.io', AMBIENT, signal());
      assert.equal(credential.password, fake.issued.at(-1));
      assert.equal(fake.metadataRequests - start, 2);
    } finally {
      fake.metadataMode = 'ok';
    }
  });

  it('refuses a host it does not serve without asking anyone', async () => {
    const start = fake.metadataRequests;
    await assert.rejects(createGcrProvider(fake.env).mint('docker.io', AMBIENT, signal()), /not a GCR/);
    assert.equal(fake.metadataRequests, start);
  });
});

describe('GCR provider without a metadata server', () => {
  it('fails within about a second where the address never answers', async () => {
    const silent = await startSilentServer();
    try {
      const provider = createGcrProvider({ GCE_METADATA_HOST: silent.host });
      const started = performance.now();
      await assert.rejects(provider.mint('gcr.io', AMBIENT, signal()), /no answer within 1000 ms/);
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 1500, `took ${Math.round(elapsed)} ms`);
      // Remembered: the next fetch fails at once.
      const again = performance.now();
      await assert.rejects(provider.mint('gcr.io', AMBIENT, signal()), /remembered/);
      assert.ok(performance.now() - again < 100);
    } finally {
      await silent.stop();
    }
  });

  it('fails at once where nothing listens', async () => {
    const provider = createGcrProvider({ GCE_METADATA_HOST: `127.0.0.1:${await closedPort()}` });
    const started = performance.now();
    await assert.rejects(provider.mint('gcr.io', AMBIENT, signal()), /ECONNREFUSED/);
    assert.ok(performance.now() - started < 1500);
  });

  it('stops when the caller aborts, and does not remember that', async () => {
    const silent = await startSilentServer();
    try {
      const provider = createGcrProvider({ GCE_METADATA_HOST: silent.host });
      await assert.rejects(provider.mint('gcr.io', AMBIENT, AbortSignal.timeout(50)), /aborted/);
      await assert.rejects(provider.mint('gcr.io', AMBIENT, signal()), /no answer within/);
    } finally {
      await silent.stop();
    }
  });
});

describe('GCR provider, service-account key from a Secret', () => {
  let fake: GcpFake;
  before(async () => {
    fake = await startGcpFake();
  });
  after(() => fake.stop());

  it('signs a JWT the token endpoint verifies with the public key, and mints its access token', async () => {
    const email = 'puller@proj.iam.gserviceaccount.com';
    const { keyJson, publicKey } = makeServiceAccountKey(email, fake.tokenUrl);
    fake.addServiceAccount(email, publicKey);
    const provider = createGcrProvider(fake.env);
    const start = fake.tokenRequests;
    const credential = await provider.mint('us.gcr.io', secretIdentity({ 'key.json': keyJson }), signal());
    assert.equal(fake.tokenRequests - start, 1);
    assert.deepEqual(fake.rejections, []);
    assert.equal(credential.username, GCR_USERNAME);
    assert.equal(credential.password, fake.issued.at(-1));
    assert.equal(fake.metadataRequests, 0, 'a Secret identity never touches the metadata server');
  });

  it('accepts a key naming Google’s own endpoint and sends it to the configured one', async () => {
    const email = 'google-uri@proj.iam.gserviceaccount.com';
    const { keyJson, publicKey } = makeServiceAccountKey(email, GOOGLE_TOKEN_URL);
    fake.addServiceAccount(email, publicKey);
    const credential = await createGcrProvider(fake.env).mint(
      'gcr.io',
      secretIdentity({ 'key.json': keyJson }),
      signal(),
    );
    assert.equal(credential.password, fake.issued.at(-1));
  });

  it('reports a signature the endpoint rejects, without key or assertion in the message', async () => {
    const email = 'rotated@proj.iam.gserviceaccount.com';
    const registered = makeServiceAccountKey(email, fake.tokenUrl);
    const stale = makeServiceAccountKey(email, fake.tokenUrl);
    fake.addServiceAccount(email, registered.publicKey);
    const provider = createGcrProvider(fake.env);
    await assert.rejects(
      provider.mint('gcr.io', secretIdentity({ 'key.json': stale.keyJson }), signal()),
      (error: Error) => {
        assert.match(error.message, /HTTP 400 \(invalid_grant: Invalid JWT Signature\.\)/);
        assert.match(error.message, /rotated@proj/);
        assert.doesNotMatch(error.message, /PRIVATE KEY|eyJ/);
        return true;
      },
    );
  });

  it('never sends a tenant’s key to a token_uri of its choosing', async () => {
    const email = 'evil@proj.iam.gserviceaccount.com';
    const { keyJson, publicKey } = makeServiceAccountKey(email, 'http://attacker.example/token');
    fake.addServiceAccount(email, publicKey);
    const start = fake.tokenRequests;
    await assert.rejects(
      createGcrProvider(fake.env).mint('gcr.io', secretIdentity({ 'key.json': keyJson }), signal()),
      /Secret team-a\/gcp-key: key\.json names a token_uri other than .*; it is not used/,
    );
    assert.equal(fake.tokenRequests, start);
  });

  const badKeys: Array<[string, Record<string, Buffer>, RegExp]> = [
    ['no key.json', {}, /Secret team-a\/gcp-key has no data key key\.json/],
    ['not JSON', { 'key.json': Buffer.from('{') }, /key\.json is not JSON/],
    ['an array', { 'key.json': Buffer.from('[]') }, /is not a JSON object/],
    [
      'another type',
      { 'key.json': Buffer.from('{"type":"authorized_user"}') },
      /not a service-account key \(type must be service_account\)/,
    ],
    ['no client_email', { 'key.json': Buffer.from('{"private_key":"x"}') }, /has no client_email/],
    ['no private_key', { 'key.json': Buffer.from('{"client_email":"a@b"}') }, /has no private_key/],
    [
      'a broken private_key',
      {
        'key.json': Buffer.from('{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\\nAAAA"}'),
      },
      /private_key is not a PEM private key/,
    ],
    [
      'an RSA key over 4096 bits',
      {
        'key.json': Buffer.from(
          JSON.stringify({
            client_email: 'a@b',
            private_key: generateKeyPairSync('rsa', { modulusLength: 4160 }).privateKey.export({
              type: 'pkcs8',
              format: 'pem',
            }),
          }),
        ),
      },
      /private_key is longer than 4096 bits/,
    ],
    ['an oversized file', { 'key.json': Buffer.alloc(70_000, 0x20) }, /larger than 65536 bytes/],
  ];
  for (const [name, data, message] of badKeys) {
    it(`explains a Secret with ${name}`, async () => {
      const start = fake.tokenRequests;
      await assert.rejects(
        createGcrProvider(fake.env).mint('gcr.io', secretIdentity(data), signal()),
        message,
      );
      assert.equal(fake.tokenRequests, start);
    });
  }
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
  'GCR provider with a real registry',
  { skip: !haveRegistry && 'docker-registry not installed' },
  () => {
    it('the minted credential is accepted by docker-registry (htpasswd) and a wrong one is not', async () => {
      const accessToken = `ya29.${'x'.repeat(40)}`;
      const fake = await startGcpFake({ accessToken });
      const registry = await startRegistry({ users: [{ username: GCR_USERNAME, password: accessToken }] });
      try {
        const provider = createGcrProvider(fake.env, { extraHosts: [registry.host] });
        const credential = await provider.mint(registry.host, AMBIENT, signal());
        assert.equal(
          await registryStatus(registry.host, registry.caCert, credential.username, credential.password),
          200,
        );
        assert.equal(
          await registryStatus(registry.host, registry.caCert, credential.username, 'ya29.wrong'),
          401,
        );
      } finally {
        await registry.stop();
        await fake.stop();
      }
    });
  },
);
