import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentialHint, credentialsFromSecret } from './fetch-credentials.js';

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

  it('is empty for errors that are not about credentials', () => {
    assert.equal(credentialHint('X509', '127.0.0.1:5000/repo:1.0.0', 'creds', { auths }), '');
  });
});
