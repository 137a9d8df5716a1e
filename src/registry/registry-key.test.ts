import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  KEY_TOO_LONG_REASON,
  MAX_DISPLAYED_KEY_LENGTH,
  TOO_MANY_WILDCARDS_REASON,
  collapseWildcards,
  displayRegistryKey,
  globLabelMatches,
  registryKeyProblem,
  splitRegistryKey,
  type MatchSteps,
} from './registry-key.js';

describe('globLabelMatches', () => {
  const cases: Array<{ glob: string; label: string; want: boolean }> = [
    { glob: 'gcr', label: 'gcr', want: true },
    { glob: 'gcr', label: 'gcrx', want: false },
    { glob: '*', label: '', want: true },
    { glob: '*', label: 'anything', want: true },
    { glob: '*-docker', label: 'us-docker', want: true },
    { glob: '*-docker', label: 'us-dockerx', want: false },
    { glob: 'us-*', label: 'us-', want: true },
    { glob: 'us-*', label: 'eu-west', want: false },
    { glob: 'a*b', label: 'ab', want: true },
    { glob: 'a*b', label: 'a', want: false },
    { glob: 'ab*ba', label: 'aba', want: false },
    { glob: 'ab*ba', label: 'abba', want: true },
    { glob: 'a*b*c', label: 'axxbyyc', want: true },
    { glob: 'a*b*c', label: 'axxcyyb', want: false },
    { glob: '*ab*ab*', label: 'xabyyab', want: true },
    { glob: '*ab*ab*', label: 'xaby', want: false },
    { glob: '*aab*', label: 'aaaab', want: true },
    { glob: '*abab*', label: 'abaabab', want: true },
    { glob: 'a**b', label: 'axyb', want: true },
    { glob: '*.*', label: 'a.b', want: true },
    { glob: '?', label: 'a', want: false },
    { glob: '[a]', label: '[a]', want: true },
    { glob: '*a*a*a*a*a*a*a*a*a*a*b', label: 'a'.repeat(40), want: false },
    { glob: '*a*a*a*a*a*a*a*a*a*a*b', label: `${'a'.repeat(40)}b`, want: true },
  ];
  for (const { glob, label, want } of cases) {
    it(`${JSON.stringify(glob)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(label)}`, () =>
      assert.equal(globLabelMatches(glob, label), want));
  }

  /** The reference semantics, by dynamic programming: slow, obviously right. */
  function reference(glob: string, label: string): boolean {
    let row = [true, ...Array.from(label, () => false)];
    for (const g of glob) {
      const next = [g === '*' && row[0]!];
      for (let j = 1; j <= label.length; j++) {
        next[j] = g === '*' ? row[j]! || next[j - 1]! : row[j - 1]! && g === label[j - 1];
      }
      row = next;
    }
    return row[label.length]!;
  }

  it('agrees with a dynamic-programming matcher on every glob and label over {a, b, *} up to length 6', () => {
    const words = (alphabet: string, max: number): string[] => {
      const out = [''];
      for (let i = 0, start = 0; i < max; i++) {
        const end = out.length;
        for (let w = start; w < end; w++) for (const c of alphabet) out.push(out[w]! + c);
        start = end;
      }
      return out;
    };
    const labels = words('ab', 6);
    for (const glob of words('ab*', 5)) {
      for (const label of labels) {
        assert.equal(globLabelMatches(glob, label), reference(glob, label), `${glob} vs ${label}`);
      }
    }
  });

  // Exponential (or polynomial) matchers need far more steps than this on these inputs.
  const pathological: Array<{ name: string; glob: string; label: string }> = [
    { name: 'the key of issue 9', glob: '*a*a*a*a*a*a*a*a*a*a*b', label: 'a'.repeat(40) },
    { name: 'many stars, long label', glob: `${'*a'.repeat(100)}*b`, label: 'a'.repeat(5000) },
    { name: 'a long near-miss literal', glob: `*${'a'.repeat(200)}b*`, label: 'a'.repeat(5000) },
    {
      name: 'repeating literals',
      glob: `*${'ab'.repeat(50)}c*${'ab'.repeat(50)}c`,
      label: 'ab'.repeat(3000),
    },
  ];
  for (const { name, glob, label } of pathological) {
    it(`takes linear steps: ${name}`, () => {
      const counter: MatchSteps = { steps: 0 };
      globLabelMatches(glob, label, counter);
      assert.ok(
        counter.steps <= 2 * (glob.length + label.length),
        `${counter.steps} steps for |glob| ${glob.length} + |label| ${label.length}`,
      );
    });
  }
});

describe('collapseWildcards', () => {
  it('turns runs of * into one', () => {
    assert.equal(collapseWildcards('***.a**b*'), '*.a*b*');
    assert.equal(collapseWildcards('gcr.io'), 'gcr.io');
  });
});

describe('splitRegistryKey', () => {
  const cases: Array<{ key: string; authority: string; path: string }> = [
    { key: 'r.io', authority: 'r.io', path: '' },
    { key: ' https://R.io:5000//team//app/v2/ ', authority: 'R.io:5000', path: 'team/app' },
    { key: 'https://user:pa55@r.io/v1/', authority: 'r.io', path: '' },
    { key: 'r.io/team?x=1#f', authority: 'r.io', path: 'team' },
    { key: 'r.io/v2/team', authority: 'r.io', path: 'v2/team' },
    { key: `r.io${'/'.repeat(100_000)}x`, authority: 'r.io', path: 'x' },
  ];
  for (const { key, authority, path } of cases) {
    it(`splits ${JSON.stringify(key.slice(0, 40))}`, () =>
      assert.deepEqual(splitRegistryKey(key), { authority, path }));
  }
});

describe('registryKeyProblem', () => {
  const cases: Array<{ name: string; key: string; want: string | undefined }> = [
    { name: 'an ordinary key', key: 'https://index.docker.io/v1/', want: undefined },
    { name: 'one wildcard', key: '*.gcr.io', want: undefined },
    { name: 'four wildcards in a label', key: '*a*b*c*.r.io', want: undefined },
    { name: 'five wildcards in a label', key: '*a*b*c*d*.r.io', want: TOO_MANY_WILDCARDS_REASON },
    {
      name: 'the key of issue 9',
      key: '*a*a*a*a*a*a*a*a*a*a*b.example.com',
      want: TOO_MANY_WILDCARDS_REASON,
    },
    { name: 'runs of * count once', key: '**a**b**.r.io', want: undefined },
    { name: 'four wildcards in each of several labels', key: '*a*b*c*.*a*b*c*.io', want: undefined },
    { name: 'wildcards in the path are not host wildcards', key: 'r.io/*a*b*c*d*e', want: undefined },
    { name: 'exactly 255 characters', key: `r.io/${'a'.repeat(250)}`, want: undefined },
    { name: '256 characters', key: `r.io/${'a'.repeat(251)}`, want: KEY_TOO_LONG_REASON },
    {
      name: 'scheme, user info and /v1/ do not count',
      key: `https://${'u'.repeat(300)}:p@r.io/${'a'.repeat(250)}/v1/`,
      want: undefined,
    },
    { name: 'a long host', key: `${'h'.repeat(300)}.io`, want: KEY_TOO_LONG_REASON },
    { name: 'a 1 MiB key', key: 'a'.repeat(1 << 20), want: KEY_TOO_LONG_REASON },
  ];
  for (const { name, key, want } of cases) it(name, () => assert.equal(registryKeyProblem(key), want));

  it('says what is wrong without the key', () => {
    assert.equal(
      KEY_TOO_LONG_REASON,
      'key is longer than 255 characters without its scheme, user info and /v1/ or /v2/ suffix; no image name is that long',
    );
    assert.equal(TOO_MANY_WILDCARDS_REASON, 'a host label of the key has more than 4 "*" wildcards');
  });
});

describe('displayRegistryKey', () => {
  const cases: Array<{ name: string; key: string; shown: string }> = [
    {
      name: 'a plain key is shown as written',
      key: 'https://index.docker.io/v1/',
      shown: 'https://index.docker.io/v1/',
    },
    { name: 'user info is hidden', key: 'https://user:pass@r.io', shown: 'https://***@r.io' },
    { name: 'user info without a scheme', key: 'user:pass@r.io/team', shown: '***@r.io/team' },
    { name: 'a password holding @', key: 'https://u:p@ss@r.io', shown: 'https://***@r.io' },
    { name: 'a password holding / and #', key: 'https://u:p/s#s@r.io', shown: 'https://***@r.io' },
    { name: 'a query is hidden', key: 'r.io/team?token=abc', shown: 'r.io/team?***' },
    { name: 'a fragment is hidden', key: 'r.io#abc', shown: 'r.io#***' },
    { name: 'unicode letters stay', key: 'régistry.例え.jp', shown: 'régistry.例え.jp' },
    { name: 'an astral character stays whole', key: 'r.io/😀', shown: 'r.io/😀' },
    { name: 'a newline is escaped', key: 'r.io\nINFO fake log line', shown: 'r.io\\u{a}INFO fake log line' },
    { name: 'a bidi override is escaped', key: 'r.io/\u202egnp.exe', shown: 'r.io/\\u{202e}gnp.exe' },
    { name: 'an escape sequence is escaped', key: '\u001b[31mr.io', shown: '\\u{1b}[31mr.io' },
    { name: 'a lone surrogate is escaped', key: 'r.io/\ud800x', shown: 'r.io/\\u{d800}x' },
    { name: 'a zero-width space is escaped', key: 'r\u200b.io', shown: 'r\\u{200b}.io' },
    {
      name: 'a long key is cut with an ellipsis',
      key: `r.io/${'a'.repeat(300)}`,
      shown: `r.io/${'a'.repeat(MAX_DISPLAYED_KEY_LENGTH - 6)}…`,
    },
    {
      name: 'a key of exactly the display length is not cut',
      key: 'a'.repeat(MAX_DISPLAYED_KEY_LENGTH),
      shown: 'a'.repeat(MAX_DISPLAYED_KEY_LENGTH),
    },
    {
      name: 'an escape is never cut in half',
      key: `${'a'.repeat(MAX_DISPLAYED_KEY_LENGTH - 4)}\n`,
      shown: `${'a'.repeat(MAX_DISPLAYED_KEY_LENGTH - 4)}…`,
    },
    {
      name: 'a surrogate pair is never cut in half',
      key: `${'a'.repeat(MAX_DISPLAYED_KEY_LENGTH - 2)}😀😀`,
      shown: `${'a'.repeat(MAX_DISPLAYED_KEY_LENGTH - 2)}…`,
    },
    {
      name: 'user info past the display length is still hidden',
      key: `https://${'x'.repeat(500)}:secret@r.io`,
      shown: 'https://***@r.io',
    },
  ];
  for (const { name, key, shown } of cases) {
    it(name, () => {
      const once = displayRegistryKey(key);
      assert.equal(once, shown);
      assert.ok(once.length <= MAX_DISPLAYED_KEY_LENGTH);
      assert.equal(displayRegistryKey(once), once, 'idempotent');
    });
  }

  it('never shows the password of a key that holds one', () => {
    for (const key of [
      'https://u:hunter2@r.io',
      'u:hunter2@r.io',
      'http://u:hun@ter2@r.io/v1/',
      'r.io?hunter2',
    ]) {
      assert.ok(!displayRegistryKey(key).includes('hunter2'), key);
      assert.ok(!displayRegistryKey(key).includes('ter2'), key);
    }
  });
});
