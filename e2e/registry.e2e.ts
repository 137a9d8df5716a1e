// The registry client against a REAL private registry (CNCF distribution
// with TLS from a test CA and htpasswd users), with images pushed by skopeo:
// credentials, TLS trust, bundle detection, unsafe layers, dockerconfigjson
// key matching, and skopeo reading our serialized dockerconfigjson.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { RegistryClient, type PullOptions, type RegistryClientOptions } from '../src/registry/client.js';
import {
  parseDockerConfigJson,
  serializeDockerConfigJson,
  type DockerConfigRegistry,
} from '../src/registry/dockerconfig.js';
import { RegistryError } from '../src/registry/errors.js';
import { EMPTY_IMAGES_LOCK, startRegistry, writeOciLayout, type TestRegistry } from './harness/registry.js';

const ALICE = { username: 'alice', password: 'e2e-Alice-Pa55' };
const BOB = { username: 'bob', password: 'e2e-Bob-Pa55' };
const SECRETS = [ALICE.password, BOB.password];

const BUNDLE_FILES = {
  '.imgpkg/images.yml': EMPTY_IMAGES_LOCK,
  'packages/simple-app.corp.com/1.0.0.yml':
    'apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: simple-app.corp.com.1.0.0\n',
  'packages/simple-app.corp.com/metadata.yml':
    'apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata:\n  name: simple-app.corp.com\n',
};
const PLAIN_FILES = { 'config/app.yml': 'kind: ConfigMap\n' };

let registry: TestRegistry;
let work: string;
let bundleDigest: string;
let targets = 0;

function target(): string {
  targets++;
  return join(work, 'targets', String(targets));
}

function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, prefix: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(join(d, entry.name), rel);
      else out[rel] = readFileSync(join(d, entry.name), 'utf8');
    }
  };
  walk(dir, '');
  return out;
}

function trusting(options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({ caCerts: registry.caCert, retries: 1, retryBaseDelayMs: 10, ...options });
}

async function pull(client: RegistryClient, image: string, options: Omit<PullOptions, 'targetDir'>) {
  try {
    return await client.pull(image, { targetDir: target(), ...options });
  } finally {
    client.close();
  }
}

async function expectRegistryError(
  promise: Promise<unknown>,
  code: string,
  message?: RegExp,
): Promise<RegistryError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof RegistryError, `expected a RegistryError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  for (const secret of SECRETS)
    assert.ok(!caught.message.includes(secret), 'a password leaked into an error');
  return caught;
}

const basic = (user: { username: string; password: string }) =>
  ({ kind: 'basic', username: user.username, password: user.password }) as const;

function auths(entries: Record<string, { username: string; password: string }>): DockerConfigRegistry[] {
  const parsed = parseDockerConfigJson(JSON.stringify({ auths: entries }));
  assert.ok(parsed.ok);
  return parsed.registries;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'regcred-registry-e2e-'));
  registry = await startRegistry({ users: [ALICE, BOB], log: (line) => console.log(`# ${line}`) });
  const bundle = await writeOciLayout(join(work, 'bundle'), BUNDLE_FILES, { tag: '1.0.0', bundle: true });
  bundleDigest = await registry.push(bundle.dir, '1.0.0', 'team/bundle', ALICE);
  assert.equal(bundleDigest, bundle.manifestDigest, 'skopeo kept the manifest bytes');
  await registry.push(bundle.dir, '1.0.0', 'some/path/bundle', ALICE);
  const plain = await writeOciLayout(join(work, 'plain'), PLAIN_FILES, { tag: '1.0.0' });
  await registry.push(plain.dir, '1.0.0', 'team/plain', ALICE);
  const evil = await writeOciLayout(
    join(work, 'evil'),
    { 'ok.txt': 'ok\n' },
    { tag: '1.0.0', bundle: true, evilLayer: true },
  );
  await registry.push(evil.dir, '1.0.0', 'team/evil', ALICE);
});

after(async () => {
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('pulling from a private registry', () => {
  test('a bundle by tag with the right credentials extracts its files', async () => {
    const dir = target();
    const client = trusting();
    const result = await client.pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: dir,
      credential: basic(ALICE),
    });
    client.close();
    assert.deepEqual(readTree(dir), BUNDLE_FILES);
    assert.equal(result.digest, bundleDigest);
    assert.equal(result.isBundle, true);
  });

  test('a bundle by digest with the right credentials extracts the same files', async () => {
    const dir = target();
    const client = trusting();
    const result = await client.pull(`${registry.host}/team/bundle@${bundleDigest}`, {
      kind: 'imgpkgBundle',
      targetDir: dir,
      credential: basic(BOB),
    });
    client.close();
    assert.deepEqual(readTree(dir), BUNDLE_FILES);
    assert.equal(result.pinned, `${registry.host}/team/bundle@${bundleDigest}`);
  });

  test('a wrong password gives the registry UNAUTHORIZED', async () => {
    const err = await expectRegistryError(
      pull(trusting(), `${registry.host}/team/bundle:1.0.0`, {
        kind: 'imgpkgBundle',
        credential: { kind: 'basic', username: 'alice', password: 'not-alices-password' },
      }),
      'UNAUTHORIZED',
      /UNAUTHORIZED: authentication required \(HTTP 401/,
    );
    assert.equal(err.status, 401);
  });

  test('no credentials give the registry UNAUTHORIZED', async () => {
    await expectRegistryError(
      pull(trusting(), `${registry.host}/team/bundle:1.0.0`, { kind: 'imgpkgBundle' }),
      'UNAUTHORIZED',
      /^127\.0\.0\.1:\d+\/team\/bundle:1\.0\.0: UNAUTHORIZED: authentication required/,
    );
  });

  test('an image without the bundle label is refused as imgpkgBundle and pulled as image', async () => {
    await expectRegistryError(
      pull(trusting(), `${registry.host}/team/plain:1.0.0`, {
        kind: 'imgpkgBundle',
        credential: basic(ALICE),
      }),
      'NOT_A_BUNDLE',
      /expected an imgpkg bundle, but the image config has no "dev\.carvel\.imgpkg\.bundle" label/,
    );
    const dir = target();
    const client = trusting();
    const result = await client.pull(`${registry.host}/team/plain:1.0.0`, {
      kind: 'image',
      targetDir: dir,
      credential: basic(ALICE),
    });
    client.close();
    assert.equal(result.isBundle, false);
    assert.deepEqual(readTree(dir), PLAIN_FILES);
  });

  test('a layer with a ../ entry is rejected and nothing is written outside the target', async () => {
    const parent = join(work, 'evil-parent');
    mkdirSync(parent);
    const dir = join(parent, 'target');
    const client = trusting();
    await expectRegistryError(
      client.pull(`${registry.host}/team/evil:1.0.0`, {
        kind: 'imgpkgBundle',
        targetDir: dir,
        credential: basic(ALICE),
      }),
      'UNSAFE_PATH',
      /unsafe path "\.\.\/evil" in layer: '\.\.' path component/,
    );
    client.close();
    assert.deepEqual(readdirSync(parent), ['target']);
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe('TLS trust', () => {
  test('a registry signed by an unknown CA fails with an x509 error and a caCerts hint', async () => {
    const err = await expectRegistryError(
      pull(new RegistryClient({ retries: 0 }), `${registry.host}/team/bundle:1.0.0`, {
        kind: 'imgpkgBundle',
        credential: basic(ALICE),
      }),
      'X509',
      /x509: .*unable to verify the first certificate .*caCerts/,
    );
    assert.equal(err.retryable, false);
  });

  test('caCerts added to the default roots make it trusted', async () => {
    const result = await pull(trusting(), `${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      credential: basic(ALICE),
    });
    assert.equal(result.digest, bundleDigest);
  });

  test('dangerousSkipTLSVerify for 127.0.0.1:PORT skips verification', async () => {
    const result = await pull(
      new RegistryClient({ dangerousSkipTLSVerify: `127.0.0.1:${registry.port}` }),
      `${registry.host}/team/bundle:1.0.0`,
      { kind: 'imgpkgBundle', credential: basic(ALICE) },
    );
    assert.equal(result.digest, bundleDigest);
  });
});

describe('credentials from a dockerconfigjson', () => {
  test('the most specific key wins: a path key over the /v1/ host key', async () => {
    const config = auths({
      [`https://${registry.host}/v1/`]: { username: 'alice', password: 'wrong-for-host-key' },
      [`${registry.host}/some/path`]: ALICE,
    });
    const result = await pull(trusting(), `${registry.host}/some/path/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      auths: config,
    });
    assert.equal(result.credentialKey, `${registry.host}/some/path`);
    const err = await expectRegistryError(
      pull(trusting(), `${registry.host}/team/bundle:1.0.0`, { kind: 'imgpkgBundle', auths: config }),
      'UNAUTHORIZED',
    );
    assert.ok(!err.message.includes('wrong-for-host-key'));
  });

  test('the host key serves repositories outside the path key', async () => {
    const config = auths({
      [`https://${registry.host}/v1/`]: BOB,
      [`${registry.host}/some/path`]: { username: 'alice', password: 'wrong-for-path-key' },
    });
    const result = await pull(trusting(), `${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      auths: config,
    });
    assert.equal(result.credentialKey, `https://${registry.host}/v1/`);
    await expectRegistryError(
      pull(trusting(), `${registry.host}/some/path/bundle:1.0.0`, { kind: 'imgpkgBundle', auths: config }),
      'UNAUTHORIZED',
    );
  });

  test('skopeo accepts a dockerconfigjson written by serializeDockerConfigJson, with either key form', async () => {
    for (const key of [registry.host, `https://${registry.host}/v1/`]) {
      const file = join(work, `auth-${targets++}.json`);
      const entries = auths({ [key]: ALICE });
      assert.ok(entries[0]?.entry.auth, 'auth is filled in from username and password');
      writeFileSync(file, serializeDockerConfigJson(entries));
      const inspected = await registry.inspect(`${registry.host}/team/bundle:1.0.0`, file);
      assert.equal(inspected['Digest'], bundleDigest);
      assert.deepEqual(inspected['Labels'], { 'dev.carvel.imgpkg.bundle': 'true' });
    }
  });
});
