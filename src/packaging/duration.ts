// Go durations (time.ParseDuration) as the Carvel CRDs carry them in
// syncPeriod: `30s`, `10m`, `1h30m`, `1.5h`, `300ms`, `0`.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go duration into milliseconds (fractions of a millisecond kept).
 * Returns undefined when the text is not a Go duration (Go also rejects a
 * number without unit, except `0`).
 */
export function parseGoDuration(text: string): number | undefined {
  let s = text.trim();
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s.startsWith('-')) sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const m = PART.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  return sign * total;
}

export interface SyncPeriodOptions {
  /** Used when the field is unset or does not parse. */
  defaultMs: number;
  /** Shorter periods count as this one. */
  minimumMs: number;
}

/** A resource's syncPeriod in milliseconds: the default when unset or invalid, never below the minimum. */
export function syncPeriodMs(syncPeriod: string | undefined | null, options: SyncPeriodOptions): number {
  const parsed =
    syncPeriod === undefined || syncPeriod === null || syncPeriod === ''
      ? undefined
      : parseGoDuration(syncPeriod);
  const value = parsed === undefined ? options.defaultMs : parsed;
  return Math.max(value, options.minimumMs);
}
