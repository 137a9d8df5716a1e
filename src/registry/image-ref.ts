// Parsing of image references (`host[:port]/path[:tag][@sha256:...]`) following
// the grammar of distribution/reference, with Docker Hub's defaults applied.

/** Registry name of Docker Hub, as credentials and references name it. */
export const DOCKER_HUB_REGISTRY = 'index.docker.io';
/** Host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** Registry names that all mean Docker Hub. */
export const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
]);
export const DEFAULT_TAG = 'latest';

export interface ImageRef {
  /** `host[:port]`, host lower-cased; Docker Hub is always `index.docker.io`. */
  registry: string;
  /** Repository path, e.g. `library/nginx` or `team/app`. */
  repository: string;
  /** The tag; `latest` when the reference has neither tag nor digest. */
  tag?: string;
  /** `sha256:<64 hex>`; when present it wins over the tag. */
  digest?: string;
}

export class ImageRefError extends Error {
  constructor(
    readonly reference: string,
    reason: string,
  ) {
    super(`invalid image reference ${JSON.stringify(reference)}: ${reason}`);
    this.name = 'ImageRefError';
  }
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const PORT = /^[0-9]{1,5}$/;
const MAX_NAME_LENGTH = 255;

/** Whether the first path component names a registry rather than a Docker Hub namespace. */
function looksLikeDomain(component: string): boolean {
  return (
    component.includes('.') ||
    component.includes(':') ||
    component === 'localhost' ||
    component.toLowerCase() !== component
  );
}

/** Splits `host[:port]` (host may be a bracketed IPv6 literal); undefined when malformed. */
export function splitHostPort(authority: string): { host: string; port?: string } | undefined {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) return undefined;
    const host = authority.slice(0, close + 1);
    const rest = authority.slice(close + 1);
    if (rest === '') return { host };
    if (!rest.startsWith(':')) return undefined;
    return { host, port: rest.slice(1) };
  }
  const colon = authority.lastIndexOf(':');
  if (colon === -1) return { host: authority };
  return { host: authority.slice(0, colon), port: authority.slice(colon + 1) };
}

function validDomain(domain: string): boolean {
  const parts = splitHostPort(domain);
  if (!parts) return false;
  if (parts.port !== undefined && (!PORT.test(parts.port) || Number(parts.port) > 65535)) return false;
  if (IPV6_HOST.test(parts.host)) return true;
  return parts.host.split('.').every((label) => DOMAIN_COMPONENT.test(label));
}

/** Lower-cases the host of `host[:port]` and maps every Docker Hub alias to `index.docker.io`. */
export function normalizeRegistry(domain: string): string {
  const lower = domain.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB_REGISTRY : lower;
}

export function isDockerHub(registry: string): boolean {
  return DOCKER_HUB_ALIASES.has(registry.toLowerCase());
}

/**
 * Parses an image reference. `k14stest/private-repo` → registry `index.docker.io`,
 * repository `k14stest/private-repo`, tag `latest`; `nginx` → `library/nginx`.
 * Only sha256 digests are accepted (the only algorithm the client verifies).
 */
export function parseImageRef(reference: string): ImageRef {
  const fail = (reason: string): never => {
    throw new ImageRefError(reference, reason);
  };
  if (reference === '') fail('empty');
  if (reference.trim() !== reference) fail('leading or trailing whitespace');
  if (reference.includes('://')) fail('a scheme is not allowed');

  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!ANY_DIGEST.test(digest)) fail('malformed digest');
    if (!SHA256_DIGEST.test(digest)) fail('only lower-case sha256:<64 hex> digests are supported');
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail('malformed tag');
  }

  const firstSlash = rest.indexOf('/');
  let registry: string;
  let repository: string;
  if (firstSlash !== -1 && looksLikeDomain(rest.slice(0, firstSlash))) {
    const domain = rest.slice(0, firstSlash);
    if (!validDomain(domain)) fail(`malformed registry host ${JSON.stringify(domain)}`);
    registry = normalizeRegistry(domain);
    repository = rest.slice(firstSlash + 1);
  } else {
    registry = DOCKER_HUB_REGISTRY;
    repository = rest;
  }
  if (repository === '') fail('missing repository');
  if (registry === DOCKER_HUB_REGISTRY && !repository.includes('/')) repository = `library/${repository}`;
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      fail(
        component.toLowerCase() !== component
          ? 'repository must be lower-case'
          : `malformed path component ${JSON.stringify(component)}`,
      );
    }
  }
  if (`${registry}/${repository}`.length > MAX_NAME_LENGTH) {
    fail(`name longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const ref: ImageRef = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `host[:port]` to send registry API requests to (Docker Hub's API lives on registry-1.docker.io). */
export function registryApiHost(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_API_HOST : registry;
}

/** What goes into `/v2/<repo>/manifests/<reference>`: the digest if any, else the tag. */
export function manifestReference(ref: ImageRef): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** `registry/repository[:tag][@digest]`, fully qualified. */
export function formatImageRef(ref: ImageRef): string {
  let text = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) text += `:${ref.tag}`;
  if (ref.digest !== undefined) text += `@${ref.digest}`;
  return text;
}

/** `registry/repository@digest`: the immutable form of a reference. */
export function pinnedImageRef(ref: ImageRef, digest: string): string {
  return `${ref.registry}/${ref.repository}@${digest}`;
}
