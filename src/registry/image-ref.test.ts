import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  formatImageRef,
  ImageRefError,
  manifestReference,
  parseImageRef,
  pinnedImageRef,
  registryApiHost,
  splitHostPort,
  type ImageRef,
} from './image-ref.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('parseImageRef', () => {
  const accepted: Array<{ name: string; text: string; ref: ImageRef }> = [
    {
      name: 'a Docker Hub user repository gets index.docker.io and the latest tag',
      text: 'k14stest/private-repo',
      ref: { registry: 'index.docker.io', repository: 'k14stest/private-repo', tag: 'latest' },
    },
    {
      name: 'a single-segment Docker Hub name gets the library/ prefix',
      text: 'nginx:1.27',
      ref: { registry: 'index.docker.io', repository: 'library/nginx', tag: '1.27' },
    },
    {
      name: 'docker.io is normalized to index.docker.io and also gets library/',
      text: 'docker.io/busybox',
      ref: { registry: 'index.docker.io', repository: 'library/busybox', tag: 'latest' },
    },
    {
      name: 'index.docker.io keeps a namespaced repository as written',
      text: 'index.docker.io/k14stest/private-repo:v1',
      ref: { registry: 'index.docker.io', repository: 'k14stest/private-repo', tag: 'v1' },
    },
    {
      name: 'a registry with a port and a nested path',
      text: '127.0.0.1:5000/some/path/bundle:1.0.0',
      ref: { registry: '127.0.0.1:5000', repository: 'some/path/bundle', tag: '1.0.0' },
    },
    {
      name: 'localhost is a registry even without a dot or port',
      text: 'localhost/app',
      ref: { registry: 'localhost', repository: 'app', tag: 'latest' },
    },
    {
      name: 'a digest reference has no tag',
      text: `ghcr.io/org/app@${DIGEST}`,
      ref: { registry: 'ghcr.io', repository: 'org/app', digest: DIGEST },
    },
    {
      name: 'a tag and a digest are both kept',
      text: `ghcr.io/org/app:v2@${DIGEST}`,
      ref: { registry: 'ghcr.io', repository: 'org/app', tag: 'v2', digest: DIGEST },
    },
    {
      name: 'the registry host is lower-cased, the port kept',
      text: 'Registry.Example.COM:8443/team/app',
      ref: { registry: 'registry.example.com:8443', repository: 'team/app', tag: 'latest' },
    },
    {
      name: 'an IPv6 literal registry with a port',
      text: '[::1]:5000/app:t',
      ref: { registry: '[::1]:5000', repository: 'app', tag: 't' },
    },
    {
      name: 'separators in path components: dots, underscores, double underscores, dashes',
      text: 'r.io/a.b/c_d/e__f/g--h',
      ref: { registry: 'r.io', repository: 'a.b/c_d/e__f/g--h', tag: 'latest' },
    },
  ];
  for (const { name, text, ref } of accepted) {
    it(name, () => assert.deepEqual(parseImageRef(text), ref));
  }

  const rejected: Array<{ name: string; text: string; reason: RegExp }> = [
    { name: 'empty', text: '', reason: /empty/ },
    { name: 'a scheme', text: 'https://r.io/app', reason: /scheme/ },
    { name: 'upper-case repository', text: 'r.io/App', reason: /lower-case/ },
    { name: 'a sha512 digest', text: `r.io/app@sha512:${'a'.repeat(128)}`, reason: /sha256/ },
    { name: 'a short digest', text: 'r.io/app@sha256:abc', reason: /malformed digest/ },
    { name: 'a tag with a slash-free bad character', text: 'r.io/app:v1!', reason: /malformed tag/ },
    { name: 'a trailing slash', text: 'r.io/app/', reason: /malformed path component/ },
    { name: 'a registry without repository', text: 'r.io/', reason: /missing repository/ },
    { name: 'a bad port', text: 'r.io:99999/app', reason: /registry host/ },
    { name: 'whitespace', text: ' r.io/app', reason: /whitespace/ },
    { name: 'a path traversal component', text: 'r.io/../app', reason: /path component/ },
    { name: 'a name over 255 characters', text: `r.io/${'a'.repeat(260)}`, reason: /255/ },
  ];
  for (const { name, text, reason } of rejected) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => parseImageRef(text),
        (err: unknown) => err instanceof ImageRefError && reason.test(err.message),
      );
    });
  }
});

describe('image reference helpers', () => {
  it('Docker Hub API requests go to registry-1.docker.io, others to the registry itself', () => {
    assert.equal(registryApiHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('127.0.0.1:5000'), '127.0.0.1:5000');
  });

  it('the manifest reference is the digest when present, else the tag', () => {
    assert.equal(manifestReference(parseImageRef(`r.io/a:t@${DIGEST}`)), DIGEST);
    assert.equal(manifestReference(parseImageRef('r.io/a:t')), 't');
  });

  it('formats fully qualified and pinned references', () => {
    const ref = parseImageRef('nginx');
    assert.equal(formatImageRef(ref), 'index.docker.io/library/nginx:latest');
    assert.equal(pinnedImageRef(ref, DIGEST), `index.docker.io/library/nginx@${DIGEST}`);
  });

  it('splits host and port, including bracketed IPv6', () => {
    assert.deepEqual(splitHostPort('r.io'), { host: 'r.io' });
    assert.deepEqual(splitHostPort('r.io:443'), { host: 'r.io', port: '443' });
    assert.deepEqual(splitHostPort('[::1]:5000'), { host: '[::1]', port: '5000' });
    assert.deepEqual(splitHostPort('[::1]'), { host: '[::1]' });
    assert.equal(splitHostPort('[::1'), undefined);
  });
});
