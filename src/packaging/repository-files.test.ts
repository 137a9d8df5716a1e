import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MISSING_PACKAGES_DIRECTORY, readRepositoryDocuments } from './repository-files.js';

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

  it("fails with the spec's message when there is no packages/ directory", async () => {
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
