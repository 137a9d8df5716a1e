import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SecretReferences, fetchSecretNames, repositorySecretNames } from './secret-references.js';

describe('fetchSecretNames', () => {
  it('lists the secretRef of every kind that takes one, and inline pathsFrom secrets, sorted once each', () => {
    assert.deepEqual(
      fetchSecretNames([
        { imgpkgBundle: { image: 'r/b:1', secretRef: { name: 'b' } } },
        { image: { url: 'r/i:1', secretRef: { name: 'a' } } },
        { http: { url: 'https://x', secretRef: { name: 'h' } } },
        { git: { url: 'https://g', secretRef: { name: 'a' } } },
        { helmChart: { name: 'c', repository: { url: 'https://c', secretRef: { name: 'c' } } } },
        {
          inline: {
            paths: { 'a.yml': 'a: 1' },
            pathsFrom: [{ secretRef: { name: 'inline-values' } }, { configMapRef: { name: 'cm' } }],
          },
        },
      ]),
      ['a', 'b', 'c', 'h', 'inline-values'],
    );
  });

  it('is empty for stages without secrets', () => {
    assert.deepEqual(fetchSecretNames([{ imgpkgBundle: { image: 'r/b:1' } }, { inline: {} }]), []);
    assert.deepEqual(fetchSecretNames(undefined), []);
  });
});

describe('repositorySecretNames', () => {
  it('is the placeholder <name>-fetch-0 for an imgpkgBundle without secretRef', () => {
    assert.deepEqual(
      repositorySecretNames({
        metadata: { name: 'repo' },
        spec: { fetch: { imgpkgBundle: { image: 'r/b:1' } } },
      }),
      ['repo-fetch-0'],
    );
  });

  it('is the secretRef when one is given, and nothing for a fetch without secrets', () => {
    assert.deepEqual(
      repositorySecretNames({
        metadata: { name: 'repo' },
        spec: { fetch: { image: { url: 'r/i:1', secretRef: { name: 'creds' } } } },
      }),
      ['creds'],
    );
    assert.deepEqual(
      repositorySecretNames({ metadata: { name: 'repo' }, spec: { fetch: { inline: { paths: {} } } } }),
      [],
    );
    assert.deepEqual(repositorySecretNames({ metadata: { name: 'repo' }, spec: {} }), []);
  });
});

describe('SecretReferences', () => {
  it('acquires a Secret with its first owner and releases it with its last', () => {
    const refs = new SecretReferences();
    assert.deepEqual(refs.set('ns/app-a', ['ns/s1', 'ns/s2']), {
      acquired: ['ns/s1', 'ns/s2'],
      released: [],
    });
    assert.deepEqual(refs.set('ns/app-b', ['ns/s1']), { acquired: [], released: [] });
    assert.deepEqual(refs.ownersOf('ns/s1'), ['ns/app-a', 'ns/app-b']);
    assert.deepEqual(refs.delete('ns/app-a'), { acquired: [], released: ['ns/s2'] });
    assert.deepEqual(refs.ownersOf('ns/s1'), ['ns/app-b']);
    assert.deepEqual(refs.delete('ns/app-b'), { acquired: [], released: ['ns/s1'] });
    assert.equal(refs.secretCount, 0);
  });

  it('moves an owner from one Secret to another', () => {
    const refs = new SecretReferences();
    refs.set('ns/repo', ['ns/repo-fetch-0']);
    assert.deepEqual(refs.set('ns/repo', ['ns/creds']), {
      acquired: ['ns/creds'],
      released: ['ns/repo-fetch-0'],
    });
    assert.deepEqual(refs.secretsOf('ns/repo'), ['ns/creds']);
    assert.equal(refs.isReferenced('ns/repo-fetch-0'), false);
  });

  it('reports nothing when the references are unchanged, and nothing for an unknown owner', () => {
    const refs = new SecretReferences();
    refs.set('ns/app', ['ns/s']);
    assert.deepEqual(refs.set('ns/app', ['ns/s', 'ns/s']), { acquired: [], released: [] });
    assert.deepEqual(refs.delete('ns/other'), { acquired: [], released: [] });
    assert.deepEqual(refs.ownersOf('ns/unknown'), []);
  });
});
