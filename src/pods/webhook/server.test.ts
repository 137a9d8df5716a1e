// The webhook server over real HTTPS on loopback, with the certificates the
// setup controller would write and an in-memory admission source.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import type { PolicyView } from '../admission.js';
import { listenToDomainMetrics, type AdmissionResult } from '../../runtime/domain-metrics.js';
import { silentLogger } from '../../runtime/logger.js';
import { planTls, servingNames, type WebhookTls } from './certs.js';
import { MAX_REVIEW_BYTES, WebhookServer, type AdmissionSource } from './server.js';

const policies: PolicyView[] = [
  {
    metadata: { name: 'teams' },
    spec: { secretName: 'regcred', namespaceSelector: { matchLabels: { a: 'b' } } },
  },
];
const liveReads: string[] = [];
let synced = true;
const source: AdmissionSource = {
  operatorNamespace: 'ops',
  synced: () => synced,
  policies: () => policies,
  namespace: (name) => (name === 'cached' ? { name, labels: { a: 'b' } } : undefined),
  serviceAccountLabels: () => ({}),
  readNamespace: async (name) => {
    liveReads.push(name);
    return name === 'brand-new' ? { name, labels: { a: 'b' } } : undefined;
  },
  readServiceAccountLabels: async () => undefined,
};

const review = (namespace: string) =>
  JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${namespace}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace,
      object: { spec: { containers: [{ name: 'c', image: 'x' }] } },
    },
  });

interface Reply {
  status: number;
  body: string;
  fingerprint: string;
}

function post(port: number, ca: string, body: string | Buffer, path = '/mutate-pods'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            fingerprint:
              (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? '',
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('WebhookServer', () => {
  let server: WebhookServer;
  let port: number;
  let tls: WebhookTls;
  const results: AdmissionResult[] = [];
  let stopListening: () => void;
  const settings = {
    caValidityMs: 3_600_000,
    certValidityMs: 600_000,
    ...servingNames('ops', 'https://127.0.0.1:1/x'),
  };

  before(async () => {
    stopListening = listenToDomainMetrics({ webhookAdmission: (result) => results.push(result) });
    // Issued 500 s ago with a 600 s lifetime: due for renewal now.
    tls = (await planTls(undefined, settings, 'ops', Date.now() - 500_000, () => false)).tls;
    server = new WebhookServer({
      port: 0,
      host: '127.0.0.1',
      path: '/mutate-pods',
      source,
      logger: silentLogger,
    });
    port = (await server.listen()).port;
  });
  after(async () => {
    stopListening();
    await server.close();
  });

  it('names --webhook-port when its port is taken (another replica on the same host)', async () => {
    const second = new WebhookServer({
      port,
      host: '127.0.0.1',
      path: '/mutate-pods',
      source,
      logger: silentLogger,
    });
    await assert.rejects(
      second.listen(),
      new RegExp(
        `^Error: webhook port ${port} is in use: choose another with --webhook-port, or 0 to turn the webhook off$`,
      ),
    );
    await second.close();
  });

  it('refuses handshakes until a certificate is loaded', async () => {
    await assert.rejects(post(port, tls.caCerts[0]!, review('cached')));
    assert.equal(server.useCertificate(tls.cert, tls.key), true);
    assert.equal(server.useCertificate(tls.cert, tls.key), false, 'the same pair again is no change');
  });

  it('adds the entry to a Pod of a selected namespace, from the cache or read live', async () => {
    results.length = 0;
    for (const ns of ['cached', 'brand-new']) {
      const reply = await post(port, tls.caCerts[0]!, review(ns));
      assert.equal(reply.status, 200);
      const answer = JSON.parse(reply.body) as {
        response: { uid: string; allowed: boolean; patch?: string };
      };
      assert.equal(answer.response.uid, `uid-${ns}`);
      assert.equal(answer.response.allowed, true);
      assert.deepEqual(JSON.parse(Buffer.from(answer.response.patch!, 'base64').toString()), [
        { op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'regcred' }] },
      ]);
    }
    assert.deepEqual(liveReads, ['brand-new']);
    const unknown = JSON.parse((await post(port, tls.caCerts[0]!, review('elsewhere'))).body) as {
      response: { patch?: string; allowed: boolean };
    };
    assert.equal(unknown.response.allowed, true);
    assert.equal(unknown.response.patch, undefined);
    assert.deepEqual(results, ['mutated', 'mutated', 'skipped']);
  });

  it('admits unchanged while the caches have not synced, counted as an error', async () => {
    results.length = 0;
    synced = false;
    try {
      const answer = JSON.parse((await post(port, tls.caCerts[0]!, review('cached'))).body) as {
        response: { patch?: string; allowed: boolean };
      };
      assert.equal(answer.response.allowed, true);
      assert.equal(answer.response.patch, undefined);
    } finally {
      synced = true;
    }
    assert.deepEqual(results, ['error']);
  });

  it('answers 400 to what is not an AdmissionReview, 413 past 3 MiB, 404 elsewhere', async () => {
    results.length = 0;
    assert.equal((await post(port, tls.caCerts[0]!, '{not json')).status, 400);
    assert.equal((await post(port, tls.caCerts[0]!, '{"kind":"AdmissionReview"}')).status, 400);
    const big = await post(port, tls.caCerts[0]!, Buffer.alloc(MAX_REVIEW_BYTES + 1, 0x20)).catch(
      (err: unknown) => err,
    );
    // Refused by its declared length (413), or cut off while it was being sent.
    assert.ok(big instanceof Error || (big as Reply).status === 413, String(big));
    assert.equal((await post(port, tls.caCerts[0]!, review('cached'), '/other')).status, 404);
    assert.deepEqual(results, ['error', 'error', 'error']);
  });

  it('serves a new certificate from the next connection on', async () => {
    const before = (await post(port, tls.caCerts[0]!, review('cached'))).fingerprint;
    const renewed = await planTls(tls, settings, 'ops', Date.now(), () => true);
    assert.deepEqual(renewed.changes, ['serving certificate due for renewal']);
    assert.ok(server.useCertificate(renewed.tls.cert, renewed.tls.key));
    const afterRenewal = await post(port, tls.caCerts[0]!, review('cached'));
    assert.equal(afterRenewal.status, 200);
    assert.notEqual(afterRenewal.fingerprint, before);
    assert.equal(afterRenewal.fingerprint, new X509Certificate(renewed.tls.cert).fingerprint256);
    assert.equal(
      server.useCertificate('garbage', 'garbage'),
      false,
      'a broken pair is refused, the old one kept',
    );
    assert.equal((await post(port, tls.caCerts[0]!, review('cached'))).fingerprint, afterRenewal.fingerprint);
  });
});
