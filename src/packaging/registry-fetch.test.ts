import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RegistryClient } from '../registry/client.js';
import type { FetchRequest } from './app-pipeline.js';
import type { FetchSecretLike } from './fetch-credentials.js';
import { FetchLimiter } from './fetch-limiter.js';
import {
  ConfigurationError,
  InlineFetchRunner,
  RegistryFetchRunner,
  type FetchKeychain,
  type KeychainAnswer,
  type RegistryAccess,
} from './registry-fetch.js';
import { RegistryError } from '../registry/errors.js';
import type { FetchStage } from './types.js';

const root = mkdtempSync(join(tmpdir(), 'registry-fetch-test-'));
let dirs = 0;
after(() => rmSync(root, { recursive: true, force: true }));

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const secrets: Record<string, FetchSecretLike> = {
  'ns/values': { type: 'Opaque', data: { 'values.yml': b64('x: 1\n') } },
  'ns/broken': { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{nope') } },
};
const readSecret = async (ns: string, name: string) => secrets[`${ns}/${name}`];
const noRegistry: RegistryAccess = {
  lease: () => Promise.reject(new Error('the registry must not be reached')),
};

function request(stage: FetchStage, secretName?: string): FetchRequest {
  const directory = join(root, String(++dirs));
  mkdirSync(directory);
  return { namespace: 'ns', index: 0, stage, secretName, directory };
}

describe('InlineFetchRunner', () => {
  const runner = new InlineFetchRunner({ readSecret });

  it('writes paths and the data of pathsFrom Secrets', async () => {
    const req = request({
      inline: {
        paths: { 'config/a.yml': 'a: 1\n' },
        pathsFrom: [{ secretRef: { name: 'values', directoryPath: 'values' } }],
      },
    });
    assert.deepEqual(await runner.run(req), { exitCode: 0, stdout: 'Wrote 2 inline files' });
    assert.equal(readFileSync(join(req.directory, 'config', 'a.yml'), 'utf8'), 'a: 1\n');
    assert.equal(readFileSync(join(req.directory, 'values', 'values.yml'), 'utf8'), 'x: 1\n');
  });

  it('refuses a path that leaves the fetch directory, writing nothing', async () => {
    const req = request({ inline: { paths: { '../escape.yml': 'a: 1' } } });
    assert.deepEqual(await runner.run(req), {
      exitCode: 1,
      error: 'inline path "../escape.yml": must be a relative path inside the fetch directory',
      awaitsInputChange: true,
    });
    assert.deepEqual(readdirSync(req.directory), []);
  });

  it('fails clearly on a missing Secret and on configMapRef', async () => {
    assert.deepEqual(
      await runner.run(request({ inline: { pathsFrom: [{ secretRef: { name: 'nope' } }] } })),
      {
        exitCode: 1,
        error: 'Secret nope not found in namespace ns',
        awaitsInputChange: true,
      },
    );
    assert.deepEqual(
      await runner.run(request({ inline: { pathsFrom: [{ configMapRef: { name: 'cm' } }] } })),
      {
        exitCode: 1,
        error: 'inline.pathsFrom[0].configMapRef: not supported yet',
        awaitsInputChange: true,
      },
    );
  });
});

describe('RegistryFetchRunner', () => {
  const runner = new RegistryFetchRunner({ registry: noRegistry, readSecret });

  it('runs image and imgpkgBundle stages only', () => {
    assert.equal(runner.canRun({ image: { url: 'r.io/a:1' } }), true);
    assert.equal(runner.canRun({ imgpkgBundle: { image: 'r.io/a:1' } }), true);
    assert.equal(runner.canRun({ git: { url: 'https://g' } }), false);
  });

  it('fails before reaching the registry when the Secret is missing or unusable, and waits for it to change', async () => {
    const stage = { imgpkgBundle: { image: 'r.io/a:1' } };
    assert.deepEqual(await runner.run(request(stage, 'nope')), {
      exitCode: 1,
      error: 'Secret nope not found in namespace ns',
      awaitsInputChange: true,
    });
    assert.deepEqual(await runner.run(request(stage, 'broken')), {
      exitCode: 1,
      error: 'Secret broken, key .dockerconfigjson: value is not valid JSON',
      awaitsInputChange: true,
    });
  });

  it('refuses tagSelection on a reference naming a tag, a non-semver tagSelection, and a subPath outside the image', async () => {
    assert.deepEqual(
      await runner.run(request({ image: { url: 'r.io/a:1', tagSelection: { semver: {} } } })),
      {
        exitCode: 1,
        error: 'image.url must name no tag or digest when image.tagSelection is set',
        awaitsInputChange: true,
      },
    );
    assert.deepEqual(await runner.run(request({ imgpkgBundle: { image: 'r.io/a', tagSelection: {} } })), {
      exitCode: 1,
      error: 'imgpkgBundle.tagSelection: only semver selection is supported (tagSelection.semver)',
      awaitsInputChange: true,
    });
    assert.deepEqual(await runner.run(request({ image: { url: 'r.io/a:1', subPath: '../up' } })), {
      exitCode: 1,
      error: 'image.subPath "../up" must be a relative path inside the image',
      awaitsInputChange: true,
    });
  });

  describe('with a registry', () => {
    const pulls: Array<{ image: string; options: Record<string, unknown> }> = [];
    const lists: Array<{ image: string; options: Record<string, unknown> }> = [];
    const fakeClient = {
      listTags: async (image: string, options: Record<string, unknown>) => {
        lists.push({ image, options });
        return ['latest', '1.0.0', '1.2.0', '2.0.0-rc.1', 'v0.9.0'];
      },
      pull: async (image: string, options: Record<string, unknown>) => {
        pulls.push({ image, options });
        return {
          pinned: `r.io/a@sha256:${'1'.repeat(64)}`,
          files: 1,
          bytes: 2,
          diskBytes: 4096,
          skipped: [],
        };
      },
    };
    const withRegistry = new RegistryFetchRunner({
      registry: { lease: async () => ({ client: fakeClient as never, release: () => undefined }) },
      readSecret: async (ns, name) =>
        name === 'scoped'
          ? { type: 'Opaque', data: { username: b64('u'), password: b64('p'), hostname: b64('r.io') } }
          : readSecret(ns, name),
    });

    it('pulls the highest tag tagSelection matches and reports it', async () => {
      pulls.length = 0;
      const stage = {
        imgpkgBundle: { image: 'r.io/a', tagSelection: { semver: { constraints: '<2.0.0' } } },
      };
      assert.deepEqual(await withRegistry.run(request(stage)), {
        exitCode: 0,
        bytes: 2,
        stdout: `Fetched imgpkgBundle r.io/a@sha256:${'1'.repeat(64)} (tag 1.2.0, selected by tagSelection among 5 tags; 1 files, 2 bytes)`,
      });
      assert.deepEqual(
        pulls.map((p) => p.image),
        ['r.io/a:1.2.0'],
      );
    });

    it("fails with version selection's message when no tag matches, without pulling (tags may still come)", async () => {
      pulls.length = 0;
      const stage = { image: { url: 'r.io/a', tagSelection: { semver: { constraints: '>=3.0.0' } } } };
      assert.deepEqual(await withRegistry.run(request(stage)), {
        exitCode: 1,
        error:
          'r.io/a: tagSelection: Expected to find at least one version, but did not ' +
          '(details: all=4 -> after-prereleases-filter=3 -> after-constraints-filter=0)',
      });
      assert.equal(pulls.length, 0);
    });

    it('hands a hostname-scoped Secret to the client as a single auths entry, never as a credential for any host', async () => {
      pulls.length = 0;
      lists.length = 0;
      const stage = { image: { url: 'r.io/a', tagSelection: { semver: {} } } };
      assert.equal((await withRegistry.run(request(stage, 'scoped'))).exitCode, 0);
      for (const call of [...lists, ...pulls]) {
        assert.equal(call.options['credential'], undefined);
        assert.deepEqual(call.options['auths'], [
          { registry: 'r.io', entry: { username: 'u', password: 'p' } },
        ]);
      }
    });
  });

  it('reports an unusable operator configuration as waiting for it to change', async () => {
    const invalid = new RegistryFetchRunner({
      registry: { lease: () => Promise.reject(new ConfigurationError('config is invalid: caCerts: bad')) },
      readSecret,
    });
    assert.deepEqual(await invalid.run(request({ imgpkgBundle: { image: 'r.io/a:1' } })), {
      exitCode: 1,
      error: 'config is invalid: caCerts: bad',
      awaitsInputChange: true,
    });
  });
});

describe('RegistryFetchRunner and relocated bundles', () => {
  const digest = (c: string) => `sha256:${c.repeat(64)}`;
  const MIRROR = 'mirror.example.com/copied/repo';
  const imagesLock = (image: string) =>
    `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: ${image}\n`;
  /** A registry whose pull writes `images` as the bundle's images.yml and that has every manifest in `present`. */
  function fakeRegistry(images: string, present: string[]) {
    const requests: string[] = [];
    const client = {
      async pull(image: string, options: { targetDir: string; kind: string }) {
        requests.push(`pull ${image}`);
        mkdirSync(join(options.targetDir, '.imgpkg'), { recursive: true });
        writeFileSync(join(options.targetDir, '.imgpkg', 'images.yml'), images);
        return {
          pinned: `${MIRROR}@${digest('b')}`,
          files: 1,
          bytes: images.length,
          diskBytes: 4096,
          skipped: [],
        };
      },
      async hasManifest(image: string) {
        requests.push(`manifest ${image}`);
        return present.includes(image);
      },
    };
    const registry: RegistryAccess = {
      lease: async () => ({ client: client as unknown as RegistryClient, release: () => undefined }),
    };
    return { registry, requests };
  }

  it('an imgpkgBundle pull rewrites images.yml to the bundle repository and says so', async () => {
    const lockText = imagesLock(`unreachable.invalid/app@${digest('1')}`);
    const { registry, requests } = fakeRegistry(lockText, [`${MIRROR}@${digest('1')}`]);
    const req = request({ imgpkgBundle: { image: `${MIRROR}:1.0.0` } });
    assert.deepEqual(await new RegistryFetchRunner({ registry, readSecret }).run(req), {
      exitCode: 0,
      bytes: lockText.length,
      stdout:
        `Fetched imgpkgBundle ${MIRROR}@${digest('b')} (1 files, ${lockText.length} bytes)` +
        `; .imgpkg/images.yml: 1 image relocated to ${MIRROR} (each found there by digest)`,
    });
    assert.match(
      readFileSync(join(req.directory, '.imgpkg', 'images.yml'), 'utf8'),
      new RegExp(`image: ${MIRROR}@${digest('1')}`),
    );
    assert.deepEqual(requests, [
      `pull ${MIRROR}:1.0.0`,
      `manifest ${MIRROR}:sha256-${'b'.repeat(64)}.image-locations.imgpkg`,
      `manifest ${MIRROR}@${digest('1')}`,
    ]);
  });

  it('an image pull leaves images.yml alone (imgpkg relocates bundles only)', async () => {
    const { registry, requests } = fakeRegistry(imagesLock(`unreachable.invalid/app@${digest('1')}`), []);
    const req = request({ image: { url: `${MIRROR}:1.0.0` } });
    const outcome = await new RegistryFetchRunner({ registry, readSecret }).run(req);
    assert.equal(outcome.exitCode, 0);
    assert.deepEqual(requests, [`pull ${MIRROR}:1.0.0`]);
  });

  it('an unusable images.yml fails the fetch naming the bundle and the entry', async () => {
    const { registry } = fakeRegistry(imagesLock('unreachable.invalid/app:1.0.0'), []);
    const outcome = await new RegistryFetchRunner({ registry, readSecret }).run(
      request({ imgpkgBundle: { image: `${MIRROR}:1.0.0` } }),
    );
    assert.deepEqual(outcome, {
      exitCode: 1,
      error: `${MIRROR}:1.0.0: .imgpkg/images.yml: images[0].image "unreachable.invalid/app:1.0.0" must be a digest reference`,
    });
  });
});

describe('fetch runners inside an admitted fetch', () => {
  const admitted = <T>(limiter: FetchLimiter, fn: () => Promise<T>) =>
    limiter.run('app/ns/x', async () => {
      assert.ok(limiter.admit('app/ns/x', 'ns', () => undefined));
      return fn();
    });

  it('keep all stages of a fetch within its share of --fetch-disk-budget', async () => {
    // 8 fetches share 64 KiB: 8 KiB (two 4 KiB blocks) each.
    const limiter = new FetchLimiter({ maxConcurrent: 8, timeoutMs: 60_000, diskBudgetBytes: 64 * 1024 });
    const runner = new InlineFetchRunner({ readSecret });
    const [first, second, third] = await admitted(limiter, async () => [
      await runner.run(request({ inline: { paths: { 'a.yml': 'a: 1\n' } } })),
      await runner.run(request({ inline: { paths: { 'b.yml': 'x'.repeat(4096) } } })),
      await runner.run(request({ inline: { paths: { 'c.yml': 'c: 1\n' } } })),
    ]);
    assert.equal(first?.exitCode, 0);
    assert.equal(second?.exitCode, 0);
    assert.deepEqual(third, {
      exitCode: 1,
      error:
        'inline files need 4096 bytes of disk, over the 0 bytes this fetch has left; ' +
        'a fetch may use 8 KiB of disk (--fetch-disk-budget / --max-concurrent-fetches)',
      awaitsInputChange: true,
    });
  });

  it('an image stage whose deadline has passed fails with it before reaching the registry', async () => {
    const limiter = new FetchLimiter({ maxConcurrent: 1, timeoutMs: 10, diskBudgetBytes: 1024 * 1024 });
    const outcome = await admitted(limiter, async () => {
      await new Promise((r) => setTimeout(r, 30));
      return new RegistryFetchRunner({ registry: noRegistry, readSecret }).run(
        request({ image: { url: 'registry.example.com/app:1' } }),
      );
    });
    assert.deepEqual(outcome, {
      exitCode: 1,
      error: 'registry.example.com/app:1: fetch timed out after 10ms (--fetch-timeout)',
    });
  });
});

describe('RegistryFetchRunner with a cloud keychain', () => {
  const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
  const pinned = `${ECR}/app@sha256:${'2'.repeat(64)}`;
  const pulls: Array<Record<string, unknown>> = [];
  const lookups: string[] = [];
  let rejectPull: string | undefined;
  const client = {
    pull: async (_image: string, options: Record<string, unknown>) => {
      pulls.push(options);
      if (rejectPull)
        throw new RegistryError({ code: rejectPull, reason: 'authentication required', host: ECR });
      return { pinned, files: 1, bytes: 2, diskBytes: 4096, skipped: [] };
    },
  };
  const keychain = (answer: KeychainAnswer): FetchKeychain => ({
    lookup: async (namespace, registry) => {
      lookups.push(`${namespace} ${registry}`);
      return answer;
    },
  });
  const runner = (answer: KeychainAnswer) =>
    new RegistryFetchRunner({
      registry: { lease: async () => ({ client: client as never, release: () => undefined }) },
      readSecret: async (ns, name) =>
        name === 'ecr-entry'
          ? {
              type: 'kubernetes.io/dockerconfigjson',
              data: {
                '.dockerconfigjson': b64(
                  JSON.stringify({ auths: { [ECR]: { username: 'u', password: 'p' } } }),
                ),
              },
            }
          : name === 'empty'
            ? { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"auths":{}}') } }
            : readSecret(ns, name),
      keychain: keychain(answer),
    });
  const reset = () => {
    pulls.length = 0;
    lookups.length = 0;
    rejectPull = undefined;
  };
  const minted: KeychainAnswer = { kind: 'credential', provider: 'ecr', username: 'AWS', password: 'minted' };

  it('uses the keychain when the secretRef has no credential for the registry, and says so', async () => {
    reset();
    const outcome = await runner(minted).run(request({ imgpkgBundle: { image: `${ECR}/app:1.0` } }, 'empty'));
    assert.equal(outcome.exitCode, 0);
    assert.match(
      outcome.stdout ?? '',
      /; credentials from the ecr keychain \(the operator's cloud identity\)$/,
    );
    assert.deepEqual(lookups, [`ns ${ECR}`]);
    assert.deepEqual(pulls[0]!['auths'], [{ registry: ECR, entry: { username: 'AWS', password: 'minted' } }]);
  });

  it('uses the keychain without any secretRef too', async () => {
    reset();
    const outcome = await runner(minted).run(request({ image: { url: `${ECR}/app:1.0` } }));
    assert.equal(outcome.exitCode, 0);
    assert.deepEqual(lookups, [`ns ${ECR}`]);
  });

  it('never asks the keychain when the secretRef has a credential for the registry', async () => {
    reset();
    const outcome = await runner(minted).run(request({ image: { url: `${ECR}/app:1.0` } }, 'ecr-entry'));
    assert.equal(outcome.exitCode, 0);
    assert.deepEqual(lookups, []);
    assert.doesNotMatch(outcome.stdout ?? '', /keychain/);
    assert.equal((pulls[0]!['auths'] as Array<{ entry: { password: string } }>)[0]!.entry.password, 'p');
  });

  it('fails with the provider and its reason when the keychain cannot mint, before pulling', async () => {
    reset();
    const outcome = await runner({ kind: 'failed', provider: 'ecr', error: 'no AWS credentials found' }).run(
      request({ image: { url: `${ECR}/app:1.0` } }),
    );
    assert.deepEqual(outcome, {
      exitCode: 1,
      error: `${ECR}/app:1.0: no credential from the ecr keychain (the operator's cloud identity): no AWS credentials found`,
    });
    assert.equal(pulls.length, 0);
  });

  it('a rejected pull names the keychain it sent, or why no keychain was used', async () => {
    reset();
    rejectPull = 'UNAUTHORIZED';
    const sent = await runner(minted).run(request({ image: { url: `${ECR}/app:1.0` } }));
    assert.match(
      sent.error ?? '',
      /\(sent the credentials of the ecr keychain: the operator's cloud identity\)$/,
    );
    const notUsed = await runner({
      kind: 'none',
      note: 'the ecr keychain was not used: namespace ns is not listed in iaasKeychainNamespaces',
    }).run(request({ image: { url: `${ECR}/app:1.0` } }));
    assert.match(
      notUsed.error ?? '',
      /\(sent no credentials: the fetch names no secret\); the ecr keychain was not used: namespace ns is not listed in iaasKeychainNamespaces$/,
    );
  });
});
