import { parseArgs } from 'node:util';
import { parseGoDuration } from './packaging/duration.js';
import {
  DEFAULT_FETCH_DISK_BUDGET_BYTES,
  DEFAULT_FETCH_TIMEOUT,
  DEFAULT_MAX_CONCURRENT_FETCHES,
} from './packaging/fetch-limiter.js';
import { parseKeychainList } from './cloud/keychain-config.js';
import type { CloudEnvironment, CloudProviderName } from './cloud/types.js';
import { isLogLevel, type LogLevel } from './runtime/logger.js';

export const CONTROLLER_NAMES = [
  'secretexport',
  'secretimport',
  'placeholder',
  'packagerepository',
  'packageinstall',
  'app',
  'imagepullsecretpolicy',
  'registrytoken',
] as const;
export type ControllerName = (typeof CONTROLLER_NAMES)[number];

// Sized for a shared API server under API Priority and Fairness, where a
// service account's requests share the workload-low priority level with every
// other controller: at most 6 x 8 = 48 requests in flight (seats), and a
// client-side limit that still lets a rotation to 1,000 placeholders run at
// the API server's own pace. Throttling answers (429) are honoured on top.
export const DEFAULT_CONCURRENCY = 32;
export const DEFAULT_KUBE_API_QPS = 500;
export const DEFAULT_KUBE_API_BURST = 1000;
export const DEFAULT_KUBE_API_MAX_IN_FLIGHT = 64;

export interface OperatorConfig {
  kubeconfig?: string;
  namespace: string;
  controllers: ControllerName[];
  logLevel: LogLevel;
  healthPort: number;
  healthHost: string;
  concurrency: number;
  kubeApiQps: number;
  kubeApiBurst: number;
  /** Non-watch API requests in flight at once across the process (API Priority and Fairness seats); 0: no cap. */
  kubeApiMaxInFlight: number;
  resyncPeriodMs: number;
  packagingGlobalNamespace: string;
  /** syncPeriod of PackageInstalls (and their Apps) that set none, a Go duration. */
  packageInstallDefaultSyncPeriod?: string;
  configSecretName: string;
  /** Parent of the temporary directories fetches extract into (default: the OS temp dir). */
  fetchTmpDir?: string;
  /** Deadline of one App's or PackageRepository's whole fetch. */
  fetchTimeoutMs: number;
  /** Fetches running at once across both fetching controllers (a namespace gets at most half). */
  maxConcurrentFetches: number;
  /** Disk the running fetches may use together; each gets an equal share. */
  fetchDiskBudgetBytes: number;
  /** Run workers only while holding the Lease `leaderElectLeaseName` in `namespace`. */
  leaderElect: boolean;
  leaderElectLeaseName: string;
  /** How long followers wait, after they last saw the Lease change, before taking it over. */
  leaderElectLeaseDurationMs: number;
  /** How long the leader keeps trying to renew before it stops leading. */
  leaderElectRenewDeadlineMs: number;
  /** Pause between acquire and renew attempts. */
  leaderElectRetryPeriodMs: number;
  /** Port of the Pod admission webhook (HTTPS); 0 disables the webhook. */
  webhookPort: number;
  /** When set, the MutatingWebhookConfiguration calls this URL instead of the in-cluster Service. */
  webhookUrl?: string;
  /** Lifetime of the webhook's CA certificate; it is replaced after two thirds of it. */
  webhookCaValidityMs: number;
  /** Lifetime of the webhook's serving certificate; it is replaced after two thirds of it. */
  webhookCertValidityMs: number;
  /**
   * --iaas-keychains: providers fetches may take credentials from when no secretRef
   * credential matches; the config Secret key iaasKeychains, when present, replaces it.
   */
  iaasKeychains?: CloudProviderName[];
  /** Environment the cloud providers read (endpoints, identity files); process.env unless embedded. */
  cloudEnvironment?: CloudEnvironment;
}

export const DEFAULT_WEBHOOK_PORT = 9443;
export const DEFAULT_WEBHOOK_CA_VALIDITY = '87600h';
export const DEFAULT_WEBHOOK_CERT_VALIDITY = '8760h';
// Below this a renewal (at two thirds) would come before every replica reloaded the last one.
const MIN_WEBHOOK_VALIDITY_MS = 30_000;

const USAGE = `regcred-operator [flags]

  --kubeconfig PATH              kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  --namespace NS                 operator namespace (default: $POD_NAMESPACE or regcred-operator)
  --controllers LIST             comma list of ${CONTROLLER_NAMES.join(', ')} (default: all)
  --log-level LEVEL              error|warn|info|debug (default: $LOG_LEVEL or info)
  --health-port PORT             /healthz, /readyz, /metrics port; 0 picks a free one (default 8081)
  --health-host HOST             address for the health server (default 0.0.0.0)
  --concurrency N                workers per controller (default ${DEFAULT_CONCURRENCY}); a fan-out uses them, and
                                 --kube-api-max-in-flight bounds the requests of all of them together
  --kube-api-qps N               client-side rate limit, 0 disables; 429 answers are retried after their
                                 Retry-After on top of it (default ${DEFAULT_KUBE_API_QPS})
  --kube-api-burst N             client-side burst (default ${DEFAULT_KUBE_API_BURST})
  --kube-api-max-in-flight N     API requests in flight at once, watches aside: what API Priority and
                                 Fairness meters (seats); 0 disables (default ${DEFAULT_KUBE_API_MAX_IN_FLIGHT})
  --resync-period DURATION       replay of cached objects, e.g. 10m, 0 disables (default 10m)
  --packaging-global-namespace NS  (default kapp-controller-packaging-global)
  --package-install-default-sync-period DURATION
                                 syncPeriod of PackageInstalls that set none (default 10m)
  --config-secret-name NAME      operator config Secret (default regcred-operator-config)
  --fetch-tmp-dir DIR            where fetches are extracted, removed after each (default: OS temp dir)
  --fetch-timeout DURATION       deadline of one App's or PackageRepository's whole fetch (default ${DEFAULT_FETCH_TIMEOUT})
  --max-concurrent-fetches N     fetches running at once; one namespace gets at most half (default ${DEFAULT_MAX_CONCURRENT_FETCHES})
  --fetch-disk-budget SIZE       disk of all running fetches together, e.g. 1536Mi or 2Gi; each fetch
                                 may use SIZE / --max-concurrent-fetches (default 1536Mi, fits a 2Gi /tmp)
  --iaas-keychains LIST          comma list of ecr, gcr (or gke), acr (or aks): fetches whose secretRef has
                                 no credential for an image's registry use the operator's cloud identity
                                 for it (default: none); key iaasKeychains of the config Secret, when
                                 present, replaces this flag
  --leader-elect[=true|false]    run workers only while holding the Lease in --namespace; followers keep
                                 caches warm and write nothing (default false)
  --leader-elect-lease-name NAME Lease used for leader election (default regcred-operator)
  --leader-elect-lease-duration DURATION
                                 followers take over after the Lease went unrenewed this long (default 15s)
  --leader-elect-renew-deadline DURATION
                                 the leader stops leading (and exits 1) when it could not renew for this
                                 long; shorter than the lease duration (default 10s)
  --leader-elect-retry-period DURATION
                                 pause between acquire/renew attempts; shorter than the renew deadline
                                 (default 2s)
  --webhook-port PORT            HTTPS port of the Pod admission webhook that adds ImagePullSecretPolicy
                                 entries to new Pods; 0 disables the webhook (default ${DEFAULT_WEBHOOK_PORT})
  --webhook-url URL              https URL the API server calls for the webhook, for an operator running
                                 outside the cluster, e.g. https://127.0.0.1:9443/mutate-pods (default:
                                 Service regcred-operator-webhook in --namespace, path /mutate-pods)
  --webhook-ca-validity DURATION lifetime of the webhook's own CA, renewed after 2/3 (default ${DEFAULT_WEBHOOK_CA_VALIDITY})
  --webhook-cert-validity DURATION
                                 lifetime of the webhook's serving certificate, renewed after 2/3
                                 (default ${DEFAULT_WEBHOOK_CERT_VALIDITY})
`;

const LEADER_ELECT_FLAG = /^--leader-elect=(.*)$/s;
const GO_BOOLEANS: Record<string, boolean> = {
  '1': true,
  t: true,
  T: true,
  true: true,
  TRUE: true,
  True: true,
  '0': false,
  f: false,
  F: false,
  false: false,
  FALSE: false,
  False: false,
};

/**
 * `--leader-elect=true|false` as Go's flag package takes it; node's parseArgs only knows a bare
 * boolean flag. Returns the other arguments and the value of the last --leader-elect given.
 */
function takeLeaderElect(argv: string[]): { rest: string[]; leaderElect?: boolean } {
  const rest: string[] = [];
  let leaderElect: boolean | undefined;
  for (const arg of argv) {
    if (arg === '--') {
      rest.push(...argv.slice(argv.indexOf(arg)));
      break;
    }
    if (arg === '--leader-elect') {
      leaderElect = true;
      continue;
    }
    const m = LEADER_ELECT_FLAG.exec(arg);
    if (!m) {
      rest.push(arg);
      continue;
    }
    const value = GO_BOOLEANS[m[1]!];
    if (value === undefined)
      throw new Error(`--leader-elect must be true or false; got ${JSON.stringify(m[1]!.slice(0, 64))}`);
    leaderElect = value;
  }
  return leaderElect === undefined ? { rest } : { rest, leaderElect };
}

// A DNS subdomain (what a Lease name must be); length checked first.
const LEASE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

const MIN_FETCH_DISK_SHARE_BYTES = 2 ** 20;

export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new Error(`invalid duration ${JSON.stringify(value)} (use e.g. 500ms, 30s, 10m, 1h)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!);
}

function int(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A byte size: a whole number with an optional Kubernetes suffix (Ki, Mi, Gi, Ti, k, M, G, T). */
export function parseByteSize(value: string): number | undefined {
  const m = /^(\d{1,15})(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * SIZE_UNITS[m[2] ?? '']!;
}

function byteSize(name: string, value: string): number {
  const bytes = parseByteSize(value);
  if (bytes === undefined || bytes <= 0) {
    throw new Error(`--${name} must be a size such as 1536Mi or 2Gi; got ${JSON.stringify(value)}`);
  }
  return bytes;
}

function positiveGoDuration(name: string, value: string): number {
  const ms = parseGoDuration(value);
  if (ms === undefined || ms <= 0) {
    throw new Error(
      `--${name} must be a positive Go duration such as 90s, 5m or 1h; got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

function goDuration(name: string, value: string): string {
  const ms = parseGoDuration(value);
  if (ms === undefined || ms < 0) {
    throw new Error(
      `--${name} must be a Go duration such as 30s, 10m or 1h30m; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig | { help: string } {
  const { rest, leaderElect } = takeLeaderElect(argv);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      controllers: { type: 'string' },
      'log-level': { type: 'string' },
      'health-port': { type: 'string' },
      'health-host': { type: 'string' },
      concurrency: { type: 'string' },
      'kube-api-qps': { type: 'string' },
      'kube-api-burst': { type: 'string' },
      'kube-api-max-in-flight': { type: 'string' },
      'resync-period': { type: 'string' },
      'packaging-global-namespace': { type: 'string' },
      'package-install-default-sync-period': { type: 'string' },
      'config-secret-name': { type: 'string' },
      'fetch-tmp-dir': { type: 'string' },
      'fetch-timeout': { type: 'string' },
      'max-concurrent-fetches': { type: 'string' },
      'fetch-disk-budget': { type: 'string' },
      'leader-elect-lease-name': { type: 'string' },
      'leader-elect-lease-duration': { type: 'string' },
      'leader-elect-renew-deadline': { type: 'string' },
      'leader-elect-retry-period': { type: 'string' },
      'webhook-port': { type: 'string' },
      'webhook-url': { type: 'string' },
      'webhook-ca-validity': { type: 'string' },
      'webhook-cert-validity': { type: 'string' },
      'iaas-keychains': { type: 'string' },
    },
  });
  if (values.help) return { help: USAGE };
  const logLevel = values['log-level'] ?? env.LOG_LEVEL ?? 'info';
  if (!isLogLevel(logLevel))
    throw new Error(`--log-level must be one of error, warn, info, debug; got ${logLevel}`);
  const controllers = (values.controllers ?? CONTROLLER_NAMES.join(','))
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  for (const c of controllers) {
    if (!(CONTROLLER_NAMES as readonly string[]).includes(c)) {
      throw new Error(`unknown controller ${JSON.stringify(c)}; known: ${CONTROLLER_NAMES.join(', ')}`);
    }
  }
  const maxConcurrentFetches = int(
    'max-concurrent-fetches',
    values['max-concurrent-fetches'],
    DEFAULT_MAX_CONCURRENT_FETCHES,
    1,
  );
  const fetchDiskBudgetBytes =
    values['fetch-disk-budget'] === undefined
      ? DEFAULT_FETCH_DISK_BUDGET_BYTES
      : byteSize('fetch-disk-budget', values['fetch-disk-budget']);
  if (fetchDiskBudgetBytes / maxConcurrentFetches < MIN_FETCH_DISK_SHARE_BYTES) {
    throw new Error(
      `--fetch-disk-budget ${values['fetch-disk-budget'] ?? '1536Mi'} over --max-concurrent-fetches ` +
        `${maxConcurrentFetches} leaves less than 1Mi of disk per fetch`,
    );
  }
  const leaseName = values['leader-elect-lease-name'] ?? 'regcred-operator';
  if (leaseName.length > 253 || !LEASE_NAME.test(leaseName)) {
    throw new Error(
      `--leader-elect-lease-name must be a lowercase DNS subdomain; got ${JSON.stringify(leaseName.slice(0, 64))}`,
    );
  }
  const leaseDuration = values['leader-elect-lease-duration'] ?? '15s';
  const renewDeadline = values['leader-elect-renew-deadline'] ?? '10s';
  const retryPeriod = values['leader-elect-retry-period'] ?? '2s';
  const leaseDurationMs = positiveGoDuration('leader-elect-lease-duration', leaseDuration);
  const renewDeadlineMs = positiveGoDuration('leader-elect-renew-deadline', renewDeadline);
  const retryPeriodMs = positiveGoDuration('leader-elect-retry-period', retryPeriod);
  if (leaseDurationMs < 1000) {
    throw new Error(`--leader-elect-lease-duration must be at least 1s; got ${leaseDuration}`);
  }
  // As client-go requires: the leader gives up before followers may take over.
  if (renewDeadlineMs >= leaseDurationMs) {
    throw new Error(
      `--leader-elect-renew-deadline (${renewDeadline}) must be shorter than --leader-elect-lease-duration (${leaseDuration})`,
    );
  }
  if (retryPeriodMs >= renewDeadlineMs) {
    throw new Error(
      `--leader-elect-retry-period (${retryPeriod}) must be shorter than --leader-elect-renew-deadline (${renewDeadline})`,
    );
  }
  const webhookPort = int('webhook-port', values['webhook-port'], DEFAULT_WEBHOOK_PORT);
  if (webhookPort > 65535) throw new Error(`--webhook-port must be at most 65535; got ${webhookPort}`);
  const webhookUrl = values['webhook-url'] === undefined ? undefined : webhookUrlFlag(values['webhook-url']);
  const webhookCaValidity = values['webhook-ca-validity'] ?? DEFAULT_WEBHOOK_CA_VALIDITY;
  const webhookCertValidity = values['webhook-cert-validity'] ?? DEFAULT_WEBHOOK_CERT_VALIDITY;
  const webhookCaValidityMs = positiveGoDuration('webhook-ca-validity', webhookCaValidity);
  const webhookCertValidityMs = positiveGoDuration('webhook-cert-validity', webhookCertValidity);
  if (webhookCertValidityMs < MIN_WEBHOOK_VALIDITY_MS || webhookCaValidityMs < MIN_WEBHOOK_VALIDITY_MS) {
    throw new Error(
      `--webhook-ca-validity and --webhook-cert-validity must be at least 30s; got ${webhookCaValidity} and ${webhookCertValidity}`,
    );
  }
  let iaasKeychains: CloudProviderName[] | undefined;
  if (values['iaas-keychains'] !== undefined) {
    const parsed = parseKeychainList(values['iaas-keychains']);
    if (!parsed.ok) throw new Error(`--iaas-keychains: ${parsed.error}`);
    iaasKeychains = parsed.names;
  }
  return {
    kubeconfig: values.kubeconfig,
    namespace: values.namespace ?? env.POD_NAMESPACE ?? 'regcred-operator',
    controllers: controllers as ControllerName[],
    logLevel,
    healthPort: int('health-port', values['health-port'], 8081),
    healthHost: values['health-host'] ?? '0.0.0.0',
    concurrency: int('concurrency', values.concurrency, DEFAULT_CONCURRENCY, 1),
    kubeApiQps: int('kube-api-qps', values['kube-api-qps'], DEFAULT_KUBE_API_QPS),
    kubeApiBurst: int('kube-api-burst', values['kube-api-burst'], DEFAULT_KUBE_API_BURST, 1),
    kubeApiMaxInFlight: int(
      'kube-api-max-in-flight',
      values['kube-api-max-in-flight'],
      DEFAULT_KUBE_API_MAX_IN_FLIGHT,
    ),
    resyncPeriodMs: parseDuration(values['resync-period'] ?? '10m'),
    packagingGlobalNamespace: values['packaging-global-namespace'] ?? 'kapp-controller-packaging-global',
    packageInstallDefaultSyncPeriod: goDuration(
      'package-install-default-sync-period',
      values['package-install-default-sync-period'] ?? '10m',
    ),
    configSecretName: values['config-secret-name'] ?? 'regcred-operator-config',
    ...(values['fetch-tmp-dir'] ? { fetchTmpDir: values['fetch-tmp-dir'] } : {}),
    fetchTimeoutMs: positiveGoDuration('fetch-timeout', values['fetch-timeout'] ?? DEFAULT_FETCH_TIMEOUT),
    maxConcurrentFetches,
    fetchDiskBudgetBytes,
    leaderElect: leaderElect ?? false,
    leaderElectLeaseName: leaseName,
    leaderElectLeaseDurationMs: leaseDurationMs,
    leaderElectRenewDeadlineMs: renewDeadlineMs,
    leaderElectRetryPeriodMs: retryPeriodMs,
    webhookPort,
    ...(webhookUrl ? { webhookUrl } : {}),
    webhookCaValidityMs,
    webhookCertValidityMs,
    ...(iaasKeychains ? { iaasKeychains } : {}),
  };
}

/**
 * What a MutatingWebhookConfiguration accepts as clientConfig.url: https, a
 * host, no user info, query or fragment.
 */
function webhookUrlFlag(value: string): string {
  const shown = JSON.stringify(value.slice(0, 200));
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(
      `--webhook-url must be an https URL such as https://127.0.0.1:9443/mutate-pods; got ${shown}`,
    );
  }
  if (url.protocol !== 'https:' || !url.hostname || url.username || url.password || url.search || url.hash) {
    throw new Error(
      `--webhook-url must be an https URL with a host and no user, query or fragment; got ${shown}`,
    );
  }
  return url.toString();
}

/** The configuration of a run with no flags and no environment, with `overrides`: for embedding the operator (demo, tests). */
export function defaultConfig(overrides: Partial<OperatorConfig> = {}): OperatorConfig {
  return { ...(parseConfig([], {}) as OperatorConfig), ...overrides };
}
