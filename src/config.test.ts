import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_REGISTRY_LIMITS } from './registry/client.js';
import {
  CONTROLLER_NAMES,
  defaultConfig,
  parseByteSize,
  parseConfig,
  parseDuration,
  type OperatorConfig,
} from './config.js';

test('with no flags and no environment every controller runs with the documented defaults', () => {
  const config = defaultConfig();
  assert.deepEqual(config.controllers, [...CONTROLLER_NAMES]);
  assert.equal(config.namespace, 'regcred-operator');
  assert.equal(config.logLevel, 'info');
  assert.equal(config.healthPort, 8081);
  assert.equal(config.concurrency, 32);
  assert.equal(config.kubeApiQps, 500);
  assert.equal(config.kubeApiBurst, 1000);
  assert.equal(config.kubeApiMaxInFlight, 64);
  assert.equal(config.resyncPeriodMs, 600_000);
  assert.equal(config.configSecretName, 'regcred-operator-config');
  assert.equal(config.fetchTimeoutMs, 300_000);
  assert.equal(config.maxConcurrentFetches, 8);
  assert.equal(config.fetchDiskBudgetBytes, 1536 * 2 ** 20);
});

test('overrides replace defaults and leave the rest', () => {
  const config = defaultConfig({ healthPort: 0, concurrency: 8 });
  assert.equal(config.healthPort, 0);
  assert.equal(config.concurrency, 8);
  assert.equal(config.kubeApiQps, 500);
});

test('API pressure defaults fit a shared API server and the help text states them', () => {
  const config = defaultConfig();
  // What APF meters is requests in flight: one cap for the whole process, below the workers' sum.
  assert.ok(config.kubeApiMaxInFlight > 0 && config.kubeApiMaxInFlight <= 64, 'requests in flight');
  assert.ok(config.kubeApiMaxInFlight < config.concurrency * CONTROLLER_NAMES.length);
  // A rotation to 1,000 placeholders (1,001 writes in about a second) is not held back by the client-side bucket.
  assert.ok(config.kubeApiBurst + config.kubeApiQps >= 1001, 'rotation throughput');
  const help = parseConfig(['--help'], {});
  assert.ok('help' in help);
  assert.match(help.help, /--concurrency N {16}workers per controller \(default 32\)/);
  assert.match(help.help, /--kube-api-qps N {15}client-side rate limit, 0 disables;[^]*\(default 500\)\n/);
  assert.match(help.help, /--kube-api-burst N {13}client-side burst \(default 1000\)\n/);
  assert.match(help.help, /--kube-api-max-in-flight N {5}API requests in flight at once[^]*\(default 64\)\n/);
  assert.deepEqual(
    (parseConfig(['--kube-api-max-in-flight', '0'], {}) as { kubeApiMaxInFlight: number }).kubeApiMaxInFlight,
    0,
  );
  assert.throws(
    () => parseConfig(['--kube-api-max-in-flight=-1'], {}),
    /--kube-api-max-in-flight must be an integer >= 0/,
  );
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

test('fetch limits: --fetch-timeout, --max-concurrent-fetches and --fetch-disk-budget', () => {
  const config = parseConfig(
    ['--fetch-timeout', '1m30s', '--max-concurrent-fetches', '4', '--fetch-disk-budget', '1Gi'],
    {},
  );
  assert.ok(!('help' in config));
  assert.equal(config.fetchTimeoutMs, 90_000);
  assert.equal(config.maxConcurrentFetches, 4);
  assert.equal(config.fetchDiskBudgetBytes, 2 ** 30);
  const refused: Array<[string[], RegExp]> = [
    [
      ['--fetch-timeout', '5'],
      /--fetch-timeout must be a positive Go duration such as 90s, 5m or 1h; got "5"/,
    ],
    [['--fetch-timeout', '0'], /--fetch-timeout must be a positive Go duration/],
    [['--fetch-timeout=-1m'], /--fetch-timeout must be a positive Go duration/],
    [['--max-concurrent-fetches', '0'], /--max-concurrent-fetches must be an integer >= 1, got "0"/],
    [['--max-concurrent-fetches', 'x'], /--max-concurrent-fetches must be an integer >= 1/],
    [
      ['--fetch-disk-budget', '1.5Gi'],
      /--fetch-disk-budget must be a size such as 1536Mi or 2Gi; got "1.5Gi"/,
    ],
    [['--fetch-disk-budget', '0'], /--fetch-disk-budget must be a size/],
    [
      ['--fetch-disk-budget', '4Mi', '--max-concurrent-fetches', '8'],
      /--fetch-disk-budget 4Mi over --max-concurrent-fetches 8 leaves less than 1Mi of disk per fetch/,
    ],
  ];
  for (const [argv, message] of refused) assert.throws(() => parseConfig(argv, {}), message, argv.join(' '));
  const help = parseConfig(['--help'], {});
  assert.ok('help' in help);
  for (const flag of ['--fetch-timeout', '--max-concurrent-fetches', '--fetch-disk-budget'])
    assert.ok(help.help.includes(flag), `--help shows ${flag}`);
});

test('byte sizes take Kubernetes suffixes', () => {
  const cases: Array<[string, number | undefined]> = [
    ['1024', 1024],
    ['1Ki', 1024],
    ['1536Mi', 1536 * 2 ** 20],
    ['2Gi', 2 * 2 ** 30],
    ['1G', 1e9],
    ['1.5Gi', undefined],
    ['Mi', undefined],
    ['1 Gi', undefined],
  ];
  for (const [text, bytes] of cases) assert.equal(parseByteSize(text), bytes, text);
});

test("the Deployment's fetch flags fit its /tmp emptyDir, and the defaults fit the Deployment", () => {
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const text = readFileSync(join(root, 'deploy', 'plain', '20-deployment.yaml'), 'utf8');
  interface Deployment {
    kind: string;
    spec: {
      template: {
        spec: {
          containers: Array<{ args: string[] }>;
          volumes: Array<{ name: string; emptyDir?: { sizeLimit: string } }>;
        };
      };
    };
  }
  const deployment = parseAllDocuments(text)
    .map((d) => d.toJS() as Deployment)
    .find((d) => d.kind === 'Deployment');
  assert.ok(deployment);
  const pod = deployment.spec.template.spec;
  const sizeLimit = parseByteSize(pod.volumes.find((v) => v.name === 'tmp')?.emptyDir?.sizeLimit ?? '');
  assert.ok(sizeLimit !== undefined, 'the tmp emptyDir has a sizeLimit');
  for (const config of [parseConfig(pod.containers[0]!.args, {}), defaultConfig()]) {
    assert.ok(!('help' in config));
    const share = Math.floor(config.fetchDiskBudgetBytes / config.maxConcurrentFetches);
    assert.ok(share * config.maxConcurrentFetches <= config.fetchDiskBudgetBytes);
    assert.ok(config.fetchDiskBudgetBytes <= sizeLimit * 0.8, 'the budget leaves a fifth of /tmp spare');
    // A pull never needs more than its share: the blob and extraction limits fit inside it.
    assert.ok(DEFAULT_REGISTRY_LIMITS.maxBlobBytes <= share);
    assert.ok(DEFAULT_REGISTRY_LIMITS.maxDiskBytes <= share);
    // Memory held per fetch: a manifest and a config (raw, decoded, parsed) at a time.
    const perFetchMemory =
      8 * (DEFAULT_REGISTRY_LIMITS.maxManifestBytes + DEFAULT_REGISTRY_LIMITS.maxConfigBytes);
    assert.ok(perFetchMemory * config.maxConcurrentFetches <= 128 * 2 ** 20, 'fetches hold at most 128Mi');
  }
});

test('leader election is off by default, with client-go timings and the Lease named regcred-operator', () => {
  const config = defaultConfig();
  assert.equal(config.leaderElect, false);
  assert.equal(config.leaderElectLeaseName, 'regcred-operator');
  assert.equal(config.leaderElectLeaseDurationMs, 15_000);
  assert.equal(config.leaderElectRenewDeadlineMs, 10_000);
  assert.equal(config.leaderElectRetryPeriodMs, 2_000);
});

test('--leader-elect takes a bare flag or =true|false as Go flags do; the last one wins', () => {
  const cases: Array<[string[], boolean]> = [
    [[], false],
    [['--leader-elect'], true],
    [['--leader-elect=true'], true],
    [['--leader-elect=false'], false],
    [['--leader-elect=1'], true],
    [['--leader-elect=F'], false],
    [['--leader-elect', '--leader-elect=false'], false],
    [['--leader-elect=false', '--leader-elect'], true],
  ];
  for (const [argv, expected] of cases) {
    const config = parseConfig(argv, {});
    assert.ok(!('help' in config));
    assert.equal(config.leaderElect, expected, argv.join(' '));
  }
});

test('leader election durations are read and their order is checked like client-go does', () => {
  const config = parseConfig(
    [
      '--leader-elect=true',
      '--leader-elect-lease-name=ops-lock',
      '--leader-elect-lease-duration=4s',
      '--leader-elect-renew-deadline',
      '3s',
      '--leader-elect-retry-period=500ms',
    ],
    { POD_NAMESPACE: 'ops' },
  );
  assert.ok(!('help' in config));
  assert.equal(config.leaderElect, true);
  assert.equal(config.namespace, 'ops');
  assert.equal(config.leaderElectLeaseName, 'ops-lock');
  assert.equal(config.leaderElectLeaseDurationMs, 4000);
  assert.equal(config.leaderElectRenewDeadlineMs, 3000);
  assert.equal(config.leaderElectRetryPeriodMs, 500);
  const refused: Array<[string[], RegExp]> = [
    [['--leader-elect=yes'], /--leader-elect must be true or false; got "yes"/],
    [['--leader-elect', 'false'], /Unexpected argument 'false'/],
    [
      ['--leader-elect-lease-duration=10s'],
      /--leader-elect-renew-deadline \(10s\) must be shorter than --leader-elect-lease-duration \(10s\)/,
    ],
    [
      ['--leader-elect-retry-period=10s'],
      /--leader-elect-retry-period \(10s\) must be shorter than --leader-elect-renew-deadline \(10s\)/,
    ],
    [
      ['--leader-elect-lease-duration=500ms', '--leader-elect-renew-deadline=400ms'],
      /--leader-elect-lease-duration must be at least 1s; got 500ms/,
    ],
    [['--leader-elect-renew-deadline=0s'], /--leader-elect-renew-deadline must be a positive Go duration/],
    [['--leader-elect-retry-period=2'], /--leader-elect-retry-period must be a positive Go duration/],
    [['--leader-elect-lease-name=Not_A_Name'], /--leader-elect-lease-name must be a lowercase DNS subdomain/],
    [['--leader-elect-lease-name=' + 'a'.repeat(254)], /--leader-elect-lease-name must be/],
  ];
  for (const [argv, message] of refused) assert.throws(() => parseConfig(argv, {}), message, argv.join(' '));
  const help = parseConfig(['--help'], {});
  assert.ok('help' in help);
  for (const flag of [
    '--leader-elect[=true|false]',
    '--leader-elect-lease-name',
    '--leader-elect-lease-duration',
    '--leader-elect-renew-deadline',
    '--leader-elect-retry-period',
  ])
    assert.ok(help.help.includes(flag), `--help shows ${flag}`);
});

test('the Pod webhook listens on 9443 by default with a 10-year CA and a 1-year serving certificate', () => {
  const config = defaultConfig();
  assert.equal(config.webhookPort, 9443);
  assert.equal(config.webhookUrl, undefined);
  assert.equal(config.webhookCaValidityMs, 87_600 * 3_600_000);
  assert.equal(config.webhookCertValidityMs, 8_760 * 3_600_000);
  const help = parseConfig(['--help'], {});
  assert.ok('help' in help);
  for (const flag of ['--webhook-port', '--webhook-url', '--webhook-ca-validity', '--webhook-cert-validity'])
    assert.ok(help.help.includes(flag), `--help shows ${flag}`);
  assert.match(help.help, /0 disables the webhook \(default 9443\)/);
});

test('webhook flags are read, and a URL the API server would refuse is refused here', () => {
  const config = parseConfig(
    [
      '--webhook-port=0',
      '--webhook-url=https://127.0.0.1:18443/mutate-pods',
      '--webhook-ca-validity=2h',
      '--webhook-cert-validity=45s',
    ],
    {},
  );
  assert.ok(!('help' in config));
  assert.equal(config.webhookPort, 0);
  assert.equal(config.webhookUrl, 'https://127.0.0.1:18443/mutate-pods');
  assert.equal(config.webhookCaValidityMs, 7_200_000);
  assert.equal(config.webhookCertValidityMs, 45_000);
  const refused: Array<[string[], RegExp]> = [
    [['--webhook-port=-1'], /--webhook-port must be an integer >= 0/],
    [['--webhook-port=70000'], /--webhook-port must be at most 65535/],
    [['--webhook-url=http://127.0.0.1:9443/mutate-pods'], /--webhook-url must be an https URL with a host/],
    [['--webhook-url=https://u:p@example.com/x'], /no user, query or fragment/],
    [['--webhook-url=https://example.com/x?a=b'], /no user, query or fragment/],
    [['--webhook-url=not a url'], /--webhook-url must be an https URL such as/],
    [['--webhook-cert-validity=10s'], /must be at least 30s; got 87600h and 10s/],
    [['--webhook-ca-validity=1x'], /--webhook-ca-validity must be a positive Go duration/],
  ];
  for (const [argv, message] of refused) assert.throws(() => parseConfig(argv, {}), message, argv.join(' '));
});

test('--iaas-keychains takes our names and kapp-controller IMGPKG_ACTIVE_KEYCHAINS names; off by default', () => {
  assert.equal(defaultConfig().iaasKeychains, undefined);
  const config = parseConfig(['--iaas-keychains', 'gke,aks,ecr'], {}) as OperatorConfig;
  assert.deepEqual(config.iaasKeychains, ['acr', 'ecr', 'gcr']);
  assert.throws(
    () => parseConfig(['--iaas-keychains', 'ecr,github'], {}),
    /--iaas-keychains: unknown keychain "github"/,
  );
  assert.ok(CONTROLLER_NAMES.includes('registrytoken'));
});
