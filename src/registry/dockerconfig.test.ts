import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  NO_CREDENTIAL_REASON,
  normalizeRegistryKey,
  parseDockerConfigJson,
  serializeDockerConfigJson,
  type DockerConfigRegistry,
  type SkippedRegistry,
} from './dockerconfig.js';
import { KEY_TOO_LONG_REASON, TOO_MANY_WILDCARDS_REASON } from './registry-key.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const SECRET = 's3cr3t-Pa55';

describe('parseDockerConfigJson', () => {
  const accepted: Array<{
    name: string;
    text: string;
    registries: DockerConfigRegistry[];
    skipped?: SkippedRegistry[];
  }> = [
    { name: 'the placeholder seed {} with a newline parses as no registries', text: '{}\n', registries: [] },
    { name: 'an empty auths object parses as no registries', text: '{"auths":{}}', registries: [] },
    {
      name: 'username, password and auth are kept and auth is copied verbatim, never recomputed',
      text: JSON.stringify({
        auths: { 'r.io': { username: 'u', password: 'p', auth: 'not-base64-of-u:p' } },
      }),
      registries: [{ registry: 'r.io', entry: { username: 'u', password: 'p', auth: 'not-base64-of-u:p' } }],
    },
    {
      name: 'a missing auth is computed as base64(username:password)',
      text: JSON.stringify({ auths: { 'r.io': { username: 'u', password: 'p' } } }),
      registries: [{ registry: 'r.io', entry: { username: 'u', password: 'p', auth: b64('u:p') } }],
    },
    {
      name: 'an empty auth is computed as base64(username:password), as in the seed example',
      text: JSON.stringify({ auths: { 'index.docker.io': { username: 'user', password: 'pw', auth: '' } } }),
      registries: [
        { registry: 'index.docker.io', entry: { username: 'user', password: 'pw', auth: b64('user:pw') } },
      ],
    },
    {
      name: 'identitytoken, registrytoken and email are kept',
      text: JSON.stringify({
        auths: {
          'a.io': { identitytoken: 'it' },
          'b.io': { registrytoken: 'rt', email: 'e@x' },
        },
      }),
      registries: [
        { registry: 'a.io', entry: { identitytoken: 'it' } },
        { registry: 'b.io', entry: { email: 'e@x', registrytoken: 'rt' } },
      ],
    },
    {
      name: 'an entry with no credential is skipped and reported, the others are kept',
      text: JSON.stringify({ auths: { 'a.io': { email: 'e@x' }, 'b.io': {}, 'c.io': { auth: 'x' } } }),
      registries: [{ registry: 'c.io', entry: { auth: 'x' } }],
      skipped: [
        { registry: 'a.io', reason: NO_CREDENTIAL_REASON },
        { registry: 'b.io', reason: NO_CREDENTIAL_REASON },
      ],
    },
    {
      name: 'an entry whose credential fields are all empty strings has no credential',
      text: JSON.stringify({ auths: { 'a.io': { username: '', password: '', auth: '' } } }),
      registries: [],
      skipped: [{ registry: 'a.io', reason: NO_CREDENTIAL_REASON }],
    },
    {
      name: 'null fields read as absent, like Go does',
      text: JSON.stringify({ auths: { 'a.io': { auth: 'x', email: null } } }),
      registries: [{ registry: 'a.io', entry: { auth: 'x' } }],
    },
    {
      name: 'unknown fields in entries and at the top level are ignored',
      text: JSON.stringify({
        credsStore: 'desktop',
        auths: { 'a.io': { auth: 'x', serveraddress: 'a.io' } },
      }),
      registries: [{ registry: 'a.io', entry: { auth: 'x' } }],
    },
    {
      name: 'keys beyond the caps are skipped with the reason, the others are kept',
      text: JSON.stringify({
        auths: {
          '*a*a*a*a*a*a*a*a*a*a*b.example.com': { auth: 'x' },
          [`r.io/${'a'.repeat(251)}`]: { auth: 'x' },
          '*a*b*c*.r.io': { auth: 'x' },
        },
      }),
      registries: [{ registry: '*a*b*c*.r.io', entry: { auth: 'x' } }],
      skipped: [
        { registry: '*a*a*a*a*a*a*a*a*a*a*b.example.com', reason: TOO_MANY_WILDCARDS_REASON },
        { registry: `r.io/${'a'.repeat(251)}`, reason: KEY_TOO_LONG_REASON },
      ],
    },
    {
      name: 'a key beyond the caps is skipped whatever its entry holds',
      text: JSON.stringify({ auths: { [`${'h'.repeat(300)}.io`]: 'not an object' } }),
      registries: [],
      skipped: [{ registry: `${'h'.repeat(300)}.io`, reason: KEY_TOO_LONG_REASON }],
    },
    {
      name: 'registries come back sorted by key',
      text: JSON.stringify({ auths: { 'z.io': { auth: 'z' }, 'a.io': { auth: 'a' } } }),
      registries: [
        { registry: 'a.io', entry: { auth: 'a' } },
        { registry: 'z.io', entry: { auth: 'z' } },
      ],
    },
  ];
  for (const c of accepted) {
    it(c.name, () => {
      const result = parseDockerConfigJson(c.text);
      assert.deepEqual(result, { ok: true, registries: c.registries, skipped: c.skipped ?? [] });
    });
  }

  const rejected: Array<{ name: string; text: string; error: string }> = [
    {
      name: 'text that is not JSON is rejected',
      text: `{"auths": ${SECRET}`,
      error: 'value is not valid JSON',
    },
    { name: 'a JSON array is rejected', text: '[]', error: 'expected a JSON object, got array' },
    {
      name: 'a non-empty object without auths is rejected',
      text: JSON.stringify({ 'r.io': { auth: SECRET } }),
      error: 'expected an "auths" object, found none',
    },
    {
      name: 'auths that is not an object is rejected',
      text: JSON.stringify({ auths: [SECRET] }),
      error: 'expected "auths" to be an object, got array',
    },
    {
      name: 'auths that is null is rejected',
      text: JSON.stringify({ auths: null }),
      error: 'expected "auths" to be an object, got null',
    },
    {
      name: 'an entry that is not an object is rejected, naming the registry key',
      text: JSON.stringify({ auths: { 'r.io': SECRET } }),
      error: 'auths["r.io"]: expected an object, got string',
    },
    {
      name: 'a password that is not a string is rejected, naming the registry and field',
      text: JSON.stringify({ auths: { 'r.io': { username: 'u', password: 12345 } } }),
      error: 'auths["r.io"].password: expected a string, got number',
    },
    {
      name: 'an identitytoken that is an object is rejected',
      text: JSON.stringify({ auths: { 'r.io': { identitytoken: { value: SECRET } } } }),
      error: 'auths["r.io"].identitytoken: expected a string, got object',
    },
    {
      name: 'an entry error names the key without the user info written into it',
      text: JSON.stringify({ auths: { 'https://bob:hunter2@r.io': SECRET } }),
      error: 'auths["https://***@r.io"]: expected an object, got string',
    },
    {
      name: 'a field error names the key without the user info written into it',
      text: JSON.stringify({ auths: { 'bob:hunter2@r.io/v1/': { password: 1 } } }),
      error: 'auths["***@r.io/v1/"].password: expected a string, got number',
    },
    {
      name: 'an entry error escapes control characters of the key',
      text: JSON.stringify({ auths: { 'r.io\nlevel=error msg=forged': 1 } }),
      error: 'auths["r.io\\u{a}level=error msg=forged"]: expected an object, got number',
    },
    {
      name: 'an email that is a boolean is rejected',
      text: JSON.stringify({ auths: { 'r.io': { auth: SECRET, email: true } } }),
      error: 'auths["r.io"].email: expected a string, got boolean',
    },
  ];
  for (const c of rejected) {
    it(c.name, () => {
      const result = parseDockerConfigJson(c.text);
      assert.deepEqual(result, { ok: false, error: c.error });
      assert.ok(!c.error.includes(SECRET));
      assert.ok(!c.error.includes('hunter2'));
    });
  }
});

describe('normalizeRegistryKey', () => {
  const cases: Array<{ name: string; key: string; normalized: string }> = [
    { name: 'a bare host stays as it is', key: 'registry.corp.com', normalized: 'registry.corp.com' },
    {
      name: 'the https scheme is stripped',
      key: 'https://registry.corp.com',
      normalized: 'registry.corp.com',
    },
    { name: 'the http scheme is stripped', key: 'http://registry.corp.com', normalized: 'registry.corp.com' },
    { name: 'a trailing /v1/ is stripped', key: 'registry.corp.com/v1/', normalized: 'registry.corp.com' },
    { name: 'a trailing /v2/ is stripped', key: 'registry.corp.com/v2/', normalized: 'registry.corp.com' },
    {
      name: 'a trailing /v2 without slash is stripped',
      key: 'registry.corp.com/v2',
      normalized: 'registry.corp.com',
    },
    { name: 'a trailing slash is stripped', key: 'registry.corp.com/', normalized: 'registry.corp.com' },
    { name: 'the host is lower-cased', key: 'HTTPS://Registry.Corp.COM', normalized: 'registry.corp.com' },
    { name: 'the port is kept', key: 'https://localhost:5000/v2/', normalized: 'localhost:5000' },
    {
      name: 'a path is kept with its case',
      key: 'Registry.corp.com/Team-A/',
      normalized: 'registry.corp.com/Team-A',
    },
    { name: 'a /v2 in the middle of a path is kept', key: 'r.io/v2/team', normalized: 'r.io/v2/team' },
    { name: 'index.docker.io is docker.io', key: 'https://index.docker.io/v1/', normalized: 'docker.io' },
    { name: 'docker.io is docker.io', key: 'docker.io', normalized: 'docker.io' },
    {
      name: 'a docker.io path keeps the alias folding',
      key: 'index.docker.io/library',
      normalized: 'docker.io/library',
    },
    { name: 'a lookalike host is not folded', key: 'mydocker.io', normalized: 'mydocker.io' },
    { name: 'user info is dropped', key: 'https://u:p@R.io/v1/', normalized: 'r.io' },
    { name: 'user info holding @ is dropped', key: 'u:p@ss@r.io/team', normalized: 'r.io/team' },
    { name: 'an @ in the path is kept', key: 'r.io/team@x', normalized: 'r.io/team@x' },
    {
      name: 'user info before docker.io keeps the alias folding',
      key: 'u:p@index.docker.io',
      normalized: 'docker.io',
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(normalizeRegistryKey(c.key), c.normalized));
  }

  it('trailing slashes and /v2 after them are stripped together', () => {
    assert.equal(normalizeRegistryKey('r.io///v2///'), 'r.io');
    assert.equal(normalizeRegistryKey('r.io/v1/v2/'), 'r.io/v1');
  });

  // `/\/+$/` took time quadratic in a run of slashes that does not end the key (20,000 took 0.3 s,
  // so a 1 MiB key would take minutes); the loop is linear. The bound only guards the regression.
  it('reads a key with a long run of slashes in linear time', () => {
    const key = `r.io${'/'.repeat(200_000)}x`;
    const started = performance.now();
    assert.equal(normalizeRegistryKey(key), key);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  });
});

describe('serializeDockerConfigJson', () => {
  const cases: Array<{ name: string; registries: DockerConfigRegistry[]; json: string }> = [
    { name: 'no registries give exactly {"auths":{}}', registries: [], json: '{"auths":{}}' },
    {
      name: 'keys are sorted and fields come in a fixed order whatever the input order',
      registries: [
        { registry: 'z.io', entry: { registrytoken: 'r', auth: 'a', username: 'u' } },
        { registry: 'a.io', entry: { email: 'e', password: 'p', identitytoken: 'i' } },
      ],
      json: '{"auths":{"a.io":{"password":"p","email":"e","identitytoken":"i"},"z.io":{"username":"u","auth":"a","registrytoken":"r"}}}',
    },
    {
      name: 'the upstream field order username, password, auth is kept',
      registries: [{ registry: 'r.io', entry: { auth: 'dTpw', password: 'p', username: 'u' } }],
      json: '{"auths":{"r.io":{"username":"u","password":"p","auth":"dTpw"}}}',
    },
    {
      name: 'a __proto__ key is an ordinary registry key',
      registries: [{ registry: '__proto__', entry: { auth: 'x' } }],
      json: '{"auths":{"__proto__":{"auth":"x"}}}',
    },
    {
      name: 'quotes and backslashes in values are JSON-escaped',
      registries: [{ registry: 'r.io', entry: { password: 'a"b\\c' } }],
      json: '{"auths":{"r.io":{"password":"a\\"b\\\\c"}}}',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const json = serializeDockerConfigJson(c.registries);
      assert.equal(json, c.json);
      assert.doesNotThrow(() => JSON.parse(json) as unknown);
    });
  }

  it('a parse and serialize round trip is byte-stable', () => {
    const text = JSON.stringify({
      auths: { 'b.io': { auth: 'b', username: 'u', password: 'p' }, 'a.io': { auth: 'a' } },
    });
    const parsed = parseDockerConfigJson(text);
    assert.ok(parsed.ok);
    const once = serializeDockerConfigJson(parsed.registries);
    const again = parseDockerConfigJson(once);
    assert.ok(again.ok);
    assert.equal(serializeDockerConfigJson(again.registries), once);
  });
});
