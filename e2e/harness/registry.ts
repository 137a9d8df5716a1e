// A REAL private registry for e2e tests: CNCF distribution (the Debian
// `docker-registry` package) with TLS from a throwaway test CA and htpasswd
// (bcrypt) users, on a free loopback port. Plus OCI image layouts built on
// disk (plain images, imgpkg bundles, optionally a malicious `../evil`
// layer) and pushed with skopeo, the independent client: our code never
// pushes. Install the tools with
//   apt-get install -y docker-registry skopeo apache2-utils
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

import { pack } from 'tar-stream';

import { freePort } from './control-plane.js';

const execFileAsync = promisify(execFile);

export const IMGPKG_BUNDLE_LABEL = 'dev.carvel.imgpkg.bundle';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
// Docker schema 2, as go-containerregistry (so imgpkg) writes by default.
const DOCKER_MEDIA_TYPES = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

export interface RegistryUser {
  username: string;
  password: string;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  /** PEM of the test CA that signed the server certificate. */
  caCert: string;
  /** A directory holding only `ca.crt`, for skopeo's --cert-dir options. */
  caDir: string;
  users: RegistryUser[];
  dir: string;
  /** Pushes an OCI layout's tag with skopeo; resolves to the pushed manifest digest. */
  push(layoutDir: string, tag: string, repository: string, user?: RegistryUser): Promise<string>;
  /** `skopeo inspect` with an auth file; resolves to its JSON output. */
  inspect(reference: string, authFile: string): Promise<Record<string, unknown>>;
  /** Replaces the htpasswd users; the registry rereads the file on its next request. */
  setUsers(users: RegistryUser[]): Promise<void>;
  stop(): Promise<void>;
}

async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of ['docker-registry', 'skopeo', 'htpasswd', 'openssl']) {
    try {
      await execFileAsync('sh', ['-c', `command -v ${tool}`]);
    } catch {
      missing.push(tool);
    }
  }
  return missing;
}

/** A throwaway CA and a server certificate for IP 127.0.0.1 signed by it. */
export async function makeTestCertificates(
  dir: string,
): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  mkdirSync(dir, { recursive: true });
  const openssl = (args: string[]) => execFileAsync('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  // prettier-ignore
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
    '-subj', '/CN=regcred e2e test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  // prettier-ignore
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext']);
  return { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') };
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function probe(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith('http:') ? httpRequest : request;
    const req = send(url, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/**
 * Starts `docker-registry serve` with TLS and htpasswd auth (or, with
 * `plainHttp`, a local mirror as many run one: plain HTTP, anonymous). stop()
 * ends the process (SIGTERM, then SIGKILL) and removes its temporary directory.
 */
export async function startRegistry(
  options: { users?: RegistryUser[]; log?: (line: string) => void; plainHttp?: boolean } = {},
): Promise<TestRegistry> {
  const plainHttp = options.plainHttp === true;
  const missing = await missingTools();
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: apt-get update -qq && apt-get install -y docker-registry skopeo apache2-utils`,
    );
  }
  const log = options.log ?? (() => undefined);
  const users = [...(options.users ?? [{ username: 'tester', password: randomBytes(12).toString('hex') }])];
  const dir = mkdtempSync(join(tmpdir(), 'regcred-registry-'));
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child) await stopProcess(child, 5000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const certs = await makeTestCertificates(join(dir, 'tls'));
    const caDir = join(dir, 'ca');
    mkdirSync(caDir);
    const caCert = readFileSync(certs.caFile, 'utf8');
    writeFileSync(join(caDir, 'ca.crt'), caCert);

    const writeHtpasswd = async (list: RegistryUser[]) => {
      const lines: string[] = [];
      for (const user of list) {
        const { stdout } = await execFileAsync('htpasswd', ['-Bbn', user.username, user.password]);
        lines.push(stdout.trim());
      }
      writeFileSync(join(dir, 'htpasswd'), lines.join('\n') + '\n');
    };
    await writeHtpasswd(users);

    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
http:
  addr: ${host}
  secret: ${randomBytes(16).toString('hex')}
${
  plainHttp
    ? ''
    : `  tls:
    certificate: ${certs.certFile}
    key: ${certs.keyFile}
auth:
  htpasswd:
    realm: test
    path: ${join(dir, 'htpasswd')}
`
}`;
    writeFileSync(join(dir, 'config.yml'), config);
    const out = createWriteStream(join(dir, 'registry.log'));
    const started = performance.now();
    child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    const proc = child;
    proc.once('exit', () => children.delete(proc));
    proc.stdout?.pipe(out);
    proc.stderr?.pipe(out);

    const deadline = Date.now() + 20_000;
    let last = '';
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error('docker-registry exited during startup');
      try {
        const status = await probe(`${plainHttp ? 'http' : 'https'}://${host}/v2/`, caCert);
        if (status === (plainHttp ? 200 : 401)) break;
        last = `HTTP ${status}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for GET /v2/ to answer 401: ${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    log(
      `registry ready in ${Math.round(performance.now() - started)} ms at ${plainHttp ? 'http' : 'https'}://${host}`,
    );

    const skopeo = async (args: string[]) => {
      const { stdout } = await execFileAsync('skopeo', ['--insecure-policy', ...args], {
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, REGISTRY_AUTH_FILE: join(dir, 'no-auth.json') },
      });
      return stdout;
    };
    const defaultUser = users[0]!;
    return {
      host,
      port,
      caCert,
      caDir,
      users,
      dir,
      async push(layoutDir, tag, repository, user = defaultUser) {
        const digestFile = join(dir, `digest-${randomBytes(4).toString('hex')}`);
        const destination = plainHttp
          ? ['--dest-tls-verify=false']
          : ['--dest-cert-dir', caDir, '--dest-creds', `${user.username}:${user.password}`];
        // prettier-ignore
        await skopeo(['copy', '--quiet', ...destination, '--digestfile', digestFile,
          `oci:${layoutDir}:${tag}`, `docker://${host}/${repository}:${tag}`]);
        const digest = readFileSync(digestFile, 'utf8').trim();
        rmSync(digestFile);
        return digest;
      },
      async inspect(reference, authFile) {
        const stdout = await skopeo([
          'inspect',
          '--cert-dir',
          caDir,
          '--authfile',
          authFile,
          `docker://${reference}`,
        ]);
        return JSON.parse(stdout) as Record<string, unknown>;
      },
      async setUsers(list) {
        await writeHtpasswd(list);
        users.splice(0, users.length, ...list);
      },
      stop,
    };
  } catch (err) {
    const logFile = join(dir, 'registry.log');
    if (existsSync(logFile))
      log(`--- registry.log (tail)\n${readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n')}`);
    await stop();
    throw err;
  }
}

export interface LayoutEntry {
  name: string;
  body?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
}

export interface LayoutOptions {
  tag: string;
  /** Adds the imgpkg bundle label and a default `.imgpkg/images.yml` when `files` has none. */
  bundle?: boolean;
  /** Appends a layer whose only entry is `../evil`. */
  evilLayer?: boolean;
  /** Further raw layers, applied after the files layer. */
  extraLayers?: LayoutEntry[][];
  /** Docker schema 2 media types instead of OCI ones (imgpkg's locations images use them). */
  dockerMediaTypes?: boolean;
}

export interface BuiltLayout {
  dir: string;
  tag: string;
  /** Digest of the image manifest written into the layout. */
  manifestDigest: string;
}

export const EMPTY_IMAGES_LOCK =
  '---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function tarLayer(entries: LayoutEntry[]): Promise<Buffer> {
  const archive = pack();
  const mtime = new Date(0);
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    if (type === 'file') {
      const body = Buffer.from(entry.body ?? '');
      archive.entry({ name: entry.name, type, mode: 0o644, mtime, size: body.length }, body);
    } else if (type === 'directory') {
      archive.entry({ name: entry.name, type, mode: 0o755, mtime });
    } else {
      archive.entry({ name: entry.name, type, linkname: entry.linkname ?? '', mtime });
    }
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** File entries plus their parent directories, in a stable order. */
function entriesFor(files: Record<string, string | Buffer>): LayoutEntry[] {
  const dirs = new Set<string>();
  for (const path of Object.keys(files)) {
    for (let d = dirname(path); d !== '.' && d !== '/'; d = dirname(d)) dirs.add(d);
  }
  return [
    ...[...dirs].sort().map((name) => ({ name: `${name}/`, type: 'directory' as const })),
    ...Object.keys(files)
      .sort()
      .map((name) => ({ name, body: files[name]! })),
  ];
}

/**
 * Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) for
 * one image made of `files` (one gzip layer), as a plain image or an imgpkg
 * bundle, into `dir`.
 */
export async function writeOciLayout(
  dir: string,
  files: Record<string, string | Buffer>,
  options: LayoutOptions,
): Promise<BuiltLayout> {
  const content = { ...files };
  if (options.bundle && content['.imgpkg/images.yml'] === undefined)
    content['.imgpkg/images.yml'] = EMPTY_IMAGES_LOCK;
  const layerEntries = [entriesFor(content), ...(options.extraLayers ?? [])];
  if (options.evilLayer) layerEntries.push([{ name: '../evil', body: 'written outside the target\n' }]);

  const blobsDir = join(dir, 'blobs', 'sha256');
  mkdirSync(blobsDir, { recursive: true });
  const writeBlob = (data: Buffer) => {
    const hex = sha256(data);
    writeFileSync(join(blobsDir, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };

  const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
  const diffIds: string[] = [];
  for (const entries of layerEntries) {
    const tar = await tarLayer(entries);
    diffIds.push(`sha256:${sha256(tar)}`);
    const mediaType = options.dockerMediaTypes ? DOCKER_MEDIA_TYPES.layer : OCI_LAYER_GZIP;
    layers.push({ mediaType, ...writeBlob(gzipSync(tar)) });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: options.bundle ? { Labels: { [IMGPKG_BUNDLE_LABEL]: 'true' } } : {},
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const manifestType = options.dockerMediaTypes ? DOCKER_MEDIA_TYPES.manifest : OCI_MANIFEST;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: {
        mediaType: options.dockerMediaTypes ? DOCKER_MEDIA_TYPES.config : OCI_CONFIG,
        ...writeBlob(config),
      },
      layers,
    }),
  );
  const manifestBlob = writeBlob(manifest);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          // skopeo's oci: transport looks up OCI-typed entries only; it reads the real type from the blob.
          mediaType: OCI_MANIFEST,
          ...manifestBlob,
          annotations: { 'org.opencontainers.image.ref.name': options.tag },
        },
      ],
    }),
  );
  return { dir, tag: options.tag, manifestDigest: manifestBlob.digest };
}
