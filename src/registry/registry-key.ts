// Registry keys (the keys of a `.dockerconfigjson`'s `auths`) as a tenant
// may write them: split without backtracking regexes, capped, matched label
// by label in linear time, and shown in messages only through
// displayRegistryKey, which hides credentials written into the key.

import { splitHostPort } from './image-ref.js';

/**
 * Longest key once scheme, user info, query and a `/v1/` or `/v2/` suffix
 * are gone. No image name (`registry/repository`) is longer, so a longer key
 * could never match one.
 */
export const MAX_REGISTRY_KEY_LENGTH = 255;
/** `*` per host label, after runs of `*` collapse; real keys use one (`*.gcr.io`, `*-docker.pkg.dev`). */
export const MAX_WILDCARDS_PER_LABEL = 4;
/** Longest key shown in a message, in UTF-16 code units, the ellipsis included. */
export const MAX_DISPLAYED_KEY_LENGTH = 128;

export const KEY_TOO_LONG_REASON =
  `key is longer than ${MAX_REGISTRY_KEY_LENGTH} characters without its scheme, user info and /v1/ or /v2/ suffix; ` +
  'no image name is that long';
export const TOO_MANY_WILDCARDS_REASON = `a host label of the key has more than ${MAX_WILDCARDS_PER_LABEL} "*" wildcards`;

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

export interface RegistryKeyParts {
  /** `host[:port]` as written (user info removed). */
  authority: string;
  /** Path without empty segments or a final `v1`/`v2` segment, as written otherwise; '' for none. */
  path: string;
}

/**
 * Splits a key as kubelet's keyring reads it: scheme optional, query and
 * fragment ignored, user info dropped from the authority, repeated slashes
 * and a trailing `/v1/` or `/v2/` ignored. One pass of string scans: no
 * regex here can backtrack over the key.
 */
export function splitRegistryKey(key: string): RegistryKeyParts {
  let rest = key.trim();
  const scheme = SCHEME.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length);
  const end = firstIndexOf(rest, '?', '#');
  if (end !== -1) rest = rest.slice(0, end);
  const slash = rest.indexOf('/');
  let authority = slash === -1 ? rest : rest.slice(0, slash);
  const at = authority.lastIndexOf('@');
  if (at !== -1) authority = authority.slice(at + 1);
  const segments =
    slash === -1
      ? []
      : rest
          .slice(slash + 1)
          .split('/')
          .filter((s) => s !== '');
  const last = segments[segments.length - 1];
  if (last === 'v1' || last === 'v2') segments.pop();
  return { authority, path: segments.join('/') };
}

function firstIndexOf(text: string, a: string, b: string): number {
  const i = text.indexOf(a);
  const j = text.indexOf(b);
  if (i === -1) return j;
  if (j === -1) return i;
  return Math.min(i, j);
}

/** Host globs compare with runs of `*` collapsed: `a**b` is `a*b`. */
export function collapseWildcards(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] === '*' && glob[i - 1] === '*') continue;
    out += glob[i];
  }
  return out;
}

/** Why the key is left out (a skipped-entry reason), or undefined when it is within the caps. */
export function registryKeyProblem(key: string): string | undefined {
  return registryKeyPartsProblem(splitRegistryKey(key));
}

/** registryKeyProblem for a key already split. */
export function registryKeyPartsProblem({ authority, path }: RegistryKeyParts): string | undefined {
  if (authority.length + (path === '' ? 0 : path.length + 1) > MAX_REGISTRY_KEY_LENGTH) {
    return KEY_TOO_LONG_REASON;
  }
  const host = splitHostPort(authority)?.host ?? authority;
  for (const label of host.split('.')) {
    let wildcards = 0;
    for (let i = 0; i < label.length; i++) {
      if (label[i] === '*' && label[i - 1] !== '*') wildcards++;
    }
    if (wildcards > MAX_WILDCARDS_PER_LABEL) return TOO_MANY_WILDCARDS_REASON;
  }
  return undefined;
}

/** Counts the character comparisons of globLabelMatches, so tests can hold it to linear time. */
export interface MatchSteps {
  steps: number;
}

/**
 * Whether a host label matches a glob label, where `*` matches any run of
 * characters (the caller compares label by label, so a `*` never crosses a
 * dot). O(|glob| + |label|): the literal between two stars is found at its
 * leftmost place after the previous one (taking the leftmost place never
 * loses a match), with Knuth-Morris-Pratt so no character is read twice.
 */
export function globLabelMatches(glob: string, label: string, counter?: MatchSteps): boolean {
  const literals = glob.split('*');
  if (literals.length === 1) return glob === label;
  const head = literals[0]!;
  const tail = literals[literals.length - 1]!;
  if (counter) counter.steps += head.length + tail.length;
  if (label.length < head.length + tail.length) return false;
  if (!label.startsWith(head) || !label.endsWith(tail)) return false;
  let from = head.length;
  const to = label.length - tail.length;
  for (let i = 1; i < literals.length - 1; i++) {
    const literal = literals[i]!;
    if (literal === '') continue; // a run of `*`
    const found = indexOfWithin(label, literal, from, to, counter);
    if (found === -1) return false;
    from = found + literal.length;
  }
  return true;
}

/** First index ≥ from of `needle` in `text` ending at or before `to`; -1 when none. */
function indexOfWithin(text: string, needle: string, from: number, to: number, counter?: MatchSteps): number {
  // failure[i]: length of the longest proper border of needle[0..i].
  const failure = new Array<number>(needle.length).fill(0);
  for (let i = 1, k = 0; i < needle.length; i++) {
    while (k > 0 && needle[i] !== needle[k]) {
      k = failure[k - 1]!;
      if (counter) counter.steps++;
    }
    if (needle[i] === needle[k]) k++;
    failure[i] = k;
    if (counter) counter.steps++;
  }
  for (let i = from, k = 0; i < to; i++) {
    while (k > 0 && text[i] !== needle[k]) {
      k = failure[k - 1]!;
      if (counter) counter.steps++;
    }
    if (text[i] === needle[k]) k++;
    if (counter) counter.steps++;
    if (k === needle.length) return i - needle.length + 1;
  }
  return -1;
}

/** Characters shown escaped: controls, invisible formatting (bidi overrides among them), separators, lone surrogates. */
const UNSAFE_CHARACTER = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/**
 * The only form in which a registry key may appear in a message, log line,
 * Event or annotation: user info (`user:pass@`, also when a password
 * holds `/` or `@`) and any query or fragment replaced by `***`, invisible
 * and control characters escaped as `\u{...}`, at most
 * MAX_DISPLAYED_KEY_LENGTH code units (cut with `…`). Idempotent. The
 * credential file itself keeps the key as written.
 */
export function displayRegistryKey(key: string): string {
  let shown = key;
  const scheme = SCHEME.exec(shown)?.[0] ?? '';
  let rest = shown.slice(scheme.length);
  // Everything up to the last `@` may be credentials: a key never needs an `@` elsewhere.
  const at = rest.lastIndexOf('@');
  if (at !== -1) rest = `***${rest.slice(at)}`;
  const query = firstIndexOf(rest, '?', '#');
  if (query !== -1) rest = `${rest.slice(0, query + 1)}***`;
  shown = scheme + rest;

  // Whole pieces only, so an escape or a surrogate pair is never cut in half.
  let out = '';
  let fitsWithEllipsis = '';
  for (const character of shown) {
    const piece = UNSAFE_CHARACTER.test(character)
      ? `\\u{${character.codePointAt(0)!.toString(16)}}`
      : character;
    if (out.length + piece.length > MAX_DISPLAYED_KEY_LENGTH) return `${fitsWithEllipsis}…`;
    out += piece;
    if (out.length < MAX_DISPLAYED_KEY_LENGTH) fitsWithEllipsis = out;
  }
  return out;
}
