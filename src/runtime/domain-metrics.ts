/**
 * Domain events the metrics endpoint counts (placeholder updates, registry
 * conflicts, fetches). Controllers and fetch runners report here without
 * knowing about the metrics registry; each running Manager listens while it
 * runs. A listener that throws is ignored: metrics never break a reconcile.
 */
export type FetchResult = 'succeeded' | 'failed' | 'awaiting_change';
/** What the Pod webhook did with one admission request. */
export type AdmissionResult = 'mutated' | 'skipped' | 'error';
/** Who asked a cloud provider for a registry credential: a fetch's keychain or a RegistryToken. */
export const CLOUD_MINT_PURPOSES = ['fetch', 'registrytoken'] as const;
export type CloudMintPurpose = (typeof CLOUD_MINT_PURPOSES)[number];
export const CLOUD_MINT_RESULTS = ['succeeded', 'failed'] as const;
export type CloudMintResult = (typeof CLOUD_MINT_RESULTS)[number];
/** Why the heap compactor compacted: the process was quiet, or the waste grew large while busy. */
export const HEAP_COMPACTION_TRIGGERS = ['quiet', 'busy'] as const;
export type HeapCompactionTrigger = (typeof HEAP_COMPACTION_TRIGGERS)[number];

export interface DomainMetricsListener {
  /** A placeholder Secret was written; `sourceChangeSeconds` is the time since its newest source changed, when known. */
  placeholderUpdated?(sourceChangeSeconds: number | undefined): void;
  /** Registries that several exports give credentials for, found when a placeholder was written. */
  registryConflicts?(count: number): void;
  /** One fetch stage ended. */
  fetched?(kind: string, result: FetchResult, seconds: number, bytes: number): void;
  /** The Pod webhook answered one admission request after `seconds` of handling. */
  webhookAdmission?(result: AdmissionResult, seconds: number): void;
  /** One cloud registry credential was minted (or failed to be) by `provider` in `seconds`. */
  cloudCredentialMinted?(
    provider: string,
    purpose: CloudMintPurpose,
    result: CloudMintResult,
    seconds: number,
  ): void;
  /** The heap compactor ran one compacting collection (its time is in nodejs_gc_duration_seconds). */
  heapCompacted?(trigger: HeapCompactionTrigger): void;
}

const listeners = new Set<DomainMetricsListener>();

/** Adds a listener; returns the function that removes it. */
export function listenToDomainMetrics(listener: DomainMetricsListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(call: (listener: DomainMetricsListener) => void): void {
  for (const listener of listeners) {
    try {
      call(listener);
    } catch {
      // A metrics listener must never fail the caller.
    }
  }
}

export const domainMetrics = {
  placeholderUpdated(sourceChangeSeconds: number | undefined): void {
    emit((l) => l.placeholderUpdated?.(sourceChangeSeconds));
  },
  registryConflicts(count: number): void {
    if (count > 0) emit((l) => l.registryConflicts?.(count));
  },
  fetched(kind: string, result: FetchResult, seconds: number, bytes: number): void {
    emit((l) => l.fetched?.(kind, result, seconds, bytes));
  },
  webhookAdmission(result: AdmissionResult, seconds: number): void {
    emit((l) => l.webhookAdmission?.(result, seconds));
  },
  cloudCredentialMinted(
    provider: string,
    purpose: CloudMintPurpose,
    result: CloudMintResult,
    seconds: number,
  ): void {
    emit((l) => l.cloudCredentialMinted?.(provider, purpose, result, seconds));
  },
  heapCompacted(trigger: HeapCompactionTrigger): void {
    emit((l) => l.heapCompacted?.(trigger));
  },
};

/** The newest source Secret change a controller saw: its `namespace/name` and performance.now(). */
export interface SourceChange {
  key: string;
  at: number;
}

/**
 * Seconds from the newest source change to a placeholder write, when that
 * write carries the changed source (`sources` are `namespace/name`); undefined
 * otherwise (the write was caused by something else, e.g. a namespace label).
 */
export function secondsSinceSourceChange(
  change: SourceChange | undefined,
  sources: readonly string[],
  now: number,
): number | undefined {
  if (!change || !sources.includes(change.key)) return undefined;
  return Math.max(0, now - change.at) / 1000;
}
