// The webhook's own CA and serving certificate, kept in one Secret. node-forge
// writes certificates (Node has no X.509 writer); everything read back is
// parsed by Node's own X509Certificate. Keys are RSA 2048, generated off the
// event loop by node:crypto.
//
// Rotation without a window where the API server distrusts the served
// certificate: a new CA is first added to the bundle (ca.crt lists every
// trusted CA, newest first) while the old serving certificate stays; only once
// the MutatingWebhookConfiguration's caBundle holds the new CA is a serving
// certificate issued by it. Old CAs stay in the bundle until they expire.

import { createPrivateKey, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';

export const WEBHOOK_TLS_SECRET = 'regcred-operator-webhook-tls';
export const WEBHOOK_SERVICE = 'regcred-operator-webhook';

/** notBefore lies this far in the past, for clocks of nodes that run a little behind. */
const BACKDATE_MS = 60_000;
/** At most this many CAs in the bundle (the newest, and ones still valid that it replaced). */
const MAX_CAS = 3;
const MAX_RECHECK_MS = 24 * 3_600_000;

export interface WebhookTls {
  /** Trusted CA certificates, PEM, newest first; the newest signs. */
  caCerts: string[];
  /** Private key of the newest CA, PEM (PKCS#8). */
  caKey: string;
  cert: string;
  key: string;
}

export interface TlsSettings {
  caValidityMs: number;
  certValidityMs: number;
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * Names the serving certificate covers: the Service's DNS names in the
 * operator namespace, and the --webhook-url host (an IP SAN for an address).
 */
export function servingNames(
  namespace: string,
  webhookUrl: string | undefined,
): Pick<TlsSettings, 'dnsNames' | 'ipAddresses'> {
  const dnsNames = [
    `${WEBHOOK_SERVICE}.${namespace}.svc`,
    `${WEBHOOK_SERVICE}.${namespace}.svc.cluster.local`,
  ];
  const ipAddresses: string[] = [];
  if (webhookUrl) {
    const host = new URL(webhookUrl).hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host)) ipAddresses.push(host);
    else if (!dnsNames.includes(host)) dnsNames.push(host);
  }
  return { dnsNames, ipAddresses };
}

/** Secret data (base64 values) in the layout of a kubernetes.io/tls Secret plus the CA. */
export function tlsSecretData(tls: WebhookTls): Record<string, string> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    'ca.crt': b64(tls.caCerts.join('')),
    'ca.key': b64(tls.caKey),
    'tls.crt': b64(tls.cert),
    'tls.key': b64(tls.key),
  };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\r\n]{1,16384}-----END CERTIFICATE-----\r?\n?/g;

/** The PEM certificates of a bundle, in order (at most MAX_CAS + a few; anything else ignored). */
export function splitPemCertificates(bundle: string): string[] {
  return (bundle.slice(0, 128 * 1024).match(PEM_CERT) ?? []).map((pem) => lf(pem.trim()) + '\n').slice(0, 8);
}

/** Reads the Secret's data; undefined when a key is missing. Validity is judged by planTls. */
export function readTlsSecret(data: Record<string, string> | undefined): WebhookTls | undefined {
  const text = (key: string) =>
    data?.[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString('utf8');
  const ca = text('ca.crt');
  const caKey = text('ca.key');
  const cert = text('tls.crt');
  const key = text('tls.key');
  if (ca === undefined || caKey === undefined || cert === undefined || key === undefined) return undefined;
  return { caCerts: splitPemCertificates(ca), caKey, cert, key };
}

/** forge writes PEM with CRLF; the Secret and caBundle hold LF only, so texts compare equal. */
const lf = (pem: string) => pem.replace(/\r\n/g, '\n');

function parse(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** When a certificate is due for replacement: after two thirds of its lifetime (not counting the backdating). */
export function renewalTime(cert: X509Certificate): number {
  const from = Date.parse(cert.validFrom) + BACKDATE_MS;
  const to = Date.parse(cert.validTo);
  return to - Math.max(0, to - from) / 3;
}

function sanSet(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter(Boolean).sort();
}

function wantedSans(settings: TlsSettings): string[] {
  return [
    ...settings.dnsNames.map((n) => `DNS:${n}`),
    ...settings.ipAddresses.map((ip) => `IP Address:${ip}`),
  ].sort();
}

const issuedBy = (cert: X509Certificate, ca: X509Certificate) => {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
};

export interface TlsPlan {
  tls: WebhookTls;
  /** Why the Secret must be written; empty when it stays as it is. */
  changes: string[];
  /** When to look again (ms from now), for the next renewal or an old CA's expiry. */
  recheckAfterMs: number;
}

const generateRsa = promisify(generateKeyPair);

async function newKey(): Promise<{
  pem: string;
  forgeKey: forge.pki.rsa.PrivateKey;
  forgePublic: forge.pki.PublicKey;
}> {
  const { privateKey, publicKey } = await generateRsa('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    pem: privateKey,
    forgeKey: forge.pki.privateKeyFromPem(privateKey),
    forgePublic: forge.pki.publicKeyFromPem(publicKey),
  };
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // positive
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, now: number, lifetimeMs: number): void {
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + lifetimeMs);
}

async function issueCa(
  namespace: string,
  now: number,
  lifetimeMs: number,
): Promise<{ cert: string; key: string }> {
  const key = await newKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = key.forgePublic;
  cert.serialNumber = serialNumber();
  validity(cert, now, lifetimeMs);
  const name = [
    { name: 'commonName', value: `regcred-operator-webhook-ca ${new Date(now).toISOString()}` },
    { name: 'organizationName', value: `regcred-operator ${namespace}` },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key.forgeKey, forge.md.sha256.create());
  return { cert: lf(forge.pki.certificateToPem(cert)), key: key.pem };
}

async function issueServing(
  ca: { cert: string; key: string },
  settings: TlsSettings,
  now: number,
): Promise<{ cert: string; key: string }> {
  const key = await newKey();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const cert = forge.pki.createCertificate();
  cert.publicKey = key.forgePublic;
  cert.serialNumber = serialNumber();
  validity(cert, now, settings.certValidityMs);
  cert.setSubject([{ name: 'commonName', value: settings.dnsNames[0]! }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...settings.dnsNames.map((value) => ({ type: 2, value })),
        ...settings.ipAddresses.map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: lf(forge.pki.certificateToPem(cert)), key: key.pem };
}

/**
 * The TLS material the Secret should hold now, given what it holds
 * (`current`) and whether the API server already trusts a CA
 * (`trustedByApiServer`, from the webhook configuration's caBundle).
 */
export async function planTls(
  current: WebhookTls | undefined,
  settings: TlsSettings,
  namespace: string,
  now: number,
  trustedByApiServer: (caPem: string) => boolean,
): Promise<TlsPlan> {
  const changes: string[] = [];
  // CAs still valid, newest first; the first must come with its key.
  let cas = (current?.caCerts ?? [])
    .map((pem) => ({ pem, x509: parse(pem) }))
    .filter(
      (c): c is { pem: string; x509: X509Certificate } =>
        !!c.x509 && c.x509.ca && Date.parse(c.x509.validTo) > now,
    );
  let caKey = current?.caKey ?? '';
  const newest = cas[0];
  if (!newest || current?.caCerts[0] !== newest.pem || !keyMatches(newest.x509, caKey)) {
    changes.push(current ? 'CA missing, expired or without its key' : 'no certificates yet');
  } else if (now >= renewalTime(newest.x509)) {
    changes.push('CA due for renewal');
  } else if (Date.parse(newest.x509.validTo) - now > settings.caValidityMs + BACKDATE_MS) {
    changes.push('CA outlives --webhook-ca-validity');
  }
  if (changes.length > 0) {
    const ca = await issueCa(namespace, now, settings.caValidityMs);
    const x509 = new X509Certificate(ca.cert);
    // A replaced CA stays trusted until it expires: replicas may still serve what it issued.
    cas = [{ pem: ca.cert, x509 }, ...cas].slice(0, MAX_CAS);
    caKey = ca.key;
  } else if (cas.length !== (current?.caCerts.length ?? 0)) {
    changes.push('expired CA dropped');
  }
  const signer = cas[0]!;

  let cert = current?.cert ?? '';
  let key = current?.key ?? '';
  const serving = parse(cert);
  const usableFrom = serving ? cas.find((ca) => issuedBy(serving, ca.x509)) : undefined;
  const usable =
    !!serving &&
    !!usableFrom &&
    keyMatches(serving, key) &&
    Date.parse(serving.validTo) > now &&
    sanSet(serving).join() === wantedSans(settings).join();
  let reissue: string | undefined;
  if (!usable) reissue = 'serving certificate missing, expired, for other names or from an unknown CA';
  else if (now >= renewalTime(serving)) reissue = 'serving certificate due for renewal';
  else if (Date.parse(serving.validTo) - now > settings.certValidityMs + BACKDATE_MS)
    reissue = 'serving certificate outlives --webhook-cert-validity';
  else if (usableFrom !== signer) reissue = 'serving certificate from a replaced CA';
  // A usable certificate is replaced only by one the API server already trusts.
  if (reissue && (!usable || trustedByApiServer(signer.pem))) {
    const issued = await issueServing({ cert: signer.pem, key: caKey }, settings, now);
    cert = issued.cert;
    key = issued.key;
    changes.push(reissue);
  }

  const servingNow = new X509Certificate(cert);
  const times = [
    renewalTime(signer.x509),
    renewalTime(servingNow),
    ...cas.slice(1).map((c) => Date.parse(c.x509.validTo)),
  ];
  const next = Math.min(...times) - now;
  return {
    tls: { caCerts: cas.map((c) => c.pem), caKey, cert, key },
    changes,
    recheckAfterMs: Math.min(MAX_RECHECK_MS, Math.max(1000, next)),
  };
}

/** Whether `bundle` (PEM, as in a caBundle) holds the certificate `caPem`. */
export function bundleHolds(bundle: string, caPem: string): boolean {
  const wanted = parse(caPem)?.fingerprint256;
  if (!wanted) return false;
  return splitPemCertificates(bundle).some((pem) => parse(pem)?.fingerprint256 === wanted);
}
