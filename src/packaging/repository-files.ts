// Reading a fetched package repository: the YAML documents of every
// `*.yml` / `*.yaml` file under `packages/`, in path order. What they may
// contain is decided by processRepositoryContent (repository-content.ts).
//
// A repository is tenant input, so reading it is bounded: sizes and document
// counts are checked before anything is parsed (an over-size file is never
// read), and parsing runs in a worker thread with its own heap limit and a
// deadline, one repository at a time, so a hostile file costs the operator
// neither its memory nor its event loop. The caps fit the Deployment's 384 Mi
// memory limit: at most one parser heap of PARSER_HEAP_MB beside the main
// process, and at most MAX_PACKAGES_TOTAL_BYTES of text plus its documents.

import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { FairLimiter } from '../runtime/fair-limiter.js';

export const MISSING_PACKAGES_DIRECTORY =
  "Invalid package repository content: must contain 'packages/' directory but did not";

const INVALID = 'Invalid package repository content';

/** Bytes one YAML file under packages/ may hold (real Package files are a few KiB to a few 100 KiB). */
export const MAX_PACKAGES_FILE_BYTES = 1024 * 1024;
/** Bytes all YAML files under packages/ may hold together. */
export const MAX_PACKAGES_TOTAL_BYTES = 8 * 1024 * 1024;
/** YAML documents under packages/, counted from `---` lines before parsing. */
export const MAX_PACKAGES_DOCUMENTS = 5000;
/** Directory entries (files and directories of any kind) walked under packages/. */
export const MAX_PACKAGES_ENTRIES = 10_000;
/** Alias nodes one document may expand (`&a` … `*a`); bounds "billion laughs" expansion. */
export const MAX_YAML_ALIASES = 100;
/** Nesting depth of one document's value (maps and lists). */
export const MAX_YAML_DEPTH = 100;
/** Heap of the parser worker (old generation); a file that needs more is rejected. */
export const PARSER_HEAP_MB = 96;
/** Wall-clock time parsing one repository may take. */
export const PARSE_TIME_LIMIT_MS = 20_000;

export interface RepositoryReadLimits {
  fileBytes: number;
  totalBytes: number;
  documents: number;
  entries: number;
  aliases: number;
  depth: number;
  parserHeapMb: number;
  parseTimeMs: number;
}

export const DEFAULT_REPOSITORY_READ_LIMITS: Readonly<RepositoryReadLimits> = {
  fileBytes: MAX_PACKAGES_FILE_BYTES,
  totalBytes: MAX_PACKAGES_TOTAL_BYTES,
  documents: MAX_PACKAGES_DOCUMENTS,
  entries: MAX_PACKAGES_ENTRIES,
  aliases: MAX_YAML_ALIASES,
  depth: MAX_YAML_DEPTH,
  parserHeapMb: PARSER_HEAP_MB,
  parseTimeMs: PARSE_TIME_LIMIT_MS,
};

export type RepositoryDocuments =
  /** `sources[i]` names document i, e.g. `packages/a.yml (document 2)`. */
  { ok: true; documents: unknown[]; sources: string[] } | { ok: false; message: string };

const YAML_FILE = /\.ya?ml$/i;

/** 1048576 → "1 MiB", 1536 → "1.5 KiB", 12 → "12 bytes". */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}

interface YamlFile {
  path: string;
  size: number;
}

class LimitExceeded extends Error {}

/** The YAML files below `relative` (recursively), sorted by path; links are not followed. */
async function yamlFiles(
  root: string,
  relative: string,
  limits: RepositoryReadLimits,
  seen: { entries: number },
): Promise<YamlFile[]> {
  const out: YamlFile[] = [];
  const entries = await readdir(join(root, relative), { withFileTypes: true });
  seen.entries += entries.length;
  if (seen.entries > limits.entries) {
    throw new LimitExceeded(
      `${INVALID}: packages/ has more than ${limits.entries} files and directories (the limit)`,
    );
  }
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await yamlFiles(root, path, limits, seen)));
    else if (entry.isFile() && YAML_FILE.test(entry.name)) {
      out.push({ path, size: (await lstat(join(root, path))).size });
    }
  }
  return out;
}

/** Reads at most `limit` bytes of a regular file, never through a symbolic link; undefined when longer. */
export async function readBounded(path: string, limit: number): Promise<string | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > limit) return undefined;
    }
    return buffer.toString('utf8', 0, length);
  } finally {
    await handle.close();
  }
}

/**
 * How many YAML documents `text` can hold at most: one per line that starts
 * with the `---` marker (a marker at column 0 is never content), plus one when
 * something other than blank lines, comments and directives comes before the
 * first marker.
 */
export function countDocumentsUpperBound(text: string): number {
  let markers = 0;
  let contentBeforeFirstMarker = false;
  for (let start = 0; start < text.length;) {
    const newline = text.indexOf('\n', start);
    const end = newline === -1 ? text.length : newline;
    if (text.startsWith('---', start) && (start + 3 === end || ' \t\r'.includes(text.charAt(start + 3)))) {
      markers++;
    } else if (markers === 0 && !contentBeforeFirstMarker) {
      const line = text.slice(start, end).trim();
      contentBeforeFirstMarker = line !== '' && !line.startsWith('#') && !line.startsWith('%');
    }
    start = end + 1;
  }
  return markers + (contentBeforeFirstMarker || markers === 0 ? 1 : 0);
}

/** The documents of one file, or the problems found in it (one per document). */
interface ParsedFile {
  documents: unknown[];
  problems: string[];
}

type ParseJob = { file: string; text: string }[];

/**
 * Runs in the parser worker (as source text, so it must be self-contained:
 * `load` is the worker's require). Parses one file per message and answers
 * with its documents as plain values, or the problem of each bad document.
 */
function parserWorkerMain(
  load: (id: string) => unknown,
  yamlPath: string,
  aliases: number,
  depth: number,
): void {
  const { parentPort } = load('node:worker_threads') as typeof import('node:worker_threads');
  const yaml = load(yamlPath) as typeof import('yaml');
  const tooDeep = (root: unknown): boolean => {
    const stack: Array<[unknown, number]> = [[root, 1]];
    while (stack.length > 0) {
      const [value, level] = stack.pop() as [unknown, number];
      if (value === null || typeof value !== 'object') continue;
      if (level > depth) return true;
      for (const child of Object.values(value)) stack.push([child, level + 1]);
    }
    return false;
  };
  parentPort?.on('message', (message: { file: string; text: string }) => {
    const documents: unknown[] = [];
    const problems: string[] = [];
    for (const [index, doc] of yaml.parseAllDocuments(message.text).entries()) {
      const where = `${message.file} (document ${index + 1})`;
      const error = doc.errors[0];
      if (error) {
        problems.push(`${where}: ${error.message.split('\n')[0] ?? ''}`);
        continue;
      }
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: aliases });
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        const limit = /alias/i.test(reason) ? ` (at most ${aliases} alias expansions per document)` : '';
        problems.push(`${where}: ${reason}${limit}`);
        continue;
      }
      if (tooDeep(value)) {
        problems.push(`${where}: nested more than ${depth} levels deep (the limit)`);
        continue;
      }
      documents.push(value);
    }
    parentPort.postMessage({ documents, problems });
  });
}

const yamlModulePath = createRequire(import.meta.url).resolve('yaml');

/** Parses the files in a fresh worker with a bounded heap and a deadline; the worker ends with the job. */
function parseInWorker(
  job: ParseJob,
  limits: RepositoryReadLimits,
  invalid = INVALID,
  where = 'packages/',
): Promise<ParsedFile[] | string> {
  // A bundler may wrap functions with a `__name` helper (tsx does); give the worker a no-op one.
  const source =
    `var __name = (fn) => fn;\n(${parserWorkerMain.toString()})(require, ` +
    `${JSON.stringify(yamlModulePath)}, ${limits.aliases}, ${limits.depth});`;
  const worker = new Worker(source, {
    eval: true,
    resourceLimits: {
      maxOldGenerationSizeMb: limits.parserHeapMb,
      maxYoungGenerationSizeMb: Math.max(4, Math.min(16, Math.floor(limits.parserHeapMb / 4))),
      stackSizeMb: 4,
    },
  });
  return new Promise((resolve) => {
    const results: ParsedFile[] = [];
    let settled = false;
    const finish = (outcome: ParsedFile[] | string) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      void worker.terminate();
      resolve(outcome);
    };
    const current = () => job[results.length]?.file ?? where;
    const deadline = setTimeout(() => {
      finish(
        `${invalid}: parsing ${where} took longer than the limit of ${limits.parseTimeMs / 1000} s (stopped in ${current()})`,
      );
    }, limits.parseTimeMs);
    const next = () => {
      const item = job[results.length];
      if (item) worker.postMessage(item);
      else finish(results);
    };
    worker.on('message', (parsed: ParsedFile) => {
      results.push(parsed);
      next();
    });
    worker.on('error', (err: Error & { code?: string }) => {
      finish(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `${invalid}: parsing ${current()} needs more than the parser's memory limit of ${limits.parserHeapMb} MiB; split or simplify the file`
          : `${invalid}: parsing ${current()} failed: ${err.message}`,
      );
    });
    worker.on('exit', () => finish(`${invalid}: parsing ${current()} stopped unexpectedly`));
    next();
  });
}

// One parse at a time for the whole process (the parser's heap comes on top
// of the operator's, and the machine has few cores), fair across namespaces.
const parseSlot = new FairLimiter(1);

/**
 * The documents of `packages/**.{yml,yaml}` in a fetched repository. A missing
 * `packages/` directory, a YAML syntax error or input over one of `limits` is
 * an invalid repository, with a message naming the file and the limit.
 * `owner` (the repository's namespace) shares the one parser fairly.
 */
export async function readRepositoryDocuments(
  directory: string,
  options: { owner?: string; limits?: Partial<RepositoryReadLimits> } = {},
): Promise<RepositoryDocuments> {
  const limits: RepositoryReadLimits = { ...DEFAULT_REPOSITORY_READ_LIMITS, ...options.limits };
  const packages = await lstat(join(directory, 'packages')).catch(() => undefined);
  if (!packages?.isDirectory()) return { ok: false, message: MISSING_PACKAGES_DIRECTORY };

  let files: YamlFile[];
  try {
    files = await yamlFiles(directory, 'packages', limits, { entries: 0 });
  } catch (err) {
    if (err instanceof LimitExceeded) return { ok: false, message: err.message };
    throw err;
  }
  // Sizes first: nothing is read when any file, or all of them together, is too big.
  const oversized = files.find((f) => f.size > limits.fileBytes);
  if (oversized) {
    return {
      ok: false,
      message: `${INVALID}: ${oversized.path} is ${formatBytes(oversized.size)}, more than the limit of ${formatBytes(limits.fileBytes)} per file`,
    };
  }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total > limits.totalBytes) {
    return {
      ok: false,
      message: `${INVALID}: the YAML files under packages/ hold ${formatBytes(total)}, more than the limit of ${formatBytes(limits.totalBytes)} in total`,
    };
  }

  const job: ParseJob = [];
  let documents = 0;
  for (const file of files) {
    const text = await readBounded(join(directory, file.path), limits.fileBytes);
    if (text === undefined) {
      return {
        ok: false,
        message: `${INVALID}: ${file.path} is more than the limit of ${formatBytes(limits.fileBytes)} per file`,
      };
    }
    documents += countDocumentsUpperBound(text);
    if (documents > limits.documents) {
      return {
        ok: false,
        message: `${INVALID}: packages/ holds more than ${limits.documents} YAML documents (the limit), counting up to ${file.path}`,
      };
    }
    job.push({ file: file.path, text });
  }
  if (job.length === 0) return { ok: true, documents: [], sources: [] };

  const parsed = await parseSlot.run(options.owner ?? '', () => parseInWorker(job, limits));
  if (typeof parsed === 'string') return { ok: false, message: parsed };
  const out: unknown[] = [];
  const sources: string[] = [];
  const problems: string[] = [];
  parsed.forEach((result, i) => {
    problems.push(...result.problems);
    result.documents.forEach((doc, index) => {
      out.push(doc);
      sources.push(`${job[i]?.file ?? ''} (document ${index + 1})`);
    });
  });
  if (problems.length > 0) return { ok: false, message: `${INVALID}: ${problems.join('\n')}` };
  return { ok: true, documents: out, sources };
}

/**
 * The documents of one YAML file that is not part of `packages/` (a bundle's
 * `.imgpkg/images.yml`), parsed like them: in the shared parser worker with
 * its heap, time, alias and depth limits, fair by `owner`. The caller bounds
 * the text's size. Failures are "<file> (document N): <reason>" or the
 * worker's limit, prefixed with `invalid`.
 */
export async function parseYamlFile(
  file: string,
  text: string,
  options: { owner?: string; invalid: string },
): Promise<{ ok: true; documents: unknown[] } | { ok: false; message: string }> {
  const limits = DEFAULT_REPOSITORY_READ_LIMITS;
  const parsed = await parseSlot.run(options.owner ?? '', () =>
    parseInWorker([{ file, text }], limits, options.invalid, file),
  );
  if (typeof parsed === 'string') return { ok: false, message: parsed };
  const problems = parsed.flatMap((p) => p.problems);
  if (problems.length > 0) return { ok: false, message: `${options.invalid}: ${problems.join('\n')}` };
  return { ok: true, documents: parsed.flatMap((p) => p.documents) };
}
