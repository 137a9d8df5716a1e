// The documentation stays true to the code: every Event reason and condition
// reason the operator can write is explained in docs/troubleshooting.md,
// every flag of `--help` in docs/configuration.md, and no page links to a
// file that does not exist in the repository or to anything outside it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/config.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DOCS = join(ROOT, 'docs');
/**
 * Pages written together with the features they document (RegistryToken,
 * cloud credentials, ImagePullSecretPolicy); linked already, so a link to one
 * of them may dangle until that feature is merged. Empty this list then.
 */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** The arguments of the call whose `(` is at `open`, split at top-level commas (strings and nesting skipped). */
function callArguments(text: string, open: number): string[] {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === '\\') i++;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      if (depth === 0) {
        args.push(text.slice(start, i).trim());
        return args;
      }
      depth--;
    } else if (c === ',' && depth === 0) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  return args;
}

/**
 * Every reason the operator can put in an Event or a condition: string
 * literals and constants passed as the reason of `events.event(...)`, of
 * `outcomes.report(...)` and of `reportFailure(...)`, and `reason: 'X'` /
 * `reason = 'X'` / `Reason = X` in src.
 */
function reasonsInSource(): Map<string, string> {
  const files = sourceFiles(join(ROOT, 'src'));
  const texts = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));
  const constants = new Map<string, string>();
  for (const text of texts.values())
    for (const m of text.matchAll(/\bconst ([A-Z][A-Z0-9_]+) = '([A-Z][A-Za-z]+)'/g))
      constants.set(m[1]!, m[2]!);
  const reasons = new Map<string, string>();
  const add = (token: string | undefined, where: string) => {
    if (!token) return;
    const literal = /^'([A-Z][A-Za-z]+)'$/.exec(token)?.[1] ?? constants.get(token);
    if (literal) reasons.set(literal, where);
  };
  for (const [file, text] of texts) {
    const where = relative(ROOT, file);
    for (const m of text.matchAll(/\.event\(/g))
      add(callArguments(text, m.index + m[0].length - 1)[2], where);
    for (const m of text.matchAll(/\boutcomes\.report\(/g))
      add(callArguments(text, m.index + m[0].length - 1)[4], where);
    for (const m of text.matchAll(/\breportFailure\(/g)) {
      const args = callArguments(text, m.index + m[0].length - 1);
      add(args[args.length - 1], where);
    }
    for (const m of text.matchAll(
      /\b[rR]eason(?:: string)?(?::| =) ('[A-Z][A-Za-z]+'|[A-Z][A-Z0-9_]+(?!\w))/g,
    ))
      add(m[1], where);
    // Functions that compute a reason, such as the import controller's failureReason().
    for (const m of text.matchAll(/\nfunction \w*Reason\w*\([\s\S]*?\n\}/g))
      for (const r of m[0].matchAll(/return ('[A-Z][A-Za-z]+')/g)) add(r[1], where);
    // A local helper taking (items, reason, text), as the placeholder controller's report().
    for (const m of text.matchAll(/\breport\(\s*[\w.]+,\s*('[A-Z][A-Za-z]+')/g)) add(m[1], where);
  }
  return reasons;
}

describe('docs/troubleshooting.md', () => {
  const page = readFileSync(join(DOCS, 'troubleshooting.md'), 'utf8');
  const reasons = reasonsInSource();

  test('the reasons found in the code include the known ones (the scan works)', () => {
    for (const known of [
      'ReconcileFailed',
      'ReconcileSucceeded',
      'DeleteFailed',
      'PlaceholderTooLarge',
      'PlaceholderWrongType',
      'RegistryConflict',
      'SourceSkipped',
      'PlaceholderAnnotationIgnored',
      'InvalidConfiguration',
      'FetchSecretNotApplicable',
      'NoMatchingExport',
    ])
      assert.ok(reasons.has(known), `${known} not found; found ${[...reasons.keys()].join(', ')}`);
  });

  test('every Event and condition reason of the code is explained', () => {
    const missing = [...reasons].filter(([reason]) => !page.includes(`\`${reason}\``));
    assert.deepEqual(
      missing.map(([reason, where]) => `${reason} (${where})`),
      [],
      'add a row for each to docs/troubleshooting.md, written as `Reason`',
    );
  });
});

describe('docs/configuration.md', () => {
  const page = readFileSync(join(DOCS, 'configuration.md'), 'utf8');

  test('every flag of --help is documented', () => {
    const help = parseConfig(['--help'], {});
    assert.ok('help' in help);
    const flags = [...new Set([...help.help.matchAll(/--[a-z][a-z0-9-]*/g)].map((m) => m[0]))];
    assert.ok(flags.length >= 20, `only ${flags.length} flags found in --help`);
    const missing = flags.filter((flag) => !page.includes(`\`${flag}`));
    assert.deepEqual(missing, [], 'add a row for each to docs/configuration.md');
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.+)$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Markdown links `[text](target)` outside code blocks and code spans. */
function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

describe('links in README.md and docs/', () => {
  const pages = [
    join(ROOT, 'README.md'),
    ...readdirSync(DOCS)
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(DOCS, f)),
  ];

  test('docs/ has the pages README.md links to', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = /^## Documentation\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
    assert.ok(section, 'README.md has a "## Documentation" section');
    for (const f of readdirSync(DOCS).filter((f) => f.endsWith('.md')))
      assert.ok(
        section.includes(`](docs/${f})`),
        `README.md's Documentation section does not list docs/${f}`,
      );
  });

  for (const page of pages) {
    const name = relative(ROOT, page);
    test(`${name}: every link resolves to a file of the repository (and a heading in it)`, () => {
      const text = readFileSync(page, 'utf8');
      const problems: string[] = [];
      for (const link of linksOf(text)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) {
          // Users only have the repository: the docs never send them elsewhere.
          if (name.startsWith('docs')) problems.push(`${link}: points outside the repository`);
          continue;
        }
        const [path, anchor] = link.split('#') as [string, string | undefined];
        const target = path === '' ? page : resolve(dirname(page), path);
        if (path.startsWith('/') || relative(ROOT, target).startsWith('..')) {
          problems.push(`${link}: points outside the repository`);
          continue;
        }
        if (!existsSync(target)) {
          problems.push(`${link}: ${relative(ROOT, target)} does not exist`);
          continue;
        }
        if (anchor && statSync(target).isFile() && target.endsWith('.md')) {
          if (!anchorsOf(readFileSync(target, 'utf8')).has(anchor))
            problems.push(`${link}: no heading #${anchor} in ${relative(ROOT, target)}`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }

  test('no page names a path on the machine the docs were written on, or a document users do not have', () => {
    for (const page of pages) {
      const text = readFileSync(page, 'utf8');
      assert.doesNotMatch(text, /\/work\/|\.\.\/shared|\bthe spec\b|spec's/i, relative(ROOT, page));
    }
  });
});
