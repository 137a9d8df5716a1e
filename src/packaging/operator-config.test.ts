import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpTransport } from '../registry/http.js';
import { parseOperatorConfigSecret } from './operator-config.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('parseOperatorConfigSecret', () => {
  it('gives the defaults when the Secret is absent', () => {
    const parsed = parseOperatorConfigSecret(undefined);
    assert.deepEqual(parsed.options, {});
    assert.deepEqual(parsed.problems, []);
  });

  it("reads kapp-controller's registry keys and ignores the others", () => {
    const parsed = parseOperatorConfigSecret({
      data: {
        caCerts: b64(PEM),
        dangerousSkipTLSVerify: b64(' registry.corp.com, 127.0.0.1:5000 '),
        dangerousAllowInsecureRegistries: b64('mirror.local, 127.0.0.1:5001\n'),
        httpProxy: b64('http://proxy:3128'),
        httpsProxy: b64('http://proxy:3129\n'),
        noProxy: b64('.svc,10.0.0.0/8'),
        kappDeployRawOptions: b64('["--diff-changes=true"]'),
      },
    });
    assert.deepEqual(parsed.options, {
      caCerts: PEM,
      dangerousSkipTLSVerify: 'registry.corp.com, 127.0.0.1:5000',
      plainHttp: 'mirror.local, 127.0.0.1:5001',
      httpProxy: 'http://proxy:3128',
      httpsProxy: 'http://proxy:3129',
      noProxy: '.svc,10.0.0.0/8',
    });
    assert.deepEqual(parsed.problems, []);
  });

  describe('dangerousAllowInsecureRegistries: plain http only for the hosts it lists', () => {
    const cases: Array<{ name: string; value: string | undefined; registry: string; scheme: string }> = [
      { name: 'unlisted: https', value: undefined, registry: '127.0.0.1:5001', scheme: 'https:' },
      {
        name: 'host:port listed',
        value: 'a.io, 127.0.0.1:5001',
        registry: '127.0.0.1:5001',
        scheme: 'http:',
      },
      { name: 'other port: https', value: '127.0.0.1:5001', registry: '127.0.0.1:5002', scheme: 'https:' },
      {
        name: 'host listed: any port',
        value: 'mirror.local',
        registry: 'mirror.local:8080',
        scheme: 'http:',
      },
      { name: 'case-insensitive', value: 'Mirror.Local', registry: 'mirror.local', scheme: 'http:' },
      { name: 'a suffix is not the host', value: 'local', registry: 'mirror.local', scheme: 'https:' },
    ];
    for (const { name, value, registry, scheme } of cases) {
      it(name, () => {
        const parsed = parseOperatorConfigSecret(
          value === undefined ? undefined : { data: { dangerousAllowInsecureRegistries: b64(value) } },
        );
        const transport = new HttpTransport(parsed.options);
        try {
          const base = transport.baseUrl(registry);
          assert.equal(base.protocol, scheme);
          // Credentials may go over plain http exactly where it was allowed.
          assert.equal(transport.allowsPlainHttp(new URL(`http://${registry}`)), scheme === 'http:');
        } finally {
          transport.close();
        }
      });
    }
  });

  it('leaves out keys whose value is blank', () => {
    const parsed = parseOperatorConfigSecret({ data: { caCerts: b64('  \n'), httpProxy: '' } });
    assert.deepEqual(parsed.options, {});
  });

  it('names a key whose value is not base64 text, without quoting the value', () => {
    const parsed = parseOperatorConfigSecret({
      data: {
        httpsProxy: 'http://user:s3cret@proxy:3128',
        caCerts: Buffer.from([0xff, 0xfe]).toString('base64'),
      },
    });
    assert.deepEqual(parsed.problems, [
      'caCerts: not base64-encoded UTF-8 text',
      'httpsProxy: not base64-encoded UTF-8 text',
    ]);
    assert.deepEqual(parsed.options, {});
    assert.ok(!JSON.stringify(parsed).includes('s3cret'));
  });

  it('has the same fingerprint for the same options and a different one when a value changes', () => {
    const a = parseOperatorConfigSecret({ data: { caCerts: b64(PEM), other: b64('x') } });
    const b = parseOperatorConfigSecret({ data: { caCerts: b64(PEM), other: b64('y') } });
    const c = parseOperatorConfigSecret({ data: { caCerts: b64(PEM.replace('MIIB', 'MIIC')) } });
    assert.equal(a.fingerprint, b.fingerprint);
    assert.notEqual(a.fingerprint, c.fingerprint);
    assert.notEqual(a.fingerprint, parseOperatorConfigSecret(undefined).fingerprint);
    assert.ok(!a.fingerprint.includes('MIIB'));
  });
});
