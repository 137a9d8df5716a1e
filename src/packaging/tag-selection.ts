// `tagSelection` of `image` and `imgpkgBundle` fetch stages: the highest tag
// of a repository matching a semver selection, with the rules and messages
// of PackageInstall version selection (version-selection.ts): tags that are
// not semver are ignored, prereleases only when asked for (or when the
// constraint is itself an exact prerelease), then the constraints, highest
// wins. Pure; the registry client lists the tags.

import semver from 'semver';
import type { SemVer } from 'semver';

import type { Prereleases } from './types.js';
import {
  isExactPrereleaseConstraint,
  parseConstraint,
  parseRelaxedVersion,
  prereleaseAllowed,
} from './version-selection.js';

export interface SemverTagSelection {
  constraints?: string;
  prereleases?: Prereleases | null;
}

export type TagSelectionParse = { ok: true; semver: SemverTagSelection } | { ok: false; error: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads `tagSelection` as written in a fetch stage (`{semver: {constraints, prereleases}}`). */
export function parseTagSelection(value: unknown, field: string): TagSelectionParse {
  if (!isObject(value) || !isObject(value['semver'])) {
    return { ok: false, error: `${field}: only semver selection is supported (tagSelection.semver)` };
  }
  const raw = value['semver'];
  const selection: SemverTagSelection = {};
  const constraints = raw['constraints'];
  if (constraints !== undefined && constraints !== null) {
    if (typeof constraints !== 'string')
      return { ok: false, error: `${field}.semver.constraints must be a string` };
    selection.constraints = constraints;
  }
  const prereleases = raw['prereleases'];
  if (prereleases !== undefined && prereleases !== null) {
    if (!isObject(prereleases)) return { ok: false, error: `${field}.semver.prereleases must be an object` };
    const identifiers = prereleases['identifiers'];
    if (identifiers !== undefined && identifiers !== null) {
      if (!Array.isArray(identifiers) || !identifiers.every((i) => typeof i === 'string'))
        return { ok: false, error: `${field}.semver.prereleases.identifiers must be a list of strings` };
      selection.prereleases = { identifiers };
    } else selection.prereleases = {};
  }
  return { ok: true, semver: selection };
}

export type TagSelectionResult = { ok: true; tag: string } | { ok: false; message: string };

/** The highest tag matching the selection, or Package version selection's error text. */
export function selectTag(tags: readonly string[], selection: SemverTagSelection): TagSelectionResult {
  const constraints = selection.constraints?.trim() ?? '';
  let prereleases = selection.prereleases;
  if (constraints !== '' && (prereleases === undefined || prereleases === null)) {
    if (isExactPrereleaseConstraint(constraints)) prereleases = {};
  }
  let test: ((version: SemVer) => boolean) | undefined;
  if (constraints !== '') {
    const parsed = parseConstraint(constraints);
    if (!parsed.ok) {
      return {
        ok: false,
        message: `Selecting versions: Parsing version constraint '${selection.constraints ?? ''}': ${parsed.error}`,
      };
    }
    test = parsed.test;
  }

  type Entry = { version: SemVer; tag: string };
  let entries: Entry[] = [];
  for (const tag of tags) {
    const version = parseRelaxedVersion(tag);
    if (version) entries.push({ version, tag });
  }
  const details = [`all=${entries.length}`];
  entries = entries.filter((e) => prereleaseAllowed(e.version, prereleases));
  details.push(`after-prereleases-filter=${entries.length}`);
  if (test) {
    const matches = test;
    entries = entries.filter((e) => matches(e.version));
    details.push(`after-constraints-filter=${entries.length}`);
  }

  let best: Entry | undefined;
  for (const e of entries) {
    // Equal versions (`1.0.0` and `v1.0.0`): the lexically smaller tag, so the choice never depends on order.
    const order = best ? semver.compareBuild(e.version, best.version) : 1;
    if (order > 0 || (order === 0 && best && e.tag < best.tag)) best = e;
  }
  if (!best) {
    return {
      ok: false,
      message: `Expected to find at least one version, but did not (details: ${details.join(' -> ')})`,
    };
  }
  return { ok: true, tag: best.tag };
}

/** `tagSelection` needs a repository: a tag or digest in the reference would contradict it. */
export function namesTagOrDigest(image: string): boolean {
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  return lastSegment.includes(':') || lastSegment.includes('@');
}

/**
 * The stage's tagSelection, read and checked against its image reference;
 * undefined when the stage has none. Errors only a spec change can fix.
 */
export function stageTagSelection(
  kind: 'image' | 'imgpkgBundle',
  image: string,
  tagSelection: unknown,
): { ok: true; semver: SemverTagSelection } | { ok: false; error: string } | undefined {
  if (tagSelection === undefined || tagSelection === null) return undefined;
  const field = `${kind}.tagSelection`;
  const parsed = parseTagSelection(tagSelection, field);
  if (!parsed.ok) return parsed;
  if (namesTagOrDigest(image)) {
    const imageField = kind === 'image' ? 'image.url' : 'imgpkgBundle.image';
    return { ok: false, error: `${imageField} must name no tag or digest when ${field} is set` };
  }
  return parsed;
}

export type SelectedImage =
  { ok: true; image: string; tag: string; tags: number } | { ok: false; error: string };

/** Lists the repository's tags (errors propagate) and picks one: `<image>:<tag>`. */
export async function selectImageTag<O extends { signal?: AbortSignal }>(
  lister: { listTags(image: string, options: O): Promise<string[]> },
  image: string,
  selection: SemverTagSelection,
  options: O,
): Promise<SelectedImage> {
  const tags = await lister.listTags(image, options);
  const chosen = selectTag(tags, selection);
  if (!chosen.ok) return { ok: false, error: `${image}: tagSelection: ${chosen.message}` };
  return { ok: true, image: `${image}:${chosen.tag}`, tag: chosen.tag, tags: tags.length };
}

/** How a fetch's stdout reports the tag tagSelection chose (users look for the tag there). */
export function selectedTagNote(selected: { tag: string; tags: number }): string {
  return `tag ${selected.tag}, selected by tagSelection among ${selected.tags} tags; `;
}
