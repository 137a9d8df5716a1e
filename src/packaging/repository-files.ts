// Reading a fetched package repository: the YAML documents of every
// `*.yml` / `*.yaml` file under `packages/`, in path order. What they may
// contain is decided by processRepositoryContent (repository-content.ts).

import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const MISSING_PACKAGES_DIRECTORY =
  "Invalid package repository content: must contain 'packages/' directory but did not";

export type RepositoryDocuments =
  /** `sources[i]` names document i, e.g. `packages/a.yml (document 2)`. */
  { ok: true; documents: unknown[]; sources: string[] } | { ok: false; message: string };

const YAML_FILE = /\.ya?ml$/i;

/** Relative paths of the YAML files below `dir` (recursively), sorted; links are not followed. */
async function yamlFiles(root: string, relative: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(join(root, relative), { withFileTypes: true });
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await yamlFiles(root, path)));
    else if (entry.isFile() && YAML_FILE.test(entry.name)) out.push(path);
  }
  return out;
}

/**
 * The documents of `packages/**.{yml,yaml}` in a fetched repository. A missing
 * `packages/` directory or a YAML syntax error is an invalid repository.
 */
export async function readRepositoryDocuments(directory: string): Promise<RepositoryDocuments> {
  const packages = await lstat(join(directory, 'packages')).catch(() => undefined);
  if (!packages?.isDirectory()) return { ok: false, message: MISSING_PACKAGES_DIRECTORY };
  const documents: unknown[] = [];
  const sources: string[] = [];
  const problems: string[] = [];
  for (const file of await yamlFiles(directory, 'packages')) {
    const text = await readFile(join(directory, file), 'utf8');
    for (const [index, doc] of parseAllDocuments(text).entries()) {
      const error = doc.errors[0];
      if (error) {
        problems.push(`${file} (document ${index + 1}): ${error.message.split('\n')[0]}`);
        continue;
      }
      documents.push(doc.toJS());
      sources.push(`${file} (document ${index + 1})`);
    }
  }
  if (problems.length > 0) {
    return { ok: false, message: `Invalid package repository content: ${problems.join('\n')}` };
  }
  return { ok: true, documents, sources };
}
