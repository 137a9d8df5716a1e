// The soak's model of what the cluster should hold: every object the churn
// created, and from it what each placeholder, import copy and App must show
// once the operator has converged. Pure (no I/O), so the expectations are
// the secret-sharing rules written out once, independently of src/.

/** One exported source Secret and its SecretExport (same name, same namespace). */
export interface ModelExport {
  namespace: string;
  name: string;
  /** The SecretExport exists. */
  exported: boolean;
  /** spec.toNamespaces. */
  toNamespaces: string[];
  /** The source Secret exists. */
  sourcePresent: boolean;
  kind: 'dockerconfigjson' | 'opaque';
  /** dockerconfigjson: the one registry host of this source (unique per export, so merges never conflict). */
  host: string;
  username: string;
  /** The current password (dockerconfigjson) or value (opaque); rotated by the churn. */
  password: string;
}

export interface ModelImport {
  /** Name of the SecretImport, of the export it names and of the copy. */
  name: string;
  fromNamespace: string;
}

export interface ModelApp {
  name: string;
  /** The placeholder the App's image fetch stage names in secretRef. */
  secretName: string;
}

export interface ModelNamespace {
  name: string;
  /** Carries secretgen.carvel.dev/excluded-from-wildcard-matching. */
  excluded: boolean;
  placeholders: Set<string>;
  imports: Map<string, ModelImport>;
  apps: Map<string, ModelApp>;
}

export interface Credential {
  username: string;
  password: string;
}

export class SoakModel {
  readonly namespaces = new Map<string, ModelNamespace>();
  /** Keyed by `namespace/name`. */
  readonly exports = new Map<string, ModelExport>();
  /** Namespaces deleted by the churn: they must be gone at the end (no finalizer left behind). */
  readonly deletedNamespaces = new Set<string>();

  /** Whether `exp` shares its Secret with namespace `ns` right now. */
  reaches(exp: ModelExport, ns: ModelNamespace): boolean {
    if (!exp.exported || !exp.sourcePresent) return false;
    if (exp.toNamespaces.includes(ns.name)) return true;
    return exp.toNamespaces.includes('*') && !ns.excluded;
  }

  /** host → credential every placeholder of `ns` must hold (nothing else). */
  expectedPlaceholder(ns: ModelNamespace): Map<string, Credential> {
    const auths = new Map<string, Credential>();
    for (const exp of this.exports.values()) {
      if (exp.kind !== 'dockerconfigjson' || !this.reaches(exp, ns)) continue;
      auths.set(exp.host, { username: exp.username, password: exp.password });
    }
    return auths;
  }

  /** The export an import of `ns` copies, or undefined when the copy must not exist. */
  expectedImportSource(ns: ModelNamespace, imp: ModelImport): ModelExport | undefined {
    const exp = this.exports.get(`${imp.fromNamespace}/${imp.name}`);
    return exp && this.reaches(exp, ns) ? exp : undefined;
  }

  /** Objects in the model (for the report). */
  counts(): Record<string, number> {
    let placeholders = 0;
    let imports = 0;
    let apps = 0;
    for (const ns of this.namespaces.values()) {
      placeholders += ns.placeholders.size;
      imports += ns.imports.size;
      apps += ns.apps.size;
    }
    const exports = [...this.exports.values()];
    return {
      namespaces: this.namespaces.size,
      exports: exports.filter((e) => e.exported).length,
      sources: exports.filter((e) => e.sourcePresent).length,
      placeholders,
      imports,
      apps,
    };
  }
}

/** The `.dockerconfigjson` of a source Secret. */
export function dockerConfigOf(exp: ModelExport): string {
  return JSON.stringify({ auths: { [exp.host]: { username: exp.username, password: exp.password } } });
}

/** The data of a source Secret (base64 values), as the API server stores it. */
export function sourceData(exp: ModelExport): Record<string, string> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return exp.kind === 'dockerconfigjson'
    ? { '.dockerconfigjson': b64(dockerConfigOf(exp)) }
    : { token: b64(exp.password), user: b64(exp.username) };
}

export function sourceType(exp: ModelExport): string {
  return exp.kind === 'dockerconfigjson' ? 'kubernetes.io/dockerconfigjson' : 'Opaque';
}

/**
 * Differences between a placeholder's `.dockerconfigjson` (base64, as read)
 * and the expected auths; empty when it is right. Never includes a password.
 */
export function placeholderDifferences(
  dockerconfigB64: string | undefined,
  expected: Map<string, Credential>,
): string[] {
  if (dockerconfigB64 === undefined) return ['no .dockerconfigjson'];
  let auths: Record<string, { username?: string; password?: string }>;
  try {
    const parsed = JSON.parse(Buffer.from(dockerconfigB64, 'base64').toString()) as {
      auths?: Record<string, { username?: string; password?: string }>;
    };
    if (!parsed.auths || typeof parsed.auths !== 'object') return ['no auths object'];
    auths = parsed.auths;
  } catch {
    return ['.dockerconfigjson is not JSON'];
  }
  const diffs: string[] = [];
  for (const [host, cred] of expected) {
    const got = auths[host];
    if (!got) diffs.push(`missing ${host}`);
    else if (got.username !== cred.username || got.password !== cred.password)
      diffs.push(`stale credential for ${host}`);
  }
  for (const host of Object.keys(auths)) if (!expected.has(host)) diffs.push(`unexpected ${host}`);
  return diffs;
}

/** Deterministic PRNG (mulberry32), so a seed replays the same churn and fault choices. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** Picks by weight; entries with weight 0 never. */
  weighted<T>(entries: ReadonlyArray<readonly [T, number]>): T | undefined {
    const total = entries.reduce((s, [, w]) => s + w, 0);
    if (total <= 0) return undefined;
    let r = this.next() * total;
    for (const [item, w] of entries) {
      if ((r -= w) < 0) return item;
    }
    return entries[entries.length - 1]![0];
  }
}

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Go-style duration (`30m`, `90s`, `1h30m`) in milliseconds. */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) throw new Error(`invalid duration ${JSON.stringify(text)} (use e.g. 30m, 90s, 1h30m)`);
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    at = re.lastIndex;
  }
  if (text.length === 0) throw new Error('empty duration');
  return total;
}
