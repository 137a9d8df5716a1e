// Safe extraction of image layers (tar, gzip-compressed or not) into a
// directory. Layers are applied in order, as a container runtime would.
//
// Policy (the layer content is untrusted):
//   - Entry names are relative paths below the target: an absolute name, a
//     drive letter, a backslash or a `..` component rejects the layer with
//     UNSAFE_PATH; `./` and empty components are dropped.
//   - Symbolic and hard links are NOT extracted (like imgpkg, which skips
//     them "as a security feature"); they are reported in `skipped`. As the
//     extractor never creates a link, no write can be redirected outside the
//     target, and every write opens with O_NOFOLLOW|O_EXCL as a second guard.
//   - Device files and FIFOs are skipped and reported; unknown entry types
//     reject the layer.
//   - Whiteouts: `.wh.<name>` removes `<name>` left by earlier layers;
//     `.wh..wh..opq` empties its directory of earlier layers' content.
//   - Modes: directories 0755; files keep their owner/group/other read and
//     execute bits and are always owner read-write; no setuid/setgid/sticky,
//     no ownership, no timestamps.
//   - Limits (LIMIT_EXCEEDED): entries, single file size, total file bytes,
//     uncompressed archive bytes (which bounds gzip bombs and tar metadata
//     such as PAX headers), and disk space: every file and directory counts
//     whole 4 KiB blocks (at least one), never released by later layers, plus
//     what the caller reserves (the layer blob lying beside it), so the disk
//     a pull occupies stays below maxDiskBytes.

import { constants as fsConstants } from 'node:fs';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rm } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import { extract as tarExtract, type Header } from 'tar-stream';

export interface ExtractLimits {
  /** Entries of every kind (files, directories, links, whiteouts) across all layers. */
  maxFiles: number;
  /** Size of one regular file. */
  maxFileBytes: number;
  /** Sum of regular file sizes across all layers. */
  maxTotalBytes: number;
  /** Uncompressed tar bytes across all layers, headers and padding included. */
  maxArchiveBytes: number;
  /** Disk blocks of everything extracted, plus the caller's reservation (see extractFile). */
  maxDiskBytes: number;
}

const MiB = 1024 * 1024;
/**
 * One fetch's share of the default disk budget (1536 MiB over 8 concurrent
 * fetches, see fetch-limits.ts): the operator passes its own share per pull.
 */
export const DEFAULT_DISK_SHARE_BYTES = 192 * MiB;
export const DEFAULT_EXTRACT_LIMITS: Readonly<ExtractLimits> = Object.freeze({
  maxFiles: 50_000,
  maxFileBytes: 128 * MiB,
  maxTotalBytes: DEFAULT_DISK_SHARE_BYTES,
  maxArchiveBytes: 512 * MiB,
  maxDiskBytes: DEFAULT_DISK_SHARE_BYTES,
});

/** Filesystem block: a file or directory occupies whole blocks, at least one. */
export const DISK_BLOCK_BYTES = 4096;

/** Disk space `bytes` of content take, in whole blocks (at least one). */
export function diskBlocks(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / DISK_BLOCK_BYTES)) * DISK_BLOCK_BYTES;
}

export type ExtractErrorCode = 'UNSAFE_PATH' | 'LIMIT_EXCEEDED' | 'INVALID_LAYER' | 'UNSUPPORTED_COMPRESSION';

export class ExtractError extends Error {
  constructor(
    readonly code: ExtractErrorCode,
    message: string,
    readonly entry?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ExtractError';
  }
}

export interface SkippedEntry {
  path: string;
  type: string;
  reason: string;
}

export interface ExtractSummary {
  entries: number;
  files: number;
  directories: number;
  /** Bytes of regular files written. */
  bytes: number;
  /** Uncompressed tar bytes read. */
  archiveBytes: number;
  /** Disk blocks of the files and directories written (not released when a later layer removes them). */
  diskBytes: number;
  skipped: SkippedEntry[];
}

export interface ExtractOptions {
  /** Disk bytes held elsewhere while this layer is extracted (its blob), counted against maxDiskBytes. */
  reservedBytes?: number;
  /** Stops the extraction between entries (the fetch's deadline). */
  signal?: AbortSignal;
}

const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_WHITEOUT = '.wh..wh..opq';
const MAX_SKIPPED_REPORTED = 100;

/** Printable form of an untrusted entry name for messages. */
function shown(name: string): string {
  const text = JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
  return text;
}

/**
 * The path components of an entry name, or an ExtractError when the name
 * could leave the target directory. `.` and `./` give [] (the root itself).
 */
export function safePathComponents(name: string): string[] {
  const fail = (why: string): never => {
    throw new ExtractError('UNSAFE_PATH', `unsafe path ${shown(name)} in layer: ${why}`, name);
  };
  if (name.includes('\0')) fail('NUL character');
  if (name.startsWith('/')) fail('absolute path');
  if (/^[A-Za-z]:/.test(name)) fail('drive-letter path');
  if (name.includes('\\')) fail('backslash in path');
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) fail(`longer than ${MAX_PATH_BYTES} bytes`);
  const components = name.split('/').filter((c) => c !== '' && c !== '.');
  for (const component of components) {
    if (component === '..') fail("'..' path component");
    if (Buffer.byteLength(component) > MAX_NAME_BYTES)
      fail(`a component is longer than ${MAX_NAME_BYTES} bytes`);
  }
  return components;
}

type Compression = 'gzip' | 'none';

function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) {
    throw new ExtractError('UNSUPPORTED_COMPRESSION', 'zstd-compressed layers are not supported');
  }
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    throw new ExtractError('UNSUPPORTED_COMPRESSION', 'xz-compressed layers are not supported');
  }
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') {
    throw new ExtractError('UNSUPPORTED_COMPRESSION', 'bzip2-compressed layers are not supported');
  }
  return 'none';
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Errors that only say a stream was torn down, not why. */
function isTeardown(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  const message = err instanceof Error ? err.message : '';
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || /stream was destroyed|premature close/i.test(message);
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _chunk of stream) {
    // discard
  }
}

/** Applies layers one after another into `root` (an existing, empty directory). */
export class LayerExtractor {
  private readonly limits: ExtractLimits;
  private readonly summaryData: ExtractSummary = {
    entries: 0,
    files: 0,
    directories: 0,
    bytes: 0,
    archiveBytes: 0,
    diskBytes: 0,
    skipped: [],
  };
  private options: ExtractOptions = {};
  /** Relative paths (and their ancestors) written by the layer being applied. */
  private layerWritten = new Set<string>();
  /** Directories known to exist as real directories. */
  private knownDirs = new Set<string>();

  private readonly root: string;

  constructor(root: string, limits: Partial<ExtractLimits> = {}) {
    this.root = resolve(root);
    this.limits = { ...DEFAULT_EXTRACT_LIMITS, ...limits };
  }

  get summary(): ExtractSummary {
    return { ...this.summaryData, skipped: [...this.summaryData.skipped] };
  }

  /** Extracts one layer blob stored at `path` (tar or tar+gzip, detected from its first bytes). */
  async extractFile(path: string, options: ExtractOptions = {}): Promise<void> {
    const handle = await open(path, 'r');
    let head: Buffer;
    try {
      const buffer = Buffer.alloc(8);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
    const compression = detectCompression(head);
    await this.extractStream(createReadStream(path), compression, options);
  }

  /** Extracts one layer from a stream; `compression` must be known up front. */
  async extractStream(
    input: Readable,
    compression: Compression,
    options: ExtractOptions = {},
  ): Promise<void> {
    this.layerWritten = new Set();
    this.options = options;
    const limits = this.limits;
    const summary = this.summaryData;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        summary.archiveBytes += chunk.length;
        if (summary.archiveBytes > limits.maxArchiveBytes) {
          callback(
            new ExtractError(
              'LIMIT_EXCEEDED',
              `layers hold more than ${limits.maxArchiveBytes} bytes of uncompressed tar data (maxArchiveBytes)`,
            ),
          );
          return;
        }
        callback(null, chunk);
      },
    });
    const parser = tarExtract();
    const feeding =
      compression === 'gzip'
        ? pipeline(input, createGunzip(), counter, parser)
        : pipeline(input, counter, parser);
    // Observed below; this only keeps an early rejection from being reported as unhandled.
    feeding.catch(() => undefined);
    try {
      for await (const entry of parser) {
        options.signal?.throwIfAborted();
        await this.applyEntry(entry.header, entry);
      }
      await feeding;
    } catch (err) {
      parser.destroy();
      input.destroy();
      const fed = await feeding.then(
        () => undefined,
        (e: unknown) => e,
      );
      // A decompression or limit failure reaches the parser only as "destroyed"; report its cause.
      const cause = !(err instanceof ExtractError) && isTeardown(err) && fed && !isTeardown(fed) ? fed : err;
      throw this.translate(cause);
    }
  }

  private translate(err: unknown): Error {
    if (err instanceof ExtractError) return err;
    const code = (err as { code?: unknown } | undefined)?.code;
    const message = err instanceof Error ? err.message : String(err);
    if (typeof code === 'string' && code.startsWith('Z_')) {
      return new ExtractError('INVALID_LAYER', `layer is not valid gzip: ${message}`, undefined, {
        cause: err,
      });
    }
    if (/tar header|Unexpected end of data|Header exceeds max size|Invalid header/i.test(message)) {
      return new ExtractError('INVALID_LAYER', `layer is not a valid tar archive: ${message}`, undefined, {
        cause: err,
      });
    }
    return err instanceof Error ? err : new Error(message);
  }

  private countEntry(name: string): void {
    this.summaryData.entries++;
    if (this.summaryData.entries > this.limits.maxFiles) {
      throw new ExtractError(
        'LIMIT_EXCEEDED',
        `layers hold more than ${this.limits.maxFiles} entries (maxFiles)`,
        name,
      );
    }
  }

  /** Counts the disk blocks of a new file or directory, failing past maxDiskBytes. */
  private claimDisk(name: string, bytes: number): void {
    const blocks = diskBlocks(bytes);
    const reserved = this.options.reservedBytes ?? 0;
    if (this.summaryData.diskBytes + blocks + reserved > this.limits.maxDiskBytes) {
      throw new ExtractError(
        'LIMIT_EXCEEDED',
        `extracting needs more than the ${this.limits.maxDiskBytes} bytes of disk this fetch may use ` +
          `(maxDiskBytes; ${this.summaryData.diskBytes} bytes extracted${reserved > 0 ? `, ${reserved} bytes of layer blob` : ''})`,
        name,
      );
    }
    this.summaryData.diskBytes += blocks;
  }

  private skip(path: string, type: string, reason: string): void {
    if (this.summaryData.skipped.length < MAX_SKIPPED_REPORTED)
      this.summaryData.skipped.push({ path, type, reason });
  }

  private markWritten(components: readonly string[]): void {
    for (let i = 1; i <= components.length; i++) this.layerWritten.add(components.slice(0, i).join('/'));
  }

  private async applyEntry(header: Header, body: AsyncIterable<unknown>): Promise<void> {
    const name = header.name;
    this.countEntry(name);
    const components = safePathComponents(name);
    const relative = components.join('/');
    const type = (header.type as string | null) ?? 'unknown';

    const base = components[components.length - 1];
    if (base !== undefined && base.startsWith(WHITEOUT_PREFIX)) {
      await drain(body);
      await this.whiteout(components.slice(0, -1), base, name);
      return;
    }

    switch (type) {
      case 'file':
      case 'contiguous-file':
        if (components.length === 0)
          throw new ExtractError('UNSAFE_PATH', `file entry ${shown(name)} has no name`, name);
        await this.writeFile(components, header, body);
        this.markWritten(components);
        return;
      case 'directory':
        await drain(body);
        if (components.length > 0) {
          await this.ensureDirectory(components);
          this.markWritten(components);
          this.summaryData.directories++;
        }
        return;
      case 'symlink':
      case 'link':
        await drain(body);
        this.skip(relative, type, 'links are not extracted');
        return;
      case 'character-device':
      case 'block-device':
      case 'fifo':
        await drain(body);
        this.skip(relative, type, 'special files are not extracted');
        return;
      default:
        throw new ExtractError('INVALID_LAYER', `unsupported tar entry type for ${shown(name)}`, name);
    }
  }

  private absolute(components: readonly string[]): string {
    const path = join(this.root, ...components);
    if (path !== this.root && !path.startsWith(this.root + sep)) {
      throw new ExtractError(
        'UNSAFE_PATH',
        `path ${shown(components.join('/'))} resolves outside the target`,
      );
    }
    return path;
  }

  /** Makes every component a real directory, replacing files (never following links). */
  private async ensureDirectory(components: readonly string[]): Promise<void> {
    for (let i = 1; i <= components.length; i++) {
      const relative = components.slice(0, i).join('/');
      if (this.knownDirs.has(relative)) continue;
      const path = this.absolute(components.slice(0, i));
      const stat = await lstatOrUndefined(path);
      if (stat && !stat.isDirectory()) await this.remove(path);
      if (!stat || !stat.isDirectory()) {
        this.claimDisk(relative, 0);
        await mkdir(path, { mode: 0o755 });
      }
      this.knownDirs.add(relative);
    }
  }

  private async remove(path: string): Promise<void> {
    // rm never follows symbolic links; a removed directory invalidates the cache below it.
    await rm(path, { recursive: true, force: true });
    this.knownDirs.clear();
  }

  private async writeFile(components: readonly string[], header: Header, body: AsyncIterable<unknown>) {
    const name = header.name;
    const size = header.size;
    if (size > this.limits.maxFileBytes) {
      throw new ExtractError(
        'LIMIT_EXCEEDED',
        `file ${shown(name)} is ${size} bytes, over the limit of ${this.limits.maxFileBytes} (maxFileBytes)`,
        name,
      );
    }
    if (this.summaryData.bytes + size > this.limits.maxTotalBytes) {
      throw new ExtractError(
        'LIMIT_EXCEEDED',
        `files total more than ${this.limits.maxTotalBytes} bytes (maxTotalBytes)`,
        name,
      );
    }
    this.claimDisk(name, size);
    await this.ensureDirectory(components.slice(0, -1));
    const path = this.absolute(components);
    if (await lstatOrUndefined(path)) await this.remove(path);
    const mode = (header.mode & 0o755) | 0o600;
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
    const handle = await open(path, flags, mode);
    let written = 0;
    try {
      for await (const chunk of body) {
        const data = chunk as Buffer;
        written += data.length;
        if (written > size)
          throw new ExtractError(
            'INVALID_LAYER',
            `entry ${shown(name)} is longer than its header says`,
            name,
          );
        await handle.write(data);
      }
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
    this.summaryData.bytes += written;
    this.summaryData.files++;
  }

  private async whiteout(parent: readonly string[], base: string, name: string): Promise<void> {
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (base !== OPAQUE_WHITEOUT && (target === '' || target === '.' || target === '..')) {
      throw new ExtractError('UNSAFE_PATH', `unsafe path ${shown(name)} in layer: invalid whiteout`, name);
    }
    // Whiteouts only ever remove what earlier layers left, below existing real directories.
    for (let i = 1; i <= parent.length; i++) {
      const stat = await lstatOrUndefined(this.absolute(parent.slice(0, i)));
      if (!stat?.isDirectory()) return;
    }
    const parentRelative = parent.join('/');
    if (base === OPAQUE_WHITEOUT) {
      const dir = this.absolute(parent);
      for (const child of await readdir(dir)) {
        const childRelative = parentRelative === '' ? child : `${parentRelative}/${child}`;
        if (!this.layerWritten.has(childRelative)) await this.remove(join(dir, child));
      }
      return;
    }
    const targetRelative = parentRelative === '' ? target : `${parentRelative}/${target}`;
    if (this.layerWritten.has(targetRelative)) return;
    const path = this.absolute([...parent, target]);
    if (await lstatOrUndefined(path)) await this.remove(path);
  }
}
