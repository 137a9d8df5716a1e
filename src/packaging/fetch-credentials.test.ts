import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectCredential, type RegistryCredential } from '../registry/auth-match.js';
import { parseImageRef } from '../registry/image-ref.js';
import { credentialHint, credentialsFromSecret, type FetchCredentials } from './fetch-credentials.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const dockerConfig = (value: unknown) => ({
  type: 'kubernetes.io/dockerconfigjson',
  data: { '.dockerconfigjson': b64(JSON.stringify(value)) },
});

describe('credentialsFromSecret', () => {
  it('reads every auths entry of a dockerconfigjson Secret, filling auth from username and password', () => {
    const result = credentialsFromSecret(
      dockerConfig({ auths: { '127.0.0.1:5000': { username: 'u', password: 'p', auth: '' } } }),
      'creds',
    );
    assert.deepEqual(result, {
      ok: true,
      credentials: {
        auths: [{ registry: '127.0.0.1:5000', entry: { username: 'u', password: 'p', auth: b64('u:p') } }],
      },
    });
  });

  it('reads an empty placeholder as no credentials', () => {
    assert.deepEqual(credentialsFromSecret(dockerConfig({ auths: {} }), 'p'), {
      ok: true,
      credentials: { auths: [] },
    });
    assert.deepEqual(credentialsFromSecret(dockerConfig({}), 'p'), { ok: true, credentials: { auths: [] } });
  });

  it('reads the legacy dockercfg type', () => {
    const result = credentialsFromSecret(
      {
        type: 'kubernetes.io/dockercfg',
        data: { '.dockercfg': b64('{"r.io":{"auth":"' + b64('a:b') + '"}}') },
      },
      'old',
    );
    assert.ok(result.ok);
    assert.deepEqual(
      result.credentials.auths?.map((a) => a.registry),
      ['r.io'],
    );
  });

  it('uses username and password (or token) of another type for every registry', () => {
    assert.deepEqual(
      credentialsFromSecret({ type: 'Opaque', data: { username: b64('u'), password: b64('p') } }, 's'),
      {
        ok: true,
        credentials: { credential: { kind: 'basic', username: 'u', password: 'p' } },
      },
    );
    assert.deepEqual(credentialsFromSecret({ data: { token: b64('t0k') } }, 's'), {
      ok: true,
      credentials: { credential: { kind: 'registryToken', token: 't0k' } },
    });
    assert.deepEqual(credentialsFromSecret({ type: 'Opaque', data: {} }, 's'), { ok: true, credentials: {} });
  });

  it('names the Secret and key of a broken value without quoting it', () => {
    const broken = {
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': b64('{"auths": {"r.io": {"password": "hunter2"') },
    };
    assert.deepEqual(credentialsFromSecret(broken, 'creds'), {
      ok: false,
      error: 'Secret creds, key .dockerconfigjson: value is not valid JSON',
    });
    assert.deepEqual(credentialsFromSecret({ type: 'kubernetes.io/dockerconfigjson', data: {} }, 'creds'), {
      ok: false,
      error: 'Secret creds has no .dockerconfigjson key',
    });
  });
});

/** What the registry client sends to `image` with these credentials (as RegistryClient.session picks it). */
function sentTo(credentials: FetchCredentials, image: string): RegistryCredential {
  if (credentials.credential) return credentials.credential;
  return selectCredential(credentials.auths ?? [], parseImageRef(image)).credential;
}

describe('credentialsFromSecret: generic fetch Secrets', () => {
  const opaque = (data: Record<string, string>) => ({
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  });
  const basic: RegistryCredential = { kind: 'basic', username: 'u', password: 'p' };
  const anonymous: RegistryCredential = { kind: 'anonymous' };
  const cases: Array<{
    name: string;
    data: Record<string, string>;
    /** image -> what is sent there */
    sends: Record<string, RegistryCredential>;
  }> = [
    {
      name: 'username/password without hostname go to any registry (as upstream)',
      data: { username: 'u', password: 'p' },
      sends: { '127.0.0.1:5000/a:1': basic, 'other.io/b:1': basic },
    },
    {
      name: 'username/password with hostname go only to that host and port',
      data: { username: 'u', password: 'p', hostname: '127.0.0.1:5000' },
      sends: {
        '127.0.0.1:5000/a:1': basic,
        '127.0.0.1:5001/a:1': anonymous,
        '127.0.0.1/a:1': anonymous,
        'other.io/a:1': anonymous,
      },
    },
    {
      name: 'a hostname without port never matches a registry on a port',
      data: { username: 'u', password: 'p', hostname: 'registry.corp' },
      sends: { 'registry.corp/a:1': basic, 'registry.corp:5000/a:1': anonymous },
    },
    {
      name: 'a hostname written as a URL with /v2/ is read as an auths key is',
      data: { username: 'u', password: 'p', hostname: 'https://Registry.Corp:5000/v2/' },
      sends: { 'registry.corp:5000/a:1': basic, 'evil.io/registry.corp/a:1': anonymous },
    },
    {
      name: 'token with hostname is a bearer token for that registry only',
      data: { token: 't0k', hostname: 'r.io' },
      sends: { 'r.io/a:1': { kind: 'registryToken', token: 't0k' }, 's.io/a:1': anonymous },
    },
    {
      name: 'token wins over username/password',
      data: { token: 't0k', username: 'u', password: 'p' },
      sends: { 'r.io/a:1': { kind: 'registryToken', token: 't0k' } },
    },
    {
      name: 'identity-token is a refresh token, scoped by hostname',
      data: {
        'identity-token': 'refresh',
        username: '00000000-0000-0000-0000-000000000000',
        hostname: 'r.io',
      },
      sends: { 'r.io/a:1': { kind: 'identityToken', token: 'refresh' }, 's.io/a:1': anonymous },
    },
    {
      name: 'a hostname alone (no credential) is anonymous everywhere',
      data: { hostname: 'r.io' },
      sends: { 'r.io/a:1': anonymous },
    },
    {
      name: 'a blank hostname is no hostname',
      data: { username: 'u', password: 'p', hostname: '  ' },
      sends: { 'any.io/a:1': basic },
    },
  ];
  for (const { name, data, sends } of cases) {
    it(name, () => {
      const result = credentialsFromSecret(opaque(data), 's');
      assert.ok(result.ok, JSON.stringify(result));
      for (const [image, want] of Object.entries(sends)) {
        assert.deepEqual(sentTo(result.credentials, image), want, image);
      }
    });
  }

  it('rejects a hostname that names no registry, without the credential in the message', () => {
    const result = credentialsFromSecret(
      opaque({ username: 'u', password: 'hunter2', hostname: 'a:b:c' }),
      's',
    );
    assert.deepEqual(result, {
      ok: false,
      error: 'Secret s, key hostname: "a:b:c" is not a registry host (host or host:port)',
    });
  });
});

describe('credentialHint', () => {
  const auths = [{ registry: '127.0.0.1:5000', entry: { username: 'u', password: 'p' } }];

  it('names the entry whose credentials were sent', () => {
    assert.equal(
      credentialHint('UNAUTHORIZED', '127.0.0.1:5000/repo:1.0.0', 'creds', { auths }),
      ' (sent the credentials of entry "127.0.0.1:5000" of Secret creds)',
    );
  });

  it('says when the Secret had nothing for the registry, as an unfilled placeholder', () => {
    assert.equal(
      credentialHint('UNAUTHORIZED', '127.0.0.1:5001/repo:1.0.0', 'repo-fetch-0', { auths }),
      ' (sent no credentials: Secret repo-fetch-0 has none for 127.0.0.1:5001)',
    );
    assert.equal(
      credentialHint('DENIED', 'r.io/repo:1', undefined, {}),
      ' (sent no credentials: the fetch names no secret)',
    );
  });

  it('names the entry without the user info written into its key', () => {
    assert.equal(
      credentialHint('DENIED', 'r.io/team/app:1', 'creds', {
        auths: [{ registry: 'https://bob:hunter2@r.io/team', entry: { auth: 'dTpw' } }],
      }),
      ' (sent the credentials of entry "https://***@r.io/team" of Secret creds)',
    );
  });

  it('lists the entries the Secret skipped, which may be the ones meant for the registry', () => {
    const issueKey = '*a*a*a*a*a*a*a*a*a*a*b.example.com';
    const secret = dockerConfig({
      auths: {
        [issueKey]: { auth: 'dTpw' },
        'https://bob:hunter2@q.io': { email: 'e@x' },
        'x1.io': {},
        'x2.io': {},
        'x3.io': {},
      },
    });
    const result = credentialsFromSecret(secret, 'creds');
    assert.ok(result.ok);
    assert.deepEqual(result.credentials.auths, []);
    assert.equal(
      credentialHint('UNAUTHORIZED', `${'a'.repeat(40)}b.example.com/app:1`, 'creds', result.credentials),
      ` (sent no credentials: Secret creds has none for ${'a'.repeat(40)}b.example.com; skipped entries: ` +
        `"${issueKey}": a host label of the key has more than 4 "*" wildcards; ` +
        '"https://***@q.io": no credential (none of username, password, auth, identitytoken, registrytoken); ' +
        '"x1.io": no credential (none of username, password, auth, identitytoken, registrytoken); and 2 more)',
    );
  });

  it('says which hostname a generic Secret scopes its credential to', () => {
    const result = credentialsFromSecret(
      { type: 'Opaque', data: { username: b64('u'), password: b64('p'), hostname: b64('127.0.0.1:5000') } },
      'creds',
    );
    assert.ok(result.ok);
    assert.equal(
      credentialHint('UNAUTHORIZED', '127.0.0.1:5000/repo:1', 'creds', result.credentials),
      ' (sent the credentials of Secret creds, key hostname "127.0.0.1:5000")',
    );
    assert.equal(
      credentialHint('UNAUTHORIZED', '127.0.0.1:5001/repo:1', 'creds', result.credentials),
      ' (sent no credentials: Secret creds holds credentials only for hostname "127.0.0.1:5000")',
    );
  });

  it('is empty for errors that are not about credentials', () => {
    assert.equal(credentialHint('X509', '127.0.0.1:5000/repo:1.0.0', 'creds', { auths }), '');
  });
});
