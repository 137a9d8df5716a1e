import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deletedCrdMessage, missingCrdMessage, requiredCrds } from '../../required-crds.js';
import { webhookListenHost, withWebhookCrd } from './index.js';

describe('withWebhookCrd', () => {
  it('adds the ImagePullSecretPolicy CRD once, with a message that says how to do without it', () => {
    const crds = withWebhookCrd(requiredCrds(['secretexport']));
    const own = crds.find((c) => c.name === 'imagepullsecretpolicies.regcred.dev');
    assert.ok(own);
    assert.equal(
      missingCrdMessage(own),
      'CRD imagepullsecretpolicies.regcred.dev is not installed (needed by the Pod webhook); install crds/ or start with --webhook-port=0',
    );
    assert.match(deletedCrdMessage(own), /needed by the Pod webhook/);
    assert.equal(withWebhookCrd(crds).length, crds.length, 'not twice');
  });
});

describe('webhookListenHost', () => {
  it('listens on loopback only when the API server calls a loopback URL', () => {
    assert.equal(webhookListenHost(undefined), '0.0.0.0');
    assert.equal(webhookListenHost('https://127.0.0.1:9443/mutate-pods'), '127.0.0.1');
    assert.equal(webhookListenHost('https://localhost:9443/mutate-pods'), '127.0.0.1');
    assert.equal(webhookListenHost('https://[::1]:9443/mutate-pods'), '::1');
    assert.equal(webhookListenHost('https://hooks.example.com/mutate-pods'), '0.0.0.0');
  });
});
