// PackageInstall version selection and the downgrade guard.
//
// Constraint syntax follows what upstream kapp-controller accepts (vendir's
// versions package on top of a blang/semver fork): comparisons `<`, `<=`,
// `>`, `>=`, `=`, `==`, `!=`, `!` (no operator = equal), whitespace = AND,
// `||` = OR (AND binds tighter), and `x` wildcards in the minor/patch
// position (`1.x`, `1.2.x`, `>=1.x`, `<=1.2.x`, `!=1.x`). npm-only syntax
// (`^`, `~`, hyphen ranges, partial versions like `1.2`) is rejected as it is
// upstream. Comparisons are plain semver precedence, so once prereleases are
// admitted a range compares them like any other version (`>=2.0.0` matches
// `3.0.0-beta.1`, `<2.0.0` matches `2.0.0-rc.1`).
//
// Beyond upstream: a leading `v` is tolerated in constraints; `1.x.x` means
// `1.x` (upstream's parser turns it into `1.0.x`); `!=1.x` excludes the 1.x
// range (upstream's expansion matches nothing); `||` needs no surrounding
// spaces; `=1.0.0-rc.1` / `v1.0.0-rc.1` count as exact prerelease constraints.

import semver from 'semver';
import type { SemVer } from 'semver';
import type { Package, PackageInstall, Prereleases } from './types.js';

export const DOWNGRADABLE_ANNOTATION = 'packaging.carvel.dev/downgradable';
export const IGNORE_KUBERNETES_VERSION_ANNOTATION =
  'packaging.carvel.dev/ignore-kubernetes-version-selection';
export const IGNORE_KAPP_CONTROLLER_VERSION_ANNOTATION =
  'packaging.carvel.dev/ignore-kapp-controller-version-selection';
export const SEE_USEFUL_ERROR_MESSAGE = 'Error (see .status.usefulErrorMessage for details)';

// ---------------------------------------------------------------------------
// Versions

/**
 * Parses a Package version the way upstream does for candidates: strict
 * semver, one leading `v` allowed. Returns null when it does not parse.
 */
export function parseRelaxedVersion(version: string): SemVer | null {
  const stripped = version.startsWith('v') ? version.slice(1) : version;
  if (!/^\d/.test(stripped) || stripped !== stripped.trim()) return null;
  return semver.parse(stripped, { loose: false });
}

/** Kubernetes / controller versions: tolerant parse, prerelease and build dropped. */
function parseScrubbedVersion(version: string): SemVer | null {
  const coerced = semver.coerce(version.trim());
  return coerced ? semver.parse(`${coerced.major}.${coerced.minor}.${coerced.patch}`) : null;
}

// ---------------------------------------------------------------------------
// Constraints

export type VersionPredicate = (version: SemVer) => boolean;

export type ParsedConstraint = { ok: true; test: VersionPredicate } | { ok: false; error: string };

const OPERATOR_ONLY = /^(?:<=|>=|<|>|==|=|!=|!)$/;
const COMPARATOR = /^(<=|>=|<|>|==|=|!=|!)?(.*)$/;
const WILDCARD = /^[xX*]$/;
const NUMBER = /^(?:0|[1-9]\d*)$/;

type Op = '<' | '<=' | '>' | '>=' | '=' | '!=';

function normalizeOp(op: string | undefined): Op {
  switch (op) {
    case undefined:
    case '':
    case '=':
    case '==':
      return '=';
    case '!':
    case '!=':
      return '!=';
    default:
      return op as Op;
  }
}

function compareWith(op: Op, bound: SemVer): VersionPredicate {
  return (v) => {
    const c = semver.compare(v, bound);
    switch (op) {
      case '<':
        return c < 0;
      case '<=':
        return c <= 0;
      case '>':
        return c > 0;
      case '>=':
        return c >= 0;
      case '=':
        return c === 0;
      case '!=':
        return c !== 0;
    }
  };
}

function parseComparator(token: string): { ok: true; test: VersionPredicate } | { ok: false; error: string } {
  const m = COMPARATOR.exec(token);
  const op = normalizeOp(m?.[1]);
  let versionText = m?.[2] ?? '';
  if (/^[vV]\d/.test(versionText)) versionText = versionText.slice(1);
  if (versionText === '') return { ok: false, error: `no version in "${token}"` };

  const parts = versionText.split('.');
  if (!/[-+]/.test(versionText) && parts.some((p) => WILDCARD.test(p))) {
    const [major, minor, patch] = parts;
    if (parts.length > 3 || major === undefined || !NUMBER.test(major)) {
      return {
        ok: false,
        error: `unsupported wildcard "${versionText}" in "${token}" (only the minor or patch position may be x)`,
      };
    }
    let lo: SemVer;
    let hi: SemVer;
    if (minor !== undefined && WILDCARD.test(minor) && (patch === undefined || WILDCARD.test(patch))) {
      lo = new semver.SemVer(`${major}.0.0`);
      hi = new semver.SemVer(`${Number(major) + 1}.0.0`);
    } else if (minor !== undefined && NUMBER.test(minor) && patch !== undefined && WILDCARD.test(patch)) {
      lo = new semver.SemVer(`${major}.${minor}.0`);
      hi = new semver.SemVer(`${major}.${Number(minor) + 1}.0`);
    } else {
      return {
        ok: false,
        error: `unsupported wildcard "${versionText}" in "${token}" (only the minor or patch position may be x)`,
      };
    }
    const inRange = (v: SemVer) => semver.compare(v, lo) >= 0 && semver.compare(v, hi) < 0;
    switch (op) {
      case '>=':
        return { ok: true, test: compareWith('>=', lo) };
      case '>':
        return { ok: true, test: compareWith('>=', hi) };
      case '<':
        return { ok: true, test: compareWith('<', lo) };
      case '<=':
        return { ok: true, test: compareWith('<', hi) };
      case '=':
        return { ok: true, test: inRange };
      case '!=':
        return { ok: true, test: (v) => !inRange(v) };
    }
  }

  const bound = /^\d/.test(versionText) ? semver.parse(versionText, { loose: false }) : null;
  if (!bound) {
    const hint = /^[\^~]/.test(versionText)
      ? ' (^ and ~ ranges are not supported; use comparisons such as ">=1.2.0 <2.0.0")'
      : ' (expected MAJOR.MINOR.PATCH, optionally with -prerelease and +build)';
    return { ok: false, error: `could not parse version "${versionText}" in "${token}"${hint}` };
  }
  return { ok: true, test: compareWith(op, bound) };
}

/** Parses a constraint string into a predicate, or explains what is wrong with it. */
export function parseConstraint(constraint: string): ParsedConstraint {
  const alternatives = constraint.split('||');
  const orTests: VersionPredicate[] = [];
  for (const alternative of alternatives) {
    const rawTokens = alternative
      .trim()
      .split(/\s+/)
      .filter((t) => t !== '');
    if (rawTokens.length === 0) {
      return {
        ok: false,
        error: alternatives.length === 1 ? 'the constraint is empty' : `empty alternative around "||"`,
      };
    }
    const tokens: string[] = [];
    for (let i = 0; i < rawTokens.length; i++) {
      const token = rawTokens[i] as string;
      if (OPERATOR_ONLY.test(token)) {
        const next = rawTokens[i + 1];
        if (next === undefined)
          return { ok: false, error: `operator "${token}" is not followed by a version` };
        tokens.push(token + next);
        i++;
      } else {
        tokens.push(token);
      }
    }
    const andTests: VersionPredicate[] = [];
    for (const token of tokens) {
      const parsed = parseComparator(token);
      if (!parsed.ok) return parsed;
      andTests.push(parsed.test);
    }
    orTests.push((v) => andTests.every((t) => t(v)));
  }
  return { ok: true, test: (v) => orTests.some((t) => t(v)) };
}

/**
 * True when the constraint names exactly one prerelease version (`1.0.0-rc.1`,
 * and beyond upstream `v1.0.0-rc.1`, `=1.0.0-rc.1`, `==1.0.0-rc.1`).
 */
export function isExactPrereleaseConstraint(constraint: string): boolean {
  const m = /^(?:==?)?\s*v?(\S+)$/.exec(constraint.trim());
  if (!m?.[1] || !/^\d/.test(m[1])) return false;
  const v = semver.parse(m[1], { loose: false });
  return v !== null && v.prerelease.length > 0;
}

// ---------------------------------------------------------------------------
// Selection

export interface SelectVersionInput {
  refName: string;
  /** Packages visible to the PackageInstall (see package-visibility); other refNames are ignored. */
  candidates: readonly Package[];
  constraints?: string | undefined;
  prereleases?: Prereleases | null | undefined;
  /** PackageInstall annotations (for the ignore-*-version-selection annotations). */
  annotations?: Readonly<Record<string, string>> | undefined;
  /**
   * Version that Packages' kappControllerVersionSelection is checked against.
   * When undefined the check passes (this operator does not claim a kapp-controller version).
   */
  kappControllerVersion?: string | undefined;
  /**
   * Kubernetes server version that Packages' kubernetesVersionSelection is checked against.
   * Needed only when some candidate has such a constraint and the ignore annotation is absent.
   */
  kubernetesVersion?: string | undefined;
}

export type SelectVersionResult =
  { ok: true; version: string; package: Package } | { ok: false; message: string };

function hasConstraint(sel: { constraints?: string } | null | undefined): sel is { constraints: string } {
  return typeof sel?.constraints === 'string' && sel.constraints.trim() !== '';
}

export function prereleaseAllowed(v: SemVer, prereleases: Prereleases | null | undefined): boolean {
  if (v.prerelease.length === 0) return true;
  if (prereleases === null || prereleases === undefined) return false;
  const identifiers = prereleases.identifiers ?? [];
  if (identifiers.length === 0) return true;
  // Only alphanumeric prerelease parts are compared (numeric ones never match), as upstream.
  return v.prerelease.some((part) => typeof part === 'string' && identifiers.includes(part));
}

/**
 * Chooses the highest version of `refName` among the candidates, after the
 * prerelease filter, the kubernetes / kapp-controller version checks and the
 * constraints.
 */
export function selectVersion(input: SelectVersionInput): SelectVersionResult {
  const { refName } = input;
  const annotations = input.annotations ?? {};
  const matching = input.candidates.filter((p) => p.spec?.refName === refName);
  // Decision: "not found" when nothing visible carries this refName (upstream
  // only says so when the namespace sees no Packages at all, and otherwise
  // reports all=0 in the details).
  if (matching.length === 0) return { ok: false, message: `Package ${refName} not found` };

  const constraints = input.constraints?.trim() ?? '';
  let prereleases = input.prereleases;
  if (constraints !== '' && (prereleases === undefined || prereleases === null)) {
    if (isExactPrereleaseConstraint(constraints)) prereleases = {};
  }

  let constraintTest: VersionPredicate | undefined;
  if (constraints !== '') {
    const parsed = parseConstraint(constraints);
    if (!parsed.ok) {
      return {
        ok: false,
        message: `Selecting versions: Parsing version constraint '${input.constraints ?? ''}': ${parsed.error}`,
      };
    }
    constraintTest = parsed.test;
  }

  type Entry = { version: SemVer; pkg: Package };
  let entries: Entry[] = [];
  for (const pkg of matching) {
    const parsed = parseRelaxedVersion(pkg.spec?.version ?? '');
    if (parsed) entries.push({ version: parsed, pkg });
  }
  const details: string[] = [`all=${entries.length}`];

  entries = entries.filter((e) => prereleaseAllowed(e.version, prereleases));
  details.push(`after-prereleases-filter=${entries.length}`);

  // The kubernetes check appears (as upstream) only when some Package of this refName asks for it.
  if (matching.some((p) => hasConstraint(p.spec?.kubernetesVersionSelection))) {
    if (!(IGNORE_KUBERNETES_VERSION_ANNOTATION in annotations)) {
      const k8s =
        input.kubernetesVersion === undefined ? null : parseScrubbedVersion(input.kubernetesVersion);
      if (!k8s) {
        return {
          ok: false,
          message: `Unable to get kubernetes version: ${
            input.kubernetesVersion === undefined ? 'not known' : `cannot parse '${input.kubernetesVersion}'`
          }`,
        };
      }
      entries = entries.filter((e) => versionSatisfies(k8s, e.pkg.spec?.kubernetesVersionSelection));
    }
    details.push(`after-kubernetes-version-check=${entries.length}`);
  }

  if (
    !(IGNORE_KAPP_CONTROLLER_VERSION_ANNOTATION in annotations) &&
    input.kappControllerVersion !== undefined
  ) {
    const kc = parseScrubbedVersion(input.kappControllerVersion);
    entries = entries.filter((e) => versionSatisfies(kc, e.pkg.spec?.kappControllerVersionSelection));
  }
  details.push(`after-kapp-controller-version-check=${entries.length}`);

  if (constraintTest) {
    const test = constraintTest;
    entries = entries.filter((e) => test(e.version));
    details.push(`after-constraints-filter=${entries.length}`);
  }

  let best: Entry | undefined;
  for (const e of entries) {
    if (!best || semver.compareBuild(e.version, best.version) > 0) best = e;
  }
  if (!best) {
    return {
      ok: false,
      message: `Expected to find at least one version, but did not (details: ${details.join(' -> ')})`,
    };
  }
  return { ok: true, version: best.pkg.spec?.version ?? best.version.version, package: best.pkg };
}

function versionSatisfies(
  version: SemVer | null,
  selection: { constraints?: string } | null | undefined,
): boolean {
  if (!hasConstraint(selection)) return true;
  if (!version) return false;
  const parsed = parseConstraint(selection.constraints);
  // A Package with an unparsable constraint is never eligible (upstream validates it away on create).
  return parsed.ok && parsed.test(version);
}

export interface SelectForInstallOptions {
  kappControllerVersion?: string | undefined;
  kubernetesVersion?: string | undefined;
}

/** selectVersion driven by a PackageInstall, with its spec checks. */
export function selectVersionForInstall(
  pkgi: PackageInstall,
  candidates: readonly Package[],
  options: SelectForInstallOptions = {},
): SelectVersionResult {
  const ref = pkgi.spec?.packageRef;
  if (!ref?.refName) return { ok: false, message: 'Expected spec.packageRef.refName to be set' };
  if (!ref.versionSelection)
    return { ok: false, message: 'Expected spec.packageRef.versionSelection to be set' };
  return selectVersion({
    refName: ref.refName,
    candidates,
    constraints: ref.versionSelection.constraints,
    prereleases: ref.versionSelection.prereleases,
    annotations: pkgi.metadata?.annotations,
    kappControllerVersion: options.kappControllerVersion,
    kubernetesVersion: options.kubernetesVersion,
  });
}

// ---------------------------------------------------------------------------
// Downgrade

export type DowngradeCheck = { ok: true } | { ok: false; message: string; usefulErrorMessage: string };

/**
 * Refuses a chosen version lower than the last attempted one unless the
 * PackageInstall carries the packaging.carvel.dev/downgradable annotation.
 * `message` goes to the ReconcileFailed condition, `usefulErrorMessage` to the status.
 */
export function checkDowngrade(
  chosen: string,
  lastAttemptedVersion: string | undefined,
  annotations: Readonly<Record<string, string>> | undefined,
): DowngradeCheck {
  if (annotations && DOWNGRADABLE_ANNOTATION in annotations) return { ok: true };
  if (lastAttemptedVersion === undefined || lastAttemptedVersion === '') return { ok: true };
  const last = parseRelaxedVersion(lastAttemptedVersion);
  if (!last) {
    const text = `Filtering by last attempted version '${lastAttemptedVersion}': it is not a valid semver version`;
    return { ok: false, message: text, usefulErrorMessage: text };
  }
  const next = parseRelaxedVersion(chosen);
  if (next && semver.compare(next, last) >= 0) return { ok: true };
  return {
    ok: false,
    message: SEE_USEFUL_ERROR_MESSAGE,
    usefulErrorMessage:
      // Upstream's exact wording (users' scripts match on it).
      `Stopped installing matched version '${chosen}' since last attempted version '${lastAttemptedVersion}' is higher.` +
      `\nhint: Add annotation ${DOWNGRADABLE_ANNOTATION}: "" to PackageInstall to proceed with downgrade`,
  };
}
