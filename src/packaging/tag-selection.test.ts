import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTagSelection, selectTag, type SemverTagSelection } from './tag-selection.js';

describe('selectTag', () => {
  const tags = [
    'latest',
    '1.0.0',
    '1.2.0',
    'v1.10.0',
    '2.0.0-rc.1',
    '2.0.0-beta.1',
    'sha256-abc.sig',
    '0.9.0',
  ];
  const cases: Array<{ name: string; tags?: string[]; selection: SemverTagSelection; want: string }> = [
    { name: 'highest release without constraints (v prefix tolerated)', selection: {}, want: 'v1.10.0' },
    { name: 'constraints filter', selection: { constraints: '<1.5.0' }, want: '1.2.0' },
    { name: 'space means AND', selection: { constraints: '>=1.0.0 <1.2.0' }, want: '1.0.0' },
    { name: '|| means OR', selection: { constraints: '<1.0.0 || >=1.10.0' }, want: 'v1.10.0' },
    { name: 'prereleases when asked for', selection: { prereleases: {} }, want: '2.0.0-rc.1' },
    {
      name: 'only the listed prerelease identifiers',
      selection: { prereleases: { identifiers: ['beta'] } },
      want: '2.0.0-beta.1',
    },
    {
      name: 'an exact prerelease constraint turns prereleases on',
      selection: { constraints: '2.0.0-beta.1' },
      want: '2.0.0-beta.1',
    },
    {
      name: 'equal versions pick the same tag whatever the order',
      tags: ['v1.0.0', '1.0.0'],
      selection: {},
      want: '1.0.0',
    },
  ];
  for (const { name, selection, want, ...rest } of cases) {
    it(name, () => {
      assert.deepEqual(selectTag(rest.tags ?? tags, selection), { ok: true, tag: want });
      assert.deepEqual(selectTag([...(rest.tags ?? tags)].reverse(), selection), { ok: true, tag: want });
    });
  }

  const failures: Array<{ name: string; tags: string[]; selection: SemverTagSelection; message: string }> = [
    {
      name: 'no semver tag at all',
      tags: ['latest', 'main'],
      selection: {},
      message:
        'Expected to find at least one version, but did not (details: all=0 -> after-prereleases-filter=0)',
    },
    {
      name: 'nothing matches the constraints',
      tags,
      selection: { constraints: '>=3.0.0' },
      message:
        'Expected to find at least one version, but did not ' +
        '(details: all=6 -> after-prereleases-filter=4 -> after-constraints-filter=0)',
    },
    {
      name: 'an unparsable constraint',
      tags,
      selection: { constraints: '>=1.0.0 <' },
      message: "Selecting versions: Parsing version constraint '>=1.0.0 <': ",
    },
  ];
  for (const { name, tags: given, selection, message } of failures) {
    it(name, () => {
      const got = selectTag(given, selection);
      assert.equal(got.ok, false);
      if (!got.ok) assert.ok(got.message.startsWith(message), got.message);
    });
  }
});

describe('parseTagSelection', () => {
  const cases: Array<{ name: string; value: unknown; want: ReturnType<typeof parseTagSelection> }> = [
    {
      name: 'semver with constraints and prereleases',
      value: { semver: { constraints: '>=1.0.0', prereleases: { identifiers: ['rc'] } } },
      want: { ok: true, semver: { constraints: '>=1.0.0', prereleases: { identifiers: ['rc'] } } },
    },
    {
      name: 'empty prereleases turn them all on',
      value: { semver: { prereleases: {} } },
      want: { ok: true, semver: { prereleases: {} } },
    },
    {
      name: 'not semver',
      value: { git: {} },
      want: {
        ok: false,
        error: 'image.tagSelection: only semver selection is supported (tagSelection.semver)',
      },
    },
    {
      name: 'constraints not a string',
      value: { semver: { constraints: 1 } },
      want: { ok: false, error: 'image.tagSelection.semver.constraints must be a string' },
    },
    {
      name: 'identifiers not strings',
      value: { semver: { prereleases: { identifiers: [1] } } },
      want: {
        ok: false,
        error: 'image.tagSelection.semver.prereleases.identifiers must be a list of strings',
      },
    },
  ];
  for (const { name, value, want } of cases) {
    it(name, () => assert.deepEqual(parseTagSelection(value, 'image.tagSelection'), want));
  }
});
