import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ecrApiEndpoint, isRegionName, normalizeHost, parseEcrHost, stsEndpoint } from './hosts.js';

describe('parseEcrHost', () => {
  const cases: Array<{ host: string; want: { region: string; fips: boolean; api: string } | undefined }> = [
    {
      host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      want: { region: 'eu-west-1', fips: false, api: 'https://api.ecr.eu-west-1.amazonaws.com' },
    },
    {
      host: '123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com',
      want: { region: 'us-gov-west-1', fips: true, api: 'https://ecr-fips.us-gov-west-1.amazonaws.com' },
    },
    {
      host: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn',
      want: { region: 'cn-north-1', fips: false, api: 'https://api.ecr.cn-north-1.amazonaws.com.cn' },
    },
    {
      host: '000000000000.dkr.ecr.ap-southeast-4.amazonaws.com',
      want: { region: 'ap-southeast-4', fips: false, api: 'https://api.ecr.ap-southeast-4.amazonaws.com' },
    },
    // Dual-stack (IPv4 and IPv6) registry hosts use the dual-stack API endpoint.
    {
      host: '123456789012.dkr-ecr.eu-west-1.on.aws',
      want: { region: 'eu-west-1', fips: false, api: 'https://ecr.eu-west-1.api.aws' },
    },
    {
      host: '123456789012.dkr-ecr-fips.us-gov-west-1.on.aws',
      want: { region: 'us-gov-west-1', fips: true, api: 'https://ecr-fips.us-gov-west-1.api.aws' },
    },
    { host: '123456789012.dkr-ecr.eu-west-1.on.aws.evil.io', want: undefined },
    { host: 'evil.123456789012.dkr-ecr.eu-west-1.on.aws', want: undefined },
    { host: '12345678901.dkr-ecr.eu-west-1.on.aws', want: undefined },
    { host: '123456789012.dkr.ecr.eu-west-1.on.aws', want: undefined }, // dkr.ecr is not dual-stack
    { host: '123456789012.dkr-ecr.eu-west-1.amazonaws.com', want: undefined },
    { host: '123456789012.dkr-ecr.eu-west.on.aws', want: undefined },
    { host: '123456789012.dkr-ecrx.eu-west-1.on.aws', want: undefined },
    { host: '123456789012.dkr-ecr.eu-west-1.on.aws:5000', want: undefined },
    { host: '12345678901.dkr.ecr.eu-west-1.amazonaws.com', want: undefined }, // 11 digits
    { host: '1234567890123.dkr.ecr.eu-west-1.amazonaws.com', want: undefined }, // 13 digits
    { host: '12345678901a.dkr.ecr.eu-west-1.amazonaws.com', want: undefined },
    { host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io', want: undefined },
    { host: 'evil.io.123456789012.dkr.ecr.eu-west-1.amazonaws.com', want: undefined },
    { host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com:443', want: undefined }, // normalized away before
    { host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com:5000', want: undefined },
    { host: '123456789012.dkr.ecr.eu-west-1.amazonaws.co', want: undefined },
    { host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com.de', want: undefined },
    { host: '123456789012.dkr.ecr.EU-west-1.amazonaws.com', want: undefined }, // callers lower-case
    { host: '123456789012.dkr.ecr.eu-west.amazonaws.com', want: undefined },
    { host: '123456789012.dkr.ecr..amazonaws.com', want: undefined },
    { host: '123456789012.dkr.ecr-FIPS.eu-west-1.amazonaws.com', want: undefined },
    { host: '123456789012.dkr.ecrx.eu-west-1.amazonaws.com', want: undefined },
    { host: '123456789012.ecr.dkr.eu-west-1.amazonaws.com', want: undefined },
    { host: 'gcr.io', want: undefined },
    { host: '', want: undefined },
  ];
  for (const { host, want } of cases) {
    it(`${host || '(empty)'} -> ${want ? want.region : 'not ECR'}`, () => {
      const parsed = parseEcrHost(host);
      if (want === undefined) return assert.equal(parsed, undefined);
      assert.ok(parsed);
      assert.equal(parsed.region, want.region);
      assert.equal(parsed.fips, want.fips);
      assert.equal(ecrApiEndpoint(parsed), want.api);
    });
  }

  it('takes linear time on hostile input', () => {
    const hostile = [
      `${'1'.repeat(100_000)}.dkr.ecr.eu-west-1.amazonaws.com`,
      `123456789012.dkr.ecr.${'a-'.repeat(50_000)}1.amazonaws.com`,
      '.'.repeat(100_000),
    ];
    const started = performance.now();
    for (const host of hostile) assert.equal(parseEcrHost(host), undefined);
    assert.ok(performance.now() - started < 500);
  });
});

describe('isRegionName / normalizeHost / stsEndpoint', () => {
  it('region names', () => {
    for (const ok of ['eu-west-1', 'us-gov-east-1', 'cn-northwest-1', 'us-isob-east-1'])
      assert.ok(isRegionName(ok), ok);
    for (const bad of [
      'eu-west',
      'eu-west-',
      '-eu-west-1',
      'eu_west-1',
      'EU-west-1',
      'eu--1',
      'e-1',
      'eu-west-1a',
    ]) {
      assert.ok(!isRegionName(bad), bad);
    }
  });
  it('normalizeHost lower-cases and drops :443 only', () => {
    assert.equal(normalizeHost(' Registry.Example:443 '), 'registry.example');
    assert.equal(normalizeHost('127.0.0.1:5000'), '127.0.0.1:5000');
  });
  it('stsEndpoint is regional, with the China partition', () => {
    assert.equal(stsEndpoint('eu-west-1'), 'https://sts.eu-west-1.amazonaws.com');
    assert.equal(stsEndpoint('cn-north-1'), 'https://sts.cn-north-1.amazonaws.com.cn');
  });
});
