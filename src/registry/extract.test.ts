import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import { pack, type Header } from 'tar-stream';

import {
  diskBlocks,
  ExtractError,
  LayerExtractor,
  safePathComponents,
  type ExtractLimits,
} from './extract.js';

type Entry = Partial<Header> & { name: string; body?: string | Buffer };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const archive = pack();
  for (const { body, ...header } of entries) {
    const data = body === undefined ? undefined : Buffer.from(body);
    if (data) archive.entry({ ...header, size: data.length }, data);
    else archive.entry(header);
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every path below `dir` with file contents ('<dir>' for directories). */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const stat = lstatSync(path);
      const key = relative(dir, path);
      if (stat.isDirectory()) {
        out[key] = '<dir>';
        walk(path);
      } else if (stat.isSymbolicLink()) out[key] = '<symlink>';
      else out[key] = readFileSync(path, 'utf8');
    }
  };
  walk(dir);
  return out;
}

let work: string;
let outside: string;
let root: string;
let counter = 0;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'regcred-extract-'));
});
after(() => rmSync(work, { recursive: true, force: true }));
beforeEach(() => {
  counter++;
  outside = join(work, `case-${counter}`);
  root = join(outside, 'root');
  mkdirSync(root, { recursive: true });
});

async function layerFile(content: Buffer): Promise<string> {
  const path = join(work, `layer-${counter}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, content);
  return path;
}

async function extractLayers(layers: Buffer[], limits: Partial<ExtractLimits> = {}) {
  const extractor = new LayerExtractor(root, limits);
  for (const layer of layers) await extractor.extractFile(await layerFile(layer));
  return extractor.summary;
}

async function rejects(layers: Buffer[], code: string, message: RegExp, limits: Partial<ExtractLimits> = {}) {
  await assert.rejects(extractLayers(layers, limits), (err: unknown) => {
    assert.ok(err instanceof ExtractError, `expected ExtractError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('LayerExtractor', () => {
  it('extracts files and directories from a gzip layer and an uncompressed one', async () => {
    const first = gzipSync(
      await tarOf([
        { name: 'config/', type: 'directory' },
        { name: 'config/app.yml', body: 'a: 1\n' },
        { name: './.imgpkg/images.yml', body: 'kind: ImagesLock\n' },
      ]),
    );
    const second = await tarOf([{ name: 'packages/p/1.0.0.yml', body: 'v: 1\n' }]);
    const summary = await extractLayers([first, second]);
    assert.deepEqual(tree(root), {
      '.imgpkg': '<dir>',
      '.imgpkg/images.yml': 'kind: ImagesLock\n',
      config: '<dir>',
      'config/app.yml': 'a: 1\n',
      packages: '<dir>',
      'packages/p': '<dir>',
      'packages/p/1.0.0.yml': 'v: 1\n',
    });
    assert.equal(summary.files, 3);
    assert.equal(summary.directories, 1);
    assert.equal(summary.bytes, 5 + 17 + 5);
    assert.deepEqual(summary.skipped, []);
  });

  it('keeps execute bits, drops setuid and group/other write', async () => {
    await extractLayers([
      await tarOf([
        { name: 'run.sh', body: '#!/bin/sh\n', mode: 0o4777 },
        { name: 'data', body: 'x', mode: 0o666 },
        { name: 'private', body: 'x', mode: 0o400 },
      ]),
    ]);
    assert.equal(statSync(join(root, 'run.sh')).mode & 0o7777, 0o755);
    assert.equal(statSync(join(root, 'data')).mode & 0o7777, 0o644);
    assert.equal(statSync(join(root, 'private')).mode & 0o7777, 0o600);
  });

  it('reads archives written by GNU tar, with long names', async (t) => {
    try {
      execFileSync('tar', ['--version'], { stdio: 'ignore' });
    } catch {
      t.skip('no tar binary');
      return;
    }
    const src = join(outside, 'src');
    const longDir = 'd'.repeat(120);
    mkdirSync(join(src, longDir), { recursive: true });
    writeFileSync(join(src, longDir, 'f.txt'), 'long');
    writeFileSync(join(src, 'top.txt'), 'top');
    const archive = join(outside, 'layer.tgz');
    execFileSync('tar', ['-czf', archive, '-C', src, '.']);
    await new LayerExtractor(root).extractFile(archive);
    assert.deepEqual(tree(root), { [longDir]: '<dir>', [`${longDir}/f.txt`]: 'long', 'top.txt': 'top' });
  });

  const unsafe: Array<{ name: string; entry: Entry; message: RegExp }> = [
    {
      name: 'a ../ entry',
      entry: { name: '../evil', body: 'x' },
      message: /unsafe path "\.\.\/evil".*'\.\.'/,
    },
    { name: 'a nested .. entry', entry: { name: 'a/../../evil', body: 'x' }, message: /'\.\.'/ },
    { name: 'an absolute entry', entry: { name: '/tmp/evil', body: 'x' }, message: /absolute path/ },
    { name: 'a drive-letter entry', entry: { name: 'C:evil', body: 'x' }, message: /drive-letter/ },
    { name: 'a backslash entry', entry: { name: '..\\evil', body: 'x' }, message: /backslash/ },
    { name: 'a ../ directory', entry: { name: '../evil/', type: 'directory' }, message: /'\.\.'/ },
    { name: 'a ../ symlink', entry: { name: '../evil', type: 'symlink', linkname: 'x' }, message: /'\.\.'/ },
    { name: 'a whiteout of ..', entry: { name: 'a/.wh...', body: '' }, message: /invalid whiteout/ },
  ];
  for (const { name, entry, message } of unsafe) {
    it(`rejects ${name} and writes nothing outside the target`, async () => {
      await rejects([await tarOf([{ name: 'ok.txt', body: 'ok' }, entry])], 'UNSAFE_PATH', message);
      assert.deepEqual(readdirSync(outside), ['root']);
    });
  }

  it('skips symbolic and hard links and reports them', async () => {
    const summary = await extractLayers([
      await tarOf([
        { name: 'target.txt', body: 't' },
        { name: 'abs', type: 'symlink', linkname: '/etc/passwd' },
        { name: 'up', type: 'symlink', linkname: '../../..' },
        { name: 'hard', type: 'link', linkname: 'target.txt' },
        { name: 'up/through-link.txt', body: 'stays inside' },
      ]),
    ]);
    assert.deepEqual(tree(root), {
      'target.txt': 't',
      up: '<dir>',
      'up/through-link.txt': 'stays inside',
    });
    assert.deepEqual(summary.skipped, [
      { path: 'abs', type: 'symlink', reason: 'links are not extracted' },
      { path: 'up', type: 'symlink', reason: 'links are not extracted' },
      { path: 'hard', type: 'link', reason: 'links are not extracted' },
    ]);
    assert.deepEqual(readdirSync(outside), ['root']);
  });

  it('never writes through a symbolic link already present in the target', async () => {
    const victim = join(outside, 'victim');
    mkdirSync(victim);
    symlinkSync(victim, join(root, 'sub'));
    symlinkSync(join(victim, 'file'), join(root, 'file'));
    await extractLayers([
      await tarOf([
        { name: 'sub/inner.txt', body: 'inside' },
        { name: 'file', body: 'replaced' },
      ]),
    ]);
    assert.deepEqual(readdirSync(victim), []);
    assert.deepEqual(tree(root), { file: 'replaced', sub: '<dir>', 'sub/inner.txt': 'inside' });
  });

  it('skips device files and FIFOs', async () => {
    const summary = await extractLayers([
      await tarOf([
        { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
        { name: 'pipe', type: 'fifo' },
      ]),
    ]);
    assert.deepEqual(tree(root), {});
    assert.deepEqual(
      summary.skipped.map((s) => s.type),
      ['character-device', 'fifo'],
    );
  });

  it('applies whiteouts and opaque directories from later layers only', async () => {
    const lower = await tarOf([
      { name: 'a.txt', body: 'a' },
      { name: 'keep.txt', body: 'k' },
      { name: 'd/x', body: 'x' },
      { name: 'd/sub/y', body: 'y' },
      { name: 'gone/z', body: 'z' },
    ]);
    const upper = await tarOf([
      { name: 'd/new', body: 'n' },
      { name: '.wh.a.txt', body: '' },
      { name: 'd/.wh..wh..opq', body: '' },
      { name: '.wh.gone', body: '' },
      { name: 'fresh', body: 'f' },
      { name: '.wh.fresh', body: '' },
      { name: '.wh.never-existed', body: '' },
    ]);
    await extractLayers([lower, upper]);
    assert.deepEqual(tree(root), { d: '<dir>', 'd/new': 'n', fresh: 'f', 'keep.txt': 'k' });
  });

  it('lets a later layer replace a file with a directory and a directory with a file', async () => {
    await extractLayers([
      await tarOf([
        { name: 'x', body: 'file' },
        { name: 'y/inner', body: 'i' },
      ]),
      await tarOf([
        { name: 'x/now-dir', body: 'd' },
        { name: 'y', body: 'now a file' },
      ]),
    ]);
    assert.deepEqual(tree(root), { x: '<dir>', 'x/now-dir': 'd', y: 'now a file' });
  });

  it('enforces the entry limit', async () => {
    const entries = Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, body: '' }));
    await rejects([await tarOf(entries)], 'LIMIT_EXCEEDED', /more than 4 entries \(maxFiles\)/, {
      maxFiles: 4,
    });
  });

  it('enforces the single-file limit before writing', async () => {
    await rejects(
      [await tarOf([{ name: 'big', body: Buffer.alloc(2000) }])],
      'LIMIT_EXCEEDED',
      /file "big" is 2000 bytes, over the limit of 1000 \(maxFileBytes\)/,
      { maxFileBytes: 1000 },
    );
    assert.equal(existsSync(join(root, 'big')), false);
  });

  it('enforces the total size limit across layers', async () => {
    const layer = await tarOf([{ name: 'f', body: Buffer.alloc(600) }]);
    const other = await tarOf([{ name: 'g', body: Buffer.alloc(600) }]);
    await rejects([layer, other], 'LIMIT_EXCEEDED', /more than 1000 bytes \(maxTotalBytes\)/, {
      maxTotalBytes: 1000,
    });
  });

  it('counts disk in whole 4 KiB blocks: many empty files stop at maxDiskBytes', async () => {
    // 100 empty files are 0 bytes of content but 100 blocks of disk.
    const entries = Array.from({ length: 100 }, (_, i) => ({ name: `f${i}`, body: '' }));
    await rejects(
      [await tarOf(entries)],
      'LIMIT_EXCEEDED',
      /extracting needs more than the 204800 bytes of disk this fetch may use \(maxDiskBytes; 204800 bytes extracted\)/,
      { maxDiskBytes: 50 * 4096 },
    );
    assert.equal(readdirSync(root).length, 50);
  });

  it('counts the reserved blob bytes and the directories against maxDiskBytes', async () => {
    const layer = await tarOf([
      { name: 'd/', type: 'directory' },
      { name: 'd/f', body: Buffer.alloc(5000) },
    ]);
    const extractor = new LayerExtractor(root, { maxDiskBytes: 4 * 4096 });
    await assert.rejects(
      extractor.extractFile(await layerFile(layer), { reservedBytes: 2 * 4096 }),
      /needs more than the 16384 bytes .*4096 bytes extracted, 8192 bytes of layer blob/,
    );
    const fits = new LayerExtractor(join(outside, 'root'), { maxDiskBytes: 5 * 4096 });
    rmSync(root, { recursive: true });
    mkdirSync(root);
    await fits.extractFile(await layerFile(layer), { reservedBytes: 2 * 4096 });
    assert.equal(fits.summary.diskBytes, diskBlocks(0) + diskBlocks(5000));
  });

  it('stops between entries once its signal aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('fetch timed out after 5m0s (--fetch-timeout)'));
    await assert.rejects(
      new LayerExtractor(root).extractFile(await layerFile(await tarOf([{ name: 'f', body: 'x' }])), {
        signal: controller.signal,
      }),
      /--fetch-timeout/,
    );
    assert.deepEqual(readdirSync(root), []);
  });

  it('stops a gzip bomb at the uncompressed archive limit', async () => {
    const bomb = gzipSync(await tarOf([{ name: 'zeros', body: Buffer.alloc(8 * 1024 * 1024) }]));
    assert.ok(bomb.length < 64 * 1024);
    await rejects([bomb], 'LIMIT_EXCEEDED', /maxArchiveBytes/, { maxArchiveBytes: 1024 * 1024 });
  });

  it('rejects corrupt gzip, truncated tar and zstd layers with clear codes', async () => {
    const good = gzipSync(await tarOf([{ name: 'f', body: 'x'.repeat(5000) }]));
    const corrupt = Buffer.from(good);
    corrupt.fill(0x55, 20, 60);
    await rejects([corrupt], 'INVALID_LAYER', /not valid gzip/);
    const truncated = (await tarOf([{ name: 'f', body: 'x'.repeat(5000) }])).subarray(0, 1024);
    await rejects([truncated], 'INVALID_LAYER', /not a valid tar archive/);
    const zstd = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(100)]);
    await rejects([zstd], 'UNSUPPORTED_COMPRESSION', /zstd/);
  });
});

describe('safePathComponents', () => {
  it('drops ./ and empty components', () => {
    assert.deepEqual(safePathComponents('./a//b/./c/'), ['a', 'b', 'c']);
    assert.deepEqual(safePathComponents('./'), []);
  });
  it('allows names that merely contain dots', () => {
    assert.deepEqual(safePathComponents('a/..b/c..'), ['a', '..b', 'c..']);
  });
});
