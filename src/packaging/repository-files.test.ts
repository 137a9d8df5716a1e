import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  MISSING_PACKAGES_DIRECTORY,
  countDocumentsUpperBound,
  formatBytes,
  readRepositoryDocuments,
} from './repository-files.js';

const root = mkdtempSync(join(tmpdir(), 'repository-files-test-'));
let dirs = 0;
after(() => rmSync(root, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const dir = join(root, String(++dirs));
  mkdirSync(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

describe('readRepositoryDocuments', () => {
  it('reads every document of the .yml and .yaml files under packages/, in path order, naming each', async () => {
    const dir = tree({
      'packages/b/2.yaml': 'b: 2\n',
      'packages/a.yml': 'a: 1\n---\na: 2\n',
      'packages/README.md': '# not YAML\n',
      'config/ignored.yml': 'c: 1\n',
    });
    assert.deepEqual(await readRepositoryDocuments(dir), {
      ok: true,
      documents: [{ a: 1 }, { a: 2 }, { b: 2 }],
      sources: [
        'packages/a.yml (document 1)',
        'packages/a.yml (document 2)',
        'packages/b/2.yaml (document 1)',
      ],
    });
  });

  it("fails with kapp-controller's message when there is no packages/ directory", async () => {
    assert.deepEqual(await readRepositoryDocuments(tree({ 'config/a.yml': 'a: 1\n' })), {
      ok: false,
      message: MISSING_PACKAGES_DIRECTORY,
    });
    assert.deepEqual(await readRepositoryDocuments(tree({ packages: 'a file, not a directory' })), {
      ok: false,
      message: MISSING_PACKAGES_DIRECTORY,
    });
  });

  it('names the file and document of a YAML syntax error', async () => {
    const result = await readRepositoryDocuments(tree({ 'packages/bad.yml': 'a: 1\n---\na: [1\n' }));
    assert.equal(result.ok, false);
    assert.match(
      result.ok ? '' : result.message,
      /^Invalid package repository content: packages\/bad\.yml \(document 2\): /,
    );
  });

  it('does not follow symbolic links', async () => {
    const outside = tree({ 'secret.yml': 'leaked: true\n' });
    const dir = tree({ 'packages/a.yml': 'a: 1\n' });
    symlinkSync(join(outside, 'secret.yml'), join(dir, 'packages', 'link.yml'));
    const result = await readRepositoryDocuments(dir);
    assert.deepEqual(result.ok && result.documents, [{ a: 1 }]);
  });
});

/** A file of `bytes` that takes no disk space: reading it would be slow (or impossible), stat is instant. */
function sparse(dir: string, path: string, bytes: number): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), '');
  truncateSync(join(dir, path), bytes);
}

/** Longest gap between 5 ms timer ticks while `work` runs: how long the event loop was blocked. */
async function longestEventLoopStall<T>(work: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  try {
    const result = await work();
    return { result, stallMs };
  } finally {
    clearInterval(timer);
  }
}

const messageOf = (result: Awaited<ReturnType<typeof readRepositoryDocuments>>): string =>
  result.ok ? '(ok)' : result.message;

describe('readRepositoryDocuments limits', () => {
  it('rejects an 8 MiB packages file by its size, naming the file and the 1 MiB cap', async () => {
    const dir = tree({ 'packages/a.yml': 'a: 1\n' });
    sparse(dir, 'packages/big.yml', 8 * 1024 * 1024);
    assert.deepEqual(await readRepositoryDocuments(dir), {
      ok: false,
      message:
        'Invalid package repository content: packages/big.yml is 8 MiB, more than the limit of 1 MiB per file',
    });
  });

  it('never reads an over-size file: a 64 GiB file is rejected at once', async () => {
    const dir = tree({});
    sparse(dir, 'packages/huge.yaml', 64 * 1024 ** 3);
    const started = performance.now();
    const result = await readRepositoryDocuments(dir);
    assert.equal(
      messageOf(result),
      'Invalid package repository content: packages/huge.yaml is 64 GiB, more than the limit of 1 MiB per file',
    );
    assert.ok(performance.now() - started < 2000);
  });

  it('rejects files that are each small enough but too big together, before reading any', async () => {
    const dir = tree({});
    for (let i = 0; i < 9; i++) sparse(dir, `packages/p${i}.yml`, 1024 * 1024);
    assert.equal(
      messageOf(await readRepositoryDocuments(dir)),
      'Invalid package repository content: the YAML files under packages/ hold 9 MiB, more than the limit of 8 MiB in total',
    );
  });

  it('rejects more YAML documents than the cap, counted before parsing', async () => {
    const dir = tree({ 'packages/a.yml': 'a: 1\n', 'packages/b.yml': '---\nb: 1\n---\nb: 2\n---\nb: 3\n' });
    assert.equal(
      messageOf(await readRepositoryDocuments(dir, { limits: { documents: 3 } })),
      'Invalid package repository content: packages/ holds more than 3 YAML documents (the limit), counting up to packages/b.yml',
    );
    assert.equal((await readRepositoryDocuments(dir, { limits: { documents: 4 } })).ok, true);
  });

  it('rejects a packages/ tree with more entries than the cap', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 6; i++) files[`packages/d/${i}.txt`] = '';
    assert.equal(
      messageOf(await readRepositoryDocuments(tree(files), { limits: { entries: 5 } })),
      'Invalid package repository content: packages/ has more than 5 files and directories (the limit)',
    );
  });

  it('rejects an alias expansion bomb, naming the document and the alias cap', async () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
    ].join('\n');
    assert.match(
      messageOf(await readRepositoryDocuments(tree({ 'packages/bomb.yml': `ok: 1\n---\n${bomb}\n` }))),
      /^Invalid package repository content: packages\/bomb\.yml \(document 2\): .*alias.* \(at most 100 alias expansions per document\)$/,
    );
    // A few aliases are fine.
    assert.deepEqual(await readRepositoryDocuments(tree({ 'packages/a.yml': 'a: &x {k: v}\nb: *x\n' })), {
      ok: true,
      documents: [{ a: { k: 'v' }, b: { k: 'v' } }],
      sources: ['packages/a.yml (document 1)'],
    });
  });

  it('rejects a document nested deeper than the cap', async () => {
    const deep = `${'['.repeat(120)}1${']'.repeat(120)}\n`;
    assert.equal(
      messageOf(await readRepositoryDocuments(tree({ 'packages/deep.yml': deep }))),
      'Invalid package repository content: packages/deep.yml (document 1): nested more than 100 levels deep (the limit)',
    );
  });

  it('parses off the event loop, and a file that needs more than the parser heap is rejected, not the process', async () => {
    // ~1 MiB of tiny flow items: hundreds of MiB of parser nodes, seconds of CPU.
    const dir = tree({ 'packages/a.yml': 'a: 1\n', 'packages/nodes.yml': `a: [${'1,'.repeat(500_000)}]\n` });
    const { result, stallMs } = await longestEventLoopStall(() =>
      readRepositoryDocuments(dir, { limits: { parserHeapMb: 32 } }),
    );
    assert.equal(
      messageOf(result),
      "Invalid package repository content: parsing packages/nodes.yml needs more than the parser's memory limit of 32 MiB; split or simplify the file",
    );
    // Parsing this on the main thread blocks for seconds; the bound leaves room for a loaded CI machine.
    assert.ok(stallMs < 1000, `event loop blocked for ${Math.round(stallMs)} ms`);
  });

  it('stops a parse that takes longer than the time limit', async () => {
    const dir = tree({ 'packages/slow.yml': `a: [${'1,'.repeat(200_000)}]\n` });
    assert.equal(
      messageOf(await readRepositoryDocuments(dir, { limits: { parseTimeMs: 50 } })),
      'Invalid package repository content: parsing packages/ took longer than the limit of 0.05 s (stopped in packages/slow.yml)',
    );
  });

  it('serves callers one at a time and every one gets its own answer', async () => {
    const dirs = ['x', 'y', 'z'].map((v) => tree({ 'packages/a.yml': `v: ${v}\n` }));
    const results = await Promise.all(
      dirs.map((dir, i) => readRepositoryDocuments(dir, { owner: i === 2 ? 'other' : 'ns' })),
    );
    assert.deepEqual(
      results.map((r) => r.ok && r.documents),
      [[{ v: 'x' }], [{ v: 'y' }], [{ v: 'z' }]],
    );
  });
});

describe('countDocumentsUpperBound', () => {
  const cases: Array<[string, string, number]> = [
    ['empty text', '', 1],
    ['one document without a marker', 'a: 1\n', 1],
    ['a leading marker', '---\na: 1\n', 1],
    ['comments, blank lines and a directive before the first marker', '# c\n\n%YAML 1.2\n---\na: 1\n', 1],
    ['content before the first marker', 'a: 1\n---\nb: 2\n', 2],
    ['markers with content after them', '--- a\n--- |\n  x\n---\n', 3],
    ['a marker without a newline at the end', 'a: 1\n---', 2],
    ['CRLF line ends', 'a: 1\r\n---\r\nb: 2\r\n', 2],
    ['not markers: indented, longer, inside a line', '  ---\n----\na: ---\n', 1],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => assert.equal(countDocumentsUpperBound(text), expected));
  }
});

describe('formatBytes', () => {
  const cases: Array<[number, string]> = [
    [12, '12 bytes'],
    [1536, '1.5 KiB'],
    [1024 * 1024, '1 MiB'],
    [8 * 1024 * 1024 + 1, '8 MiB'],
    [64 * 1024 ** 3, '64 GiB'],
  ];
  for (const [bytes, text] of cases) it(`${bytes} → ${text}`, () => assert.equal(formatBytes(bytes), text));
});
