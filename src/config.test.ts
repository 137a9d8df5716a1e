import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTROLLER_NAMES, defaultConfig, parseConfig, parseDuration } from './config.js';

test('with no flags and no environment every controller runs with the documented defaults', () => {
  const config = defaultConfig();
  assert.deepEqual(config.controllers, [...CONTROLLER_NAMES]);
  assert.equal(config.namespace, 'regcred-operator');
  assert.equal(config.logLevel, 'info');
  assert.equal(config.healthPort, 8081);
  assert.equal(config.concurrency, 32);
  assert.equal(config.kubeApiQps, 500);
  assert.equal(config.kubeApiBurst, 1000);
  assert.equal(config.resyncPeriodMs, 600_000);
  assert.equal(config.configSecretName, 'regcred-operator-config');
});

test('overrides replace defaults and leave the rest', () => {
  const config = defaultConfig({ healthPort: 0, concurrency: 8 });
  assert.equal(config.healthPort, 0);
  assert.equal(config.concurrency, 8);
  assert.equal(config.kubeApiQps, 500);
});

test('flags and environment are read, and bad values are refused with the flag named', () => {
  const config = parseConfig(['--controllers', 'placeholder,secretexport', '--resync-period', '30s'], {
    POD_NAMESPACE: 'ops',
    LOG_LEVEL: 'debug',
  });
  assert.ok(!('help' in config));
  assert.deepEqual(config.controllers, ['placeholder', 'secretexport']);
  assert.equal(config.namespace, 'ops');
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.resyncPeriodMs, 30_000);
  assert.throws(() => parseConfig(['--concurrency', '0'], {}), /--concurrency must be an integer >= 1/);
  assert.throws(() => parseConfig(['--controllers', 'nope'], {}), /unknown controller "nope"/);
});

test('durations accept ms, s, m and h', () => {
  const cases: Array<[string, number]> = [
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1.5h', 5_400_000],
    ['7', 7000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  assert.throws(() => parseDuration('10 minutes'), /invalid duration/);
});
