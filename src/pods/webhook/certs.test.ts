import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  bundleHolds,
  planTls,
  readTlsSecret,
  servingNames,
  tlsSecretData,
  type TlsSettings,
} from './certs.js';

const MIN = 60_000;
const settings: TlsSettings = {
  caValidityMs: 60 * MIN,
  certValidityMs: 15 * MIN,
  ...servingNames('ops', 'https://127.0.0.1:18443/mutate-pods'),
};
const T0 = Date.parse('2026-06-01T00:00:00Z');
const never = () => false;
const always = () => true;

describe('servingNames', () => {
  it('covers the Service names and the URL host (an IP SAN for an address)', () => {
    assert.deepEqual(servingNames('ops', undefined), {
      dnsNames: ['regcred-operator-webhook.ops.svc', 'regcred-operator-webhook.ops.svc.cluster.local'],
      ipAddresses: [],
    });
    assert.deepEqual(servingNames('ops', 'https://127.0.0.1:9443/x').ipAddresses, ['127.0.0.1']);
    assert.deepEqual(servingNames('ops', 'https://[::1]:9443/x').ipAddresses, ['::1']);
    assert.equal(servingNames('ops', 'https://hooks.example.com/x').dnsNames[2], 'hooks.example.com');
  });
});

describe('planTls', () => {
  it('issues a CA and a serving certificate for the names, signed by it, and keeps them while valid', async () => {
    const first = await planTls(undefined, settings, 'ops', T0, never);
    assert.deepEqual(first.changes, [
      'no certificates yet',
      'serving certificate missing, expired, for other names or from an unknown CA',
    ]);
    const ca = new X509Certificate(first.tls.caCerts[0]!);
    const cert = new X509Certificate(first.tls.cert);
    assert.equal(ca.ca, true);
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
    assert.equal(
      cert.subjectAltName,
      'DNS:regcred-operator-webhook.ops.svc, DNS:regcred-operator-webhook.ops.svc.cluster.local, IP Address:127.0.0.1',
    );
    assert.equal(Date.parse(cert.validTo), T0 + 15 * MIN);
    assert.equal(Date.parse(ca.validTo), T0 + 60 * MIN);
    // Renewal of the serving certificate at two thirds: 10 minutes in.
    assert.equal(first.recheckAfterMs, 10 * MIN);
    // Through the Secret and back: nothing to change.
    const stored = readTlsSecret(tlsSecretData(first.tls));
    const again = await planTls(stored, settings, 'ops', T0 + 9 * MIN, never);
    assert.deepEqual(again.changes, []);
    assert.deepEqual(again.tls, first.tls);
  });

  it('renews the serving certificate after two thirds of its lifetime, with the same CA', async () => {
    const first = await planTls(undefined, settings, 'ops', T0, never);
    const later = await planTls(first.tls, settings, 'ops', T0 + 10 * MIN + 1000, always);
    assert.deepEqual(later.changes, ['serving certificate due for renewal']);
    assert.deepEqual(later.tls.caCerts, first.tls.caCerts);
    assert.notEqual(later.tls.cert, first.tls.cert);
    assert.notEqual(later.tls.key, first.tls.key);
    const cert = new X509Certificate(later.tls.cert);
    assert.ok(cert.verify(new X509Certificate(first.tls.caCerts[0]!).publicKey));
  });

  it('rotates the CA in two steps: trusted first, then used; the old CA stays until it expires', async () => {
    const first = await planTls(undefined, settings, 'ops', T0, never);
    const caDue = T0 + 40 * MIN + 1000;
    // Keep the serving certificate fresh so only the CA is due.
    const fresh = await planTls(
      first.tls,
      { ...settings, certValidityMs: 30 * MIN },
      'ops',
      T0 + 39 * MIN,
      never,
    );
    const step1 = await planTls(fresh.tls, { ...settings, certValidityMs: 30 * MIN }, 'ops', caDue, never);
    assert.deepEqual(step1.changes, ['CA due for renewal']);
    assert.equal(step1.tls.caCerts.length, 2);
    assert.equal(step1.tls.caCerts[1], first.tls.caCerts[0]);
    assert.equal(step1.tls.cert, fresh.tls.cert, 'serving certificate kept until the new CA is trusted');
    const waiting = await planTls(
      step1.tls,
      { ...settings, certValidityMs: 30 * MIN },
      'ops',
      caDue + 1000,
      never,
    );
    assert.deepEqual(waiting.changes, []);
    const step2 = await planTls(
      step1.tls,
      { ...settings, certValidityMs: 30 * MIN },
      'ops',
      caDue + 2000,
      always,
    );
    assert.deepEqual(step2.changes, ['serving certificate from a replaced CA']);
    assert.ok(
      new X509Certificate(step2.tls.cert).verify(new X509Certificate(step1.tls.caCerts[0]!).publicKey),
    );
    // Once the old CA expired it leaves the bundle.
    const end = await planTls(
      step2.tls,
      { ...settings, certValidityMs: 30 * MIN },
      'ops',
      T0 + 60 * MIN + 1000,
      always,
    );
    assert.ok(end.changes.includes('expired CA dropped'), end.changes.join());
    assert.deepEqual(end.tls.caCerts, [step1.tls.caCerts[0]]);
  });

  it('reissues for other names, and starts over from garbage', async () => {
    const first = await planTls(undefined, settings, 'ops', T0, never);
    const moved = await planTls(
      first.tls,
      { ...settings, ipAddresses: ['10.0.0.1'] },
      'ops',
      T0 + MIN,
      never,
    );
    assert.deepEqual(moved.changes, [
      'serving certificate missing, expired, for other names or from an unknown CA',
    ]);
    assert.match(new X509Certificate(moved.tls.cert).subjectAltName!, /IP Address:10\.0\.0\.1/);
    const garbage = readTlsSecret({
      'ca.crt': Buffer.from('not a cert').toString('base64'),
      'ca.key': '',
      'tls.crt': '',
      'tls.key': '',
    });
    const fresh = await planTls(garbage, settings, 'ops', T0, never);
    assert.deepEqual(fresh.changes[0], 'CA missing, expired or without its key');
    assert.equal(fresh.tls.caCerts.length, 1);
    assert.equal(readTlsSecret({}), undefined);
  });

  it('shortens a certificate that outlives the configured lifetime', async () => {
    const first = await planTls(undefined, settings, 'ops', T0, never);
    const shorter = await planTls(
      first.tls,
      { ...settings, certValidityMs: 2 * MIN },
      'ops',
      T0 + MIN,
      always,
    );
    assert.deepEqual(shorter.changes, ['serving certificate outlives --webhook-cert-validity']);
  });
});

describe('bundleHolds', () => {
  it('finds a CA in a PEM bundle by fingerprint', async () => {
    const a = await planTls(undefined, settings, 'ops', T0, never);
    const b = await planTls(undefined, settings, 'ops', T0, never);
    const bundle = a.tls.caCerts[0]! + b.tls.caCerts[0]!;
    assert.ok(bundleHolds(bundle, b.tls.caCerts[0]!));
    assert.ok(!bundleHolds(a.tls.caCerts[0]!, b.tls.caCerts[0]!));
    assert.ok(!bundleHolds('', 'junk'));
  });
});
