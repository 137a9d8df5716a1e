// RegistryClient against an in-process fake registry (plain http unless a
// test says otherwise): manifests, indexes, blobs with redirects to another
// origin, Basic and Bearer auth with a token endpoint, failure injection,
// TLS with a throwaway CA made by openssl, and an HTTP CONNECT proxy.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import { pack } from 'tar-stream';

import type { RegistryCredential } from './auth-match.js';
import {
  IMGPKG_BUNDLE_LABEL,
  MAX_TAG_PAGES,
  MEDIA_TYPES,
  RegistryClient,
  type RegistryClientOptions,
} from './client.js';
import type { DockerConfigRegistry } from './dockerconfig.js';
import { RegistryError } from './errors.js';

const PASSWORD = 'Secr3t-Pa55word';
const REFRESH_TOKEN = 'refresh-Secr3t-token';
const REGISTRY_TOKEN = 'registry-Secr3t-token';
const SECRETS = [PASSWORD, REFRESH_TOKEN, REGISTRY_TOKEN];

const sha = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const b64 = (text: string) => Buffer.from(text).toString('base64');

async function tarOf(entries: Array<{ name: string; body: string }>): Promise<Buffer> {
  const archive = pack();
  for (const { name, body } of entries) archive.entry({ name }, body);
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

interface BuiltImage {
  manifest: Buffer;
  digest: string;
  blobs: Map<string, Buffer>;
}

async function buildImage(
  files: Record<string, string>,
  options: { bundle?: boolean; evil?: boolean; mediaType?: string } = {},
): Promise<BuiltImage> {
  const { bundle = true, evil = false, mediaType = MEDIA_TYPES.dockerManifest } = options;
  const layers = [gzipSync(await tarOf(Object.entries(files).map(([name, body]) => ({ name, body }))))];
  if (evil) layers.push(gzipSync(await tarOf([{ name: '../evil', body: 'escaped' }])));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: bundle ? { Labels: { [IMGPKG_BUNDLE_LABEL]: 'true' } } : {},
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const layerType =
    mediaType === MEDIA_TYPES.dockerManifest
      ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
      : 'application/vnd.oci.image.layer.v1.tar+gzip';
  const configType =
    mediaType === MEDIA_TYPES.dockerManifest
      ? 'application/vnd.docker.container.image.v1+json'
      : 'application/vnd.oci.image.config.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: configType, digest: sha(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: layerType, digest: sha(l), size: l.length })),
    }),
  );
  const blobs = new Map<string, Buffer>([
    [sha(config), config],
    ...layers.map((l) => [sha(l), l] as [string, Buffer]),
  ]);
  return { manifest, digest: sha(manifest), blobs };
}

type AuthMode = 'none' | 'basic' | 'bearer';

interface LoggedRequest {
  method: string;
  path: string;
  authorization?: string;
}

/** A minimal distribution-API server. */
class FakeRegistry {
  readonly server: http.Server | https.Server;
  readonly storage = http.createServer((req, res) => this.serveStorage(req, res));
  readonly log: LoggedRequest[] = [];
  readonly storageLog: LoggedRequest[] = [];
  readonly manifests = new Map<string, { body: Buffer; mediaType: string }>();
  readonly blobs = new Map<string, Buffer>();
  readonly failures: Array<{ match: RegExp; status: number; body?: string; times: number }> = [];
  readonly tokens = new Map<string, { scope: string }>();
  auth: AuthMode = 'none';
  users = new Map([['alice', PASSWORD]]);
  redirectBlobs = false;
  corruptStorage = false;
  hang = false;
  /** Requests whose path matches get their body one byte every 300 ms. */
  trickle: RegExp | undefined;
  /** Bodies of 404 responses that never end (a byte every 300 ms). */
  endlessErrors = false;
  /** Slow responses still being sent. */
  slowResponses = 0;
  /** Tags per tags/list page (the registry's own page size wins over a larger `n`). */
  tagPageSize = 2;
  /** Overrides the Link of every tags/list page (hostile registries). */
  tagLink: string | undefined;
  port = 0;
  storagePort = 0;

  constructor(tls?: { cert: string; key: string }) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.serve(req, res);
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await listen(this.server);
    this.storagePort = await listen(this.storage);
  }

  async stop(): Promise<void> {
    for (const server of [this.server, this.storage]) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }

  reset(): void {
    this.log.length = 0;
    this.storageLog.length = 0;
    this.failures.length = 0;
    this.tokens.clear();
    this.auth = 'none';
    this.redirectBlobs = false;
    this.corruptStorage = false;
    this.hang = false;
    this.trickle = undefined;
    this.endlessErrors = false;
    this.tagPageSize = 2;
    this.tagLink = undefined;
  }

  /** Sends `body` one byte every 300 ms (forever when `body` is undefined). */
  private sendSlowly(res: http.ServerResponse, status: number, body: Buffer | undefined): void {
    res.writeHead(status, {
      'Content-Type': 'application/octet-stream',
      ...(body ? { 'Content-Length': body.length } : {}),
    });
    let sent = 0;
    this.slowResponses++;
    const timer = setInterval(() => {
      if (body && sent >= body.length) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(body ? body.subarray(sent, sent + 1) : 'x');
      sent++;
    }, 300);
    res.on('close', () => {
      this.slowResponses--;
      clearInterval(timer);
    });
  }

  push(repo: string, tag: string, image: BuiltImage): void {
    this.manifests.set(`${repo}@${tag}`, { body: image.manifest, mediaType: MEDIA_TYPES.dockerManifest });
    this.manifests.set(`${repo}@${image.digest}`, {
      body: image.manifest,
      mediaType: MEDIA_TYPES.dockerManifest,
    });
    for (const [digest, blob] of image.blobs) this.blobs.set(`${repo}@${digest}`, blob);
  }

  pushRaw(repo: string, reference: string, body: Buffer, mediaType: string): void {
    this.manifests.set(`${repo}@${reference}`, { body, mediaType });
  }

  countLog(pattern: RegExp): number {
    return this.log.filter((r) => pattern.test(`${r.method} ${r.path}`)).length;
  }

  private authorized(req: http.IncomingMessage, repo: string): boolean {
    const header = req.headers.authorization ?? '';
    if (this.auth === 'none') return true;
    if (this.auth === 'basic') {
      const [user, pass] = Buffer.from(header.replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':');
      return header.startsWith('Basic ') && user !== undefined && this.users.get(user) === pass;
    }
    if (header === `Bearer ${REGISTRY_TOKEN}`) return true;
    const token = this.tokens.get(header.replace(/^Bearer /, ''));
    return (
      header.startsWith('Bearer ') &&
      token !== undefined &&
      token.scope.split(' ').includes(`repository:${repo}:pull`)
    );
  }

  private challenge(res: http.ServerResponse, repo: string): void {
    res.setHeader(
      'WWW-Authenticate',
      this.auth === 'basic'
        ? 'Basic realm="fake"'
        : `Bearer realm="http://${this.host}/token",service="fake-registry",scope="repository:${repo}:pull"`,
    );
    sendError(res, 401, 'UNAUTHORIZED', 'authentication required');
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const entry: LoggedRequest = { method: req.method ?? '', path: url.pathname };
    if (req.headers.authorization) entry.authorization = req.headers.authorization;
    this.log.push(entry);
    if (this.hang) return; // never answers
    const failure = this.failures.find((f) => f.times > 0 && f.match.test(url.pathname));
    if (failure) {
      failure.times--;
      res.writeHead(failure.status, { 'Content-Type': 'application/json' });
      res.end(failure.body ?? '{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
      return;
    }
    if (url.pathname === '/token') {
      this.serveToken(req, url, res);
      return;
    }
    const tagList = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
    if (tagList) {
      this.serveTags(req, res, url, tagList[1]!);
      return;
    }
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!match) {
      sendError(res, 404, 'NOT_FOUND', 'not found');
      return;
    }
    const [, repo, kind, reference] = match as unknown as [string, string, string, string];
    if (!this.authorized(req, repo)) {
      this.challenge(res, repo);
      return;
    }
    if (![...this.manifests.keys()].some((k) => k.startsWith(`${repo}@`))) {
      sendError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
      return;
    }
    if (kind === 'manifests') {
      const manifest = this.manifests.get(`${repo}@${reference}`);
      if (!manifest) {
        if (this.endlessErrors) return this.sendSlowly(res, 404, undefined);
        sendError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
        return;
      }
      if (this.trickle?.test(url.pathname)) return this.sendSlowly(res, 200, manifest.body);
      res.writeHead(200, {
        'Content-Type': manifest.mediaType,
        'Docker-Content-Digest': sha(manifest.body),
        'Content-Length': manifest.body.length,
      });
      res.end(manifest.body);
      return;
    }
    const blob = this.blobs.get(`${repo}@${reference}`);
    if (!blob) {
      sendError(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
      return;
    }
    if (this.trickle?.test(url.pathname)) return this.sendSlowly(res, 200, blob);
    if (this.redirectBlobs) {
      res.writeHead(307, {
        Location: `http://localhost:${this.storagePort}/storage/${repo}/${reference}?sig=x`,
      });
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': blob.length });
    res.end(blob);
  }

  private serveTags(req: http.IncomingMessage, res: http.ServerResponse, url: URL, repo: string): void {
    if (!this.authorized(req, repo)) {
      this.challenge(res, repo);
      return;
    }
    const all = [...this.manifests.keys()]
      .filter((k) => k.startsWith(`${repo}@`) && !k.startsWith(`${repo}@sha256:`))
      .map((k) => k.slice(repo.length + 1))
      .sort();
    const last = url.searchParams.get('last');
    const n = Math.min(Number(url.searchParams.get('n') ?? this.tagPageSize), this.tagPageSize);
    const rest = last === null ? all : all.filter((t) => t > last);
    const page = rest.slice(0, n);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (this.tagLink !== undefined) headers['Link'] = this.tagLink;
    else if (rest.length > n)
      headers['Link'] = `</v2/${repo}/tags/list?n=${n}&last=${page[page.length - 1]}>; rel="next"`;
    res.writeHead(200, headers);
    res.end(JSON.stringify({ name: repo, tags: page }));
  }

  private serveStorage(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const entry: LoggedRequest = { method: req.method ?? '', path: url.pathname };
    if (req.headers.authorization) entry.authorization = req.headers.authorization;
    this.storageLog.push(entry);
    const match = /^\/storage\/(.+)\/([^/]+)$/.exec(url.pathname);
    const blob = match ? this.blobs.get(`${match[1]}@${match[2]}`) : undefined;
    if (!blob) {
      res.writeHead(404);
      res.end();
      return;
    }
    const body = this.corruptStorage ? Buffer.from(blob).fill(0x41, 0, 8) : blob;
    res.writeHead(200, { 'Content-Length': body.length });
    res.end(body);
  }

  private serveToken(req: http.IncomingMessage, url: URL, res: http.ServerResponse): void {
    const issue = (scope: string, field: 'token' | 'access_token') => {
      const token = randomBytes(8).toString('hex');
      this.tokens.set(token, { scope });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ [field]: token, expires_in: 300 }));
    };
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== REFRESH_TOKEN) {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'refresh token rejected' }));
          return;
        }
        issue(form.get('scope') ?? '', 'access_token');
      });
      return;
    }
    const header = req.headers.authorization;
    if (header) {
      const [user, pass] = Buffer.from(header.replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':');
      if (user === undefined || this.users.get(user) !== pass || url.searchParams.get('account') !== user) {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      issue(url.searchParams.getAll('scope').join(' '), 'token');
      return;
    }
    issue('', 'token'); // anonymous tokens grant nothing here
  }
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message, detail: null }] }));
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

function assertNoSecrets(err: unknown): void {
  const text =
    err instanceof Error ? `${err.message} ${String(err.stack)} ${JSON.stringify(err)}` : String(err);
  for (const secret of SECRETS) assert.ok(!text.includes(secret), 'a secret leaked into an error');
  assert.ok(!text.includes(b64(`alice:${PASSWORD}`)), 'a Basic header leaked into an error');
}

async function assertRegistryError(
  promise: Promise<unknown>,
  expected: { code: string; status?: number; message?: RegExp },
): Promise<RegistryError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof RegistryError, `expected RegistryError, got ${String(caught)}`);
  assert.equal(caught.code, expected.code, caught.message);
  if (expected.status !== undefined) assert.equal(caught.status, expected.status);
  if (expected.message) assert.match(caught.message, expected.message);
  assertNoSecrets(caught);
  return caught;
}

const FILES = {
  '.imgpkg/images.yml': 'apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n',
  'packages/simple.example.com/1.0.0.yml': 'apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\n',
};

function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, prefix: string) => {
    for (const name of readdirSync(d, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${name.name}` : name.name;
      if (name.isDirectory()) walk(join(d, name.name), rel);
      else out[rel] = readFileSync(join(d, name.name), 'utf8');
    }
  };
  walk(dir, '');
  return out;
}

let work: string;
let registry: FakeRegistry;
let bundle: BuiltImage;
let plain: BuiltImage;
let evil: BuiltImage;
let targetCount = 0;

function target(): string {
  targetCount++;
  return join(work, `target-${targetCount}`);
}

function client(options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({
    plainHttp: [registry.host, `localhost:${registry.storagePort}`],
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    timeoutMs: 5_000,
    ...options,
  });
}

const alice: RegistryCredential = { kind: 'basic', username: 'alice', password: PASSWORD };

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'regcred-client-'));
  registry = new FakeRegistry();
  await registry.start();
  bundle = await buildImage(FILES);
  plain = await buildImage(
    { 'config/app.yml': 'a: 1\n' },
    { bundle: false, mediaType: MEDIA_TYPES.ociManifest },
  );
  evil = await buildImage({ 'ok.txt': 'ok' }, { evil: true });
  registry.push('team/bundle', '1.0.0', bundle);
  registry.push('team/plain', 'latest', plain);
  registry.push('team/evil', 'v1', evil);
});
after(async () => {
  await registry.stop();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => registry.reset());

describe('RegistryClient pulls', () => {
  it('a bundle by tag with Basic auth, extracting its files', async () => {
    registry.auth = 'basic';
    const c = client();
    const dir = target();
    const result = await c.pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: dir,
      credential: alice,
    });
    c.close();
    assert.deepEqual(readTree(dir), FILES);
    assert.equal(result.digest, bundle.digest);
    assert.equal(result.manifestDigest, bundle.digest);
    assert.equal(result.pinned, `${registry.host}/team/bundle@${bundle.digest}`);
    assert.equal(result.isBundle, true);
    assert.equal(result.files, 2);
    // anonymous first, then Basic after the challenge, then Basic up front for the rest.
    assert.equal(registry.log[0]?.authorization, undefined);
    assert.ok(registry.log.slice(1).every((r) => r.authorization?.startsWith('Basic ')));
  });

  it('a bundle by digest, verifying the manifest digest', async () => {
    const c = client();
    const dir = target();
    const result = await c.pull(`${registry.host}/team/bundle@${bundle.digest}`, {
      kind: 'imgpkgBundle',
      targetDir: dir,
    });
    assert.deepEqual(readTree(dir), FILES);
    assert.equal(result.digest, bundle.digest);

    const forged = Buffer.from(bundle.manifest.toString().replace('"schemaVersion":2', '"schemaVersion": 2'));
    const fakeDigest = `sha256:${'0'.repeat(64)}`;
    registry.pushRaw('team/bundle', fakeDigest, forged, MEDIA_TYPES.dockerManifest);
    await assertRegistryError(
      c.pull(`${registry.host}/team/bundle@${fakeDigest}`, { kind: 'imgpkgBundle', targetDir: target() }),
      { code: 'DIGEST_INVALID', message: /manifest digest mismatch: requested sha256:0{64}/ },
    );
    c.close();
  });

  it('refuses a plain image as imgpkgBundle with a clear message, and pulls it as image', async () => {
    const c = client();
    const dir = target();
    await assertRegistryError(
      c.pull(`${registry.host}/team/plain`, { kind: 'imgpkgBundle', targetDir: dir }),
      {
        code: 'NOT_A_BUNDLE',
        message:
          /team\/plain: NOT_A_BUNDLE: expected an imgpkg bundle, .*"dev\.carvel\.imgpkg\.bundle" label/,
      },
    );
    assert.equal(existsSync(dir), false, 'nothing is written before the label check');
    const result = await c.pull(`${registry.host}/team/plain`, { kind: 'image', targetDir: dir });
    assert.equal(result.isBundle, false);
    assert.deepEqual(readTree(dir), { 'config/app.yml': 'a: 1\n' });
    c.close();
  });

  it('rejects a layer with a ../ entry, leaving the target empty and nothing outside it', async () => {
    const parent = join(work, 'evil-parent');
    mkdirSync(parent);
    const dir = join(parent, 'target');
    await assertRegistryError(
      client().pull(`${registry.host}/team/evil:v1`, { kind: 'imgpkgBundle', targetDir: dir }),
      {
        code: 'UNSAFE_PATH',
        message: /layer 2\/2 .*unsafe path "\.\.\/evil"/,
      },
    );
    assert.deepEqual(readdirSync(parent), ['target']);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('requires an empty target directory', async () => {
    const dir = target();
    mkdirSync(dir);
    writeFileSync(join(dir, 'x'), 'x');
    await assertRegistryError(
      client().pull(`${registry.host}/team/bundle:1.0.0`, { kind: 'imgpkgBundle', targetDir: dir }),
      {
        code: 'INVALID_TARGET',
      },
    );
    assert.deepEqual(readdirSync(dir), ['x']);
  });

  it('follows blob redirects to another origin without sending the Authorization header there', async () => {
    registry.auth = 'basic';
    registry.redirectBlobs = true;
    const dir = target();
    await client().pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: dir,
      credential: alice,
    });
    assert.deepEqual(readTree(dir), FILES);
    assert.equal(registry.storageLog.length, 2); // config + one layer
    assert.ok(registry.storageLog.every((r) => r.authorization === undefined));
  });

  it('keeps a pull within maxDiskBytes: the layer blob plus what is extracted', async () => {
    const dir = target();
    await assertRegistryError(
      client().pull(`${registry.host}/team/bundle:1.0.0`, {
        kind: 'imgpkgBundle',
        targetDir: dir,
        maxDiskBytes: 100,
      }),
      {
        code: 'LIMIT_EXCEEDED',
        message:
          /layer 1\/1 \(sha256:[0-9a-f]+\) is \d+ bytes; with 0 bytes already extracted the pull would need more than the 100 bytes of disk this fetch may use \(maxDiskBytes\)/,
      },
    );
    assert.equal(registry.countLog(/blobs/), 1, 'only the config blob was fetched');
    await assertRegistryError(
      client().pull(`${registry.host}/team/bundle:1.0.0`, {
        kind: 'imgpkgBundle',
        targetDir: target(),
        maxDiskBytes: 3 * 4096,
      }),
      { code: 'LIMIT_EXCEEDED', message: /bytes of layer blob\)/ },
    );
    const result = await client().pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: dir,
      maxDiskBytes: 64 * 4096,
    });
    assert.deepEqual(readTree(dir), FILES);
    assert.ok(
      result.diskBytes >= 2 * 4096,
      `${result.diskBytes} bytes of disk for 2 files and their directories`,
    );
  });

  it('verifies blob digests and leaves the target empty on a mismatch', async () => {
    registry.redirectBlobs = true;
    registry.corruptStorage = true;
    const dir = target();
    await assertRegistryError(
      client().pull(`${registry.host}/team/bundle:1.0.0`, { kind: 'image', targetDir: dir }),
      {
        code: 'DIGEST_INVALID',
        message: /config blob digest mismatch/,
      },
    );
    assert.equal(existsSync(dir), false);
  });

  it('resolves an index to linux/amd64, or to its only image', async () => {
    const other = await buildImage({ 'arm.txt': 'arm' });
    registry.push('team/multi', 'arm-only', other);
    const index = (entries: Array<{ digest: string; size: number; os: string; architecture: string }>) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociIndex,
          manifests: entries.map((e) => ({
            mediaType: MEDIA_TYPES.dockerManifest,
            digest: e.digest,
            size: e.size,
            platform: { os: e.os, architecture: e.architecture },
          })),
        }),
      );
    registry.push('team/multi', 'amd', bundle);
    const both = index([
      { digest: other.digest, size: other.manifest.length, os: 'linux', architecture: 'arm64' },
      { digest: bundle.digest, size: bundle.manifest.length, os: 'linux', architecture: 'amd64' },
      { digest: other.digest, size: other.manifest.length, os: 'unknown', architecture: 'unknown' },
    ]);
    registry.pushRaw('team/multi', 'both', both, MEDIA_TYPES.ociIndex);
    const single = index([
      { digest: other.digest, size: other.manifest.length, os: 'linux', architecture: 's390x' },
    ]);
    registry.pushRaw('team/multi', 'single', single, MEDIA_TYPES.ociIndex);
    const none = index([
      { digest: other.digest, size: other.manifest.length, os: 'linux', architecture: 'arm64' },
      { digest: other.digest, size: other.manifest.length, os: 'windows', architecture: 'amd64' },
    ]);
    registry.pushRaw('team/multi', 'none', none, MEDIA_TYPES.ociIndex);

    const c = client();
    const resolved = await c.resolve(`${registry.host}/team/multi:both`);
    assert.equal(resolved.digest, sha(both));
    assert.equal(resolved.mediaType, MEDIA_TYPES.ociIndex);
    assert.equal(resolved.manifestDigest, bundle.digest);
    const dir = target();
    await c.pull(`${registry.host}/team/multi:single`, { kind: 'imgpkgBundle', targetDir: dir });
    assert.deepEqual(readTree(dir), { 'arm.txt': 'arm' });
    await assertRegistryError(c.resolve(`${registry.host}/team/multi:none`), {
      code: 'NO_MATCHING_PLATFORM',
      message: /no linux\/amd64 image \(it has: linux\/arm64, windows\/amd64\)/,
    });
    c.close();
  });
});

describe('RegistryClient authentication', () => {
  it('gets a Bearer token with Basic credentials, scoped to the repository, and caches it', async () => {
    registry.auth = 'bearer';
    const c = client();
    await c.pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: target(),
      credential: alice,
    });
    assert.equal(registry.countLog(/^GET \/token/), 1);
    const [token] = [...registry.tokens.values()];
    assert.equal(token?.scope, 'repository:team/bundle:pull');
    await c.pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: target(),
      credential: alice,
    });
    assert.equal(registry.countLog(/^GET \/token/), 1, 'the cached token is reused');
    assert.equal(registry.countLog(/^GET \/v2\/.*manifests/), 3, 'one 401, then two authorized requests');
    c.close();
  });

  it('never hands a token obtained with one credential to another', async () => {
    registry.auth = 'bearer';
    registry.users.set('bob', 'bobs-password');
    const c = client();
    await c.pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: target(),
      credential: alice,
    });
    await assertRegistryError(
      c.pull(`${registry.host}/team/bundle:1.0.0`, {
        kind: 'imgpkgBundle',
        targetDir: target(),
        credential: { kind: 'basic', username: 'bob', password: 'wrong' },
      }),
      { code: 'UNAUTHORIZED', status: 401, message: /incorrect username or password/ },
    );
    await assertRegistryError(c.resolve(`${registry.host}/team/bundle:1.0.0`), {
      code: 'UNAUTHORIZED',
      status: 401,
    });
    c.close();
  });

  it('exchanges an identity token with the OAuth2 refresh_token grant', async () => {
    registry.auth = 'bearer';
    const dir = target();
    await client().pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: dir,
      credential: { kind: 'identityToken', token: REFRESH_TOKEN },
    });
    assert.deepEqual(readTree(dir), FILES);
    assert.equal(registry.countLog(/^POST \/token/), 1);
    await assertRegistryError(
      client().resolve(`${registry.host}/team/bundle:1.0.0`, {
        credential: { kind: 'identityToken', token: 'nope' },
      }),
      { code: 'invalid_grant', status: 401, message: /refresh token rejected/ },
    );
  });

  it('sends a registry token as a Bearer token up front', async () => {
    registry.auth = 'bearer';
    await client().resolve(`${registry.host}/team/bundle:1.0.0`, {
      credential: { kind: 'registryToken', token: REGISTRY_TOKEN },
    });
    assert.equal(registry.countLog(/^GET \/token/), 0);
    assert.equal(registry.log[0]?.authorization, `Bearer ${REGISTRY_TOKEN}`);
  });

  it('reports the registry UNAUTHORIZED for a wrong password and for no credentials', async () => {
    registry.auth = 'basic';
    const wrong = await assertRegistryError(
      client().pull(`${registry.host}/team/bundle:1.0.0`, {
        kind: 'imgpkgBundle',
        targetDir: target(),
        credential: { kind: 'basic', username: 'alice', password: 'not-the-password' },
      }),
      { code: 'UNAUTHORIZED', status: 401 },
    );
    assert.equal(
      wrong.message,
      `${registry.host}/team/bundle:1.0.0: UNAUTHORIZED: authentication required (HTTP 401 fetching manifest 1.0.0)`,
    );
    assert.deepEqual(wrong.errors, [{ code: 'UNAUTHORIZED', message: 'authentication required' }]);
    await assertRegistryError(
      client().pull(`${registry.host}/team/bundle:1.0.0`, { kind: 'imgpkgBundle', targetDir: target() }),
      { code: 'UNAUTHORIZED', status: 401, message: /UNAUTHORIZED: authentication required/ },
    );
  });

  it('chooses the most specific dockerconfigjson key', async () => {
    registry.auth = 'basic';
    const auths: DockerConfigRegistry[] = [
      { registry: `https://${registry.host}/v1/`, entry: { auth: b64('alice:wrong') } },
      { registry: `${registry.host}/team`, entry: { auth: b64(`alice:${PASSWORD}`) } },
      { registry: `${registry.host}/other`, entry: { auth: b64('alice:wrong-too') } },
    ];
    const result = await client().pull(`${registry.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: target(),
      auths,
    });
    assert.equal(result.credentialKey, `${registry.host}/team`);
    const host = await assertRegistryError(
      client().resolve(`${registry.host}/team/bundle:1.0.0`, { auths: auths.slice(0, 1) }),
      { code: 'UNAUTHORIZED' },
    );
    assert.ok(!host.message.includes('wrong'));
  });
});

describe('RegistryClient errors and retries', () => {
  it('reports MANIFEST_UNKNOWN and NAME_UNKNOWN without retrying', async () => {
    const c = client();
    await assertRegistryError(c.resolve(`${registry.host}/team/bundle:9.9.9`), {
      code: 'MANIFEST_UNKNOWN',
      status: 404,
      message: /MANIFEST_UNKNOWN: manifest unknown \(HTTP 404 fetching manifest 9\.9\.9\)/,
    });
    await assertRegistryError(c.resolve(`${registry.host}/nobody/here:1`), {
      code: 'NAME_UNKNOWN',
      status: 404,
    });
    assert.equal(registry.log.length, 2);
    c.close();
  });

  it('hasManifest: true when the manifest is there, false on 404, 401 and 403 (as imgpkg reads them), and throws on others', async () => {
    const c = client({ retries: 0 });
    assert.equal(await c.hasManifest(`${registry.host}/team/bundle@${bundle.digest}`), true);
    assert.equal(await c.hasManifest(`${registry.host}/team/bundle:9.9.9`), false);
    assert.equal(await c.hasManifest(`${registry.host}/nobody/here@${bundle.digest}`), false);
    for (const status of [401, 403]) {
      registry.failures.push({ match: /manifests/, status, times: 1 });
      assert.equal(await c.hasManifest(`${registry.host}/team/bundle:1.0.0`), false, `HTTP ${status}`);
    }
    registry.failures.push({ match: /manifests/, status: 500, times: 1, body: 'oops' });
    await assertRegistryError(c.hasManifest(`${registry.host}/team/bundle:1.0.0`), {
      code: 'SERVER_ERROR',
      status: 500,
    });
    // Only manifests were fetched, never a blob.
    assert.equal(registry.countLog(/blobs/), 0);
    c.close();
  });

  it('does not retry 401 and 403', async () => {
    registry.failures.push({
      match: /manifests/,
      status: 403,
      times: 5,
      body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
    });
    await assertRegistryError(client().resolve(`${registry.host}/team/bundle:1.0.0`), {
      code: 'DENIED',
      status: 403,
    });
    assert.equal(registry.log.length, 1);
  });

  it('retries 5xx with backoff and then succeeds', async () => {
    registry.failures.push({ match: /manifests/, status: 503, times: 2 });
    registry.failures.push({ match: /blobs/, status: 502, times: 1 });
    const dir = target();
    await client().pull(`${registry.host}/team/bundle:1.0.0`, { kind: 'imgpkgBundle', targetDir: dir });
    assert.deepEqual(readTree(dir), FILES);
    assert.equal(registry.countLog(/manifests/), 3);
  });

  it('gives up after the configured retries', async () => {
    registry.failures.push({ match: /manifests/, status: 500, times: 10, body: 'oops' });
    await assertRegistryError(client({ retries: 2 }).resolve(`${registry.host}/team/bundle:1.0.0`), {
      code: 'SERVER_ERROR',
      status: 500,
    });
    assert.equal(registry.countLog(/manifests/), 3);
  });

  it('retries a failing token endpoint a bounded number of times, not once per registry retry', async () => {
    registry.auth = 'bearer';
    registry.failures.push({ match: /^\/token$/, status: 503, times: 10 });
    await assertRegistryError(
      client({ retries: 2 }).resolve(`${registry.host}/team/bundle:1.0.0`, { credential: alice }),
      {
        code: 'UNAVAILABLE',
        status: 503,
        message: /requesting a token from http:\/\/127\.0\.0\.1:\d+\/token/,
      },
    );
    assert.equal(registry.countLog(/\/token/), 3);
  });

  it('times out a registry that does not answer', async () => {
    registry.hang = true;
    await assertRegistryError(
      client({ timeoutMs: 150, retries: 1 }).resolve(`${registry.host}/team/bundle:1.0.0`),
      {
        code: 'TIMEOUT',
        message: /no data from 127\.0\.0\.1:\d+ for 150 ms/,
      },
    );
    assert.equal(registry.log.length, 2);
  });

  it(
    'aborts a blob that trickles one byte every 300 ms by the minimum-throughput rule',
    { timeout: 10_000 },
    async () => {
      registry.trickle = /\/blobs\//;
      const dir = target();
      const started = Date.now();
      await assertRegistryError(
        client({ throughput: { minBytesPerSecond: 1024, graceMs: 300, windowMs: 600 } }).pull(
          `${registry.host}/team/bundle:1.0.0`,
          { kind: 'imgpkgBundle', targetDir: dir },
        ),
        {
          code: 'TOO_SLOW',
          message:
            /TOO_SLOW: transfer too slow: \d+ B\/s over the last 600ms, below the minimum of 1 KiB\/s \(fetching config blob sha256:/,
        },
      );
      assert.ok(Date.now() - started < 3_000, 'failed within grace + a window or two, without retries');
      assert.equal(registry.countLog(/blobs/), 1, 'a too slow transfer is not retried within the pull');
    },
  );

  it(
    'aborts a manifest that trickles, and a pull stops at once when its signal aborts',
    { timeout: 10_000 },
    async () => {
      registry.trickle = /\/manifests\//;
      await assertRegistryError(
        client({ throughput: { minBytesPerSecond: 1024, graceMs: 300, windowMs: 600 } }).resolve(
          `${registry.host}/team/bundle:1.0.0`,
        ),
        { code: 'TOO_SLOW', message: /fetching manifest 1\.0\.0/ },
      );
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('deadline')), 400).unref();
      const started = Date.now();
      await assert.rejects(
        client().pull(`${registry.host}/team/bundle:1.0.0`, {
          kind: 'imgpkgBundle',
          targetDir: target(),
          signal: controller.signal,
        }),
      );
      assert.ok(Date.now() - started < 2_000, 'the signal ends the pull, whatever the throughput rule says');
    },
  );

  it(
    'destroys the connection of an error response instead of draining an endless body',
    { timeout: 10_000 },
    async () => {
      registry.endlessErrors = true;
      const c = client({ timeoutMs: 60_000 });
      const started = Date.now();
      await assertRegistryError(c.resolve(`${registry.host}/team/bundle:9.9.9`), {
        code: 'NOT_FOUND',
        status: 404,
      });
      assert.ok(Date.now() - started < 4_000, 'the unwanted error body was not read to its end');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(registry.slowResponses, 0, 'the connection of the unwanted body was closed');
      c.close();
    },
  );

  it('names bad references clearly', async () => {
    await assertRegistryError(client().resolve('https://r.io/x'), {
      code: 'INVALID_REFERENCE',
      message: /scheme/,
    });
  });
});

/** A CA and a server certificate for 127.0.0.1, made with openssl; undefined when openssl is missing. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  // prettier-ignore
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=regcred unit CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  // prettier-ignore
  run(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt',
    '-days', '1', '-extfile', 'ext.cnf']);
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return { ca: read('ca.crt'), cert: read('srv.crt'), key: read('srv.key') };
}

describe('RegistryClient TLS and proxies', () => {
  let certs: { ca: string; cert: string; key: string } | undefined;
  let secure: FakeRegistry;
  let proxy: http.Server;
  let proxyPort = 0;
  const connects: string[] = [];
  const proxyAuth: string[] = [];
  const sockets = new Set<Socket>();

  before(async () => {
    const dir = join(work, 'certs');
    mkdirSync(dir);
    certs = makeCertificates(dir);
    if (!certs) return;
    secure = new FakeRegistry({ cert: certs.cert, key: certs.key });
    await secure.start();
    secure.push('team/bundle', '1.0.0', bundle);
    proxy = http.createServer((req, res) => {
      // absolute-form requests for plain http targets
      proxyAuth.push(req.headers['proxy-authorization'] ?? '');
      connects.push(`${req.method} ${req.url}`);
      const target = new URL(req.url ?? '');
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname + target.search,
          method: req.method,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    proxy.on('connect', (req: http.IncomingMessage, client: Socket, head: Buffer) => {
      connects.push(`CONNECT ${req.url}`);
      proxyAuth.push(req.headers['proxy-authorization'] ?? '');
      if (req.headers['proxy-authorization'] === 'Basic ' + b64('deny:deny')) {
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
        return;
      }
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
    });
    proxyPort = await listen(proxy);
  });
  after(async () => {
    if (!certs) return;
    await secure.stop();
    for (const s of sockets) s.destroy();
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  });
  beforeEach(() => {
    connects.length = 0;
    proxyAuth.length = 0;
  });

  const tlsClient = (options: RegistryClientOptions = {}) =>
    new RegistryClient({ retries: 0, timeoutMs: 5_000, ...options });

  it('fails with an x509 error naming the Node TLS error and caCerts when the CA is unknown', async (t) => {
    if (!certs) return t.skip('openssl not available');
    const err = await assertRegistryError(tlsClient().resolve(`${secure.host}/team/bundle:1.0.0`), {
      code: 'X509',
      message:
        /x509: .*unable to verify the first certificate.* \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); add the CA .* to caCerts/,
    });
    assert.equal(err.retryable, false);
  });

  it('trusts a CA given in caCerts, in addition to the default roots', async (t) => {
    if (!certs) return t.skip('openssl not available');
    const dir = target();
    await tlsClient({ caCerts: certs.ca }).pull(`${secure.host}/team/bundle:1.0.0`, {
      kind: 'imgpkgBundle',
      targetDir: dir,
    });
    assert.deepEqual(readTree(dir), FILES);
  });

  it('builds the TLS context of caCerts once, not once per connection (each holds every root certificate)', async (t) => {
    if (!certs) return t.skip('openssl not available');
    const client = tlsClient({ caCerts: certs.ca });
    const original = tls.createSecureContext;
    let contexts = 0;
    tls.createSecureContext = (options) => ((contexts += 1), original(options));
    try {
      // Concurrent requests open several connections.
      await Promise.all(Array.from({ length: 6 }, () => client.resolve(`${secure.host}/team/bundle:1.0.0`)));
    } finally {
      tls.createSecureContext = original;
    }
    assert.equal(contexts, 0);
  });

  it('skips verification for a host:port listed in dangerousSkipTLSVerify, and only there', async (t) => {
    if (!certs) return t.skip('openssl not available');
    await tlsClient({ dangerousSkipTLSVerify: `other.example, ${secure.host}` }).resolve(
      `${secure.host}/team/bundle:1.0.0`,
    );
    await tlsClient({ dangerousSkipTLSVerify: ['127.0.0.1'] }).resolve(`${secure.host}/team/bundle:1.0.0`);
    await assertRegistryError(
      tlsClient({ dangerousSkipTLSVerify: [`127.0.0.1:${secure.port + 1}`] }).resolve(
        `${secure.host}/team/bundle:1.0.0`,
      ),
      { code: 'X509' },
    );
  });

  it('tunnels https through an http proxy with CONNECT, verifying TLS end to end', async (t) => {
    if (!certs) return t.skip('openssl not available');
    const dir = target();
    await tlsClient({
      caCerts: certs.ca,
      httpsProxy: `http://user:proxy-Secr3t@127.0.0.1:${proxyPort}`,
    }).pull(`${secure.host}/team/bundle:1.0.0`, { kind: 'imgpkgBundle', targetDir: dir });
    assert.deepEqual(readTree(dir), FILES);
    assert.ok(connects.length >= 1);
    assert.ok(connects.every((c) => c === `CONNECT ${secure.host}`));
    assert.ok(proxyAuth.every((a) => a === `Basic ${b64('user:proxy-Secr3t')}`));
    await assertRegistryError(
      tlsClient({ httpsProxy: `http://127.0.0.1:${proxyPort}` }).resolve(`${secure.host}/team/bundle:1.0.0`),
      { code: 'X509' },
    );
  });

  it('reports a refused CONNECT without the proxy credentials', async (t) => {
    if (!certs) return t.skip('openssl not available');
    const err = await assertRegistryError(
      tlsClient({ caCerts: certs.ca, httpsProxy: `http://deny:deny@127.0.0.1:${proxyPort}` }).resolve(
        `${secure.host}/team/bundle:1.0.0`,
      ),
      {
        code: 'PROXY',
        status: 407,
        message: new RegExp(`proxy http://127\\.0\\.0\\.1:${proxyPort} refused CONNECT`),
      },
    );
    assert.ok(!err.message.includes('deny:deny'));
  });

  it('times out a registry that does not answer behind an https proxy (CONNECT tunnel)', async (t) => {
    if (!certs) return t.skip('openssl not available');
    secure.hang = true;
    try {
      const started = Date.now();
      await assertRegistryError(
        tlsClient({ caCerts: certs.ca, httpsProxy: `http://127.0.0.1:${proxyPort}`, timeoutMs: 200 }).resolve(
          `${secure.host}/team/bundle:1.0.0`,
        ),
        { code: 'TIMEOUT', message: /no data from 127\.0\.0\.1:\d+ for 200 ms/ },
      );
      assert.ok(Date.now() - started < 3_000, 'the idle timeout applies through the tunnel');
    } finally {
      secure.hang = false;
    }
  });

  it('bypasses the proxy for noProxy hosts and sends plain http through it in absolute form', async (t) => {
    if (!certs) return t.skip('openssl not available');
    await tlsClient({
      caCerts: certs.ca,
      httpsProxy: `http://127.0.0.1:${proxyPort}`,
      noProxy: 'example.com,127.0.0.0/8',
    }).resolve(`${secure.host}/team/bundle:1.0.0`);
    assert.deepEqual(connects, []);
    await client({ httpProxy: `127.0.0.1:${proxyPort}` }).resolve(`${registry.host}/team/bundle:1.0.0`);
    assert.deepEqual(connects, [`GET http://${registry.host}/v2/team/bundle/manifests/1.0.0`]);
  });
});

describe('RegistryClient lists tags', () => {
  before(() => {
    for (const tag of ['1.1.0', '2.0.0', 'latest', '0.1.0']) registry.push('team/tags', tag, bundle);
  });

  it('follows Link pages on the registry, with Bearer auth, and returns every tag', async () => {
    registry.auth = 'bearer';
    const tags = await client().listTags(`${registry.host}/team/tags`, { credential: alice });
    assert.deepEqual(tags, ['0.1.0', '1.1.0', '2.0.0', 'latest']);
    assert.equal(registry.countLog(/^GET \/v2\/team\/tags\/tags\/list/), 3, 'one 401, then two pages');
    assert.ok(
      registry.log
        .filter((r) => r.path.endsWith('/tags/list'))
        .slice(1)
        .every((r) => r.authorization),
      'every page after the challenge is authorized',
    );
  });

  it('refuses a next page on another origin (the credentials would go there)', async () => {
    registry.tagLink = `<http://localhost:${registry.storagePort}/v2/team/tags/tags/list?last=z>; rel="next"`;
    await assertRegistryError(client().listTags(`${registry.host}/team/tags`, { credential: alice }), {
      code: 'UNSUPPORTED',
      message: /links its next page to another origin/,
    });
    assert.equal(registry.storageLog.length, 0);
  });

  it('stops after MAX_TAG_PAGES pages of a registry that links to itself forever', async () => {
    registry.tagLink = '</v2/team/tags/tags/list?n=2>; rel="next"';
    await assertRegistryError(client().listTags(`${registry.host}/team/tags`), {
      code: 'LIMIT_EXCEEDED',
      message: new RegExp(`more than ${MAX_TAG_PAGES} pages`),
    });
    assert.equal(registry.countLog(/tags\/list/), MAX_TAG_PAGES);
  });
});
