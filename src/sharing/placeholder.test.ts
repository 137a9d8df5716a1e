import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { MatchKind } from './namespace-match.js';
import {
  EXCLUDED_FROM_WILDCARD_ANNOTATION,
  IMAGE_PULL_SECRET_ANNOTATION,
  STATUS_ANNOTATION,
  WEIGHT_ANNOTATION,
  WRONG_TYPE_STATUS,
  clearPlaceholderMemos,
  collectPlaceholderSources,
  computePlaceholder,
  isPlaceholder,
  isTooLargeRejection,
  MAX_SECRET_DATA_BYTES,
  MAX_STATUS_ANNOTATION_CHARS,
  placeholderFailureAnnotation,
  placeholderRejectedMessage,
  placeholderStatusAnnotation,
  placeholderTooLargeMessage,
  placeholderWorkCounts,
  planPlaceholder,
  type PlaceholderSecret,
  type PlaceholderSource,
  type RegistryConflict,
  type SkippedSource,
} from './placeholder.js';
import type { SecretExportInput, SecretInput } from './types.js';
import { parseDockerConfigJson, serializeDockerConfigJson } from '../registry/dockerconfig.js';

const DOCKER = 'kubernetes.io/dockerconfigjson';
const SUCCESS = '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}]}';
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** A source giving `auth` = its own name for each registry, so the winner is visible in the output. */
function src(
  ref: string,
  registries: string[] | string,
  opts: { weight?: number; matchKind?: MatchKind; type?: string } = {},
): PlaceholderSource {
  const [namespace = '', name = ''] = ref.split('/');
  const text =
    typeof registries === 'string'
      ? registries
      : JSON.stringify({
          auths: Object.fromEntries(registries.map((registry) => [registry, { auth: ref }])),
        });
  return {
    ref: { namespace, name },
    weight: opts.weight ?? 0,
    matchKind: opts.matchKind ?? 'wildcard',
    secretType: opts.type ?? DOCKER,
    dockerconfigjson: text,
  };
}

/** Which source's credential each registry key ended with. */
function winners(json: string): Record<string, string | undefined> {
  const parsed = JSON.parse(json) as { auths: Record<string, { auth?: string }> };
  return Object.fromEntries(Object.entries(parsed.auths).map(([key, entry]) => [key, entry.auth]));
}

describe('annotation keys and fixed strings', () => {
  it('the keys and the wrong-type status are upstream strings, character for character', () => {
    assert.equal(IMAGE_PULL_SECRET_ANNOTATION, 'secretgen.carvel.dev/image-pull-secret');
    assert.equal(STATUS_ANNOTATION, 'secretgen.carvel.dev/status');
    assert.equal(WEIGHT_ANNOTATION, 'secretgen.carvel.dev/weight');
    assert.equal(EXCLUDED_FROM_WILDCARD_ANNOTATION, 'secretgen.carvel.dev/excluded-from-wildcard-matching');
    assert.equal(
      WRONG_TYPE_STATUS,
      '{"conditions":[{"type":"ReconcileFailed","status":"True","message":"Expected secret to have type=corev1.SecretTypeDockerConfigJson, but did not"}]}',
    );
  });
});

describe('placeholder precedence', () => {
  const cases: Array<{ name: string; sources: PlaceholderSource[]; winner: string }> = [
    {
      name: 'a higher weight wins over an explicit export in the placeholder’s own namespace',
      sources: [
        src('app/own', ['r.io'], { matchKind: 'explicit' }),
        src('other/heavy', ['r.io'], { weight: 1 }),
      ],
      winner: 'other/heavy',
    },
    {
      name: 'a fractional weight is compared as a float',
      sources: [src('a/half', ['r.io'], { weight: 0.5 }), src('b/quarter', ['r.io'], { weight: 0.25 })],
      winner: 'a/half',
    },
    {
      name: 'a negative weight loses to the default weight',
      sources: [src('z/neg', ['r.io'], { weight: -1, matchKind: 'explicit' }), src('a/zero', ['r.io'])],
      winner: 'a/zero',
    },
    {
      name: 'an infinite weight beats any finite weight',
      sources: [src('a/inf', ['r.io'], { weight: Infinity }), src('z/big', ['r.io'], { weight: 1e300 })],
      winner: 'a/inf',
    },
    {
      name: 'at the same weight, the placeholder’s own namespace beats an explicit export from another namespace',
      sources: [
        src('other/x', ['r.io'], { matchKind: 'explicit' }),
        src('app/x', ['r.io'], { matchKind: 'wildcard' }),
      ],
      winner: 'app/x',
    },
    {
      name: 'an explicit export beats a wildcard export of the same weight',
      sources: [
        src('b/explicit', ['r.io'], { matchKind: 'explicit' }),
        src('z/star', ['r.io'], { matchKind: 'wildcard' }),
      ],
      winner: 'b/explicit',
    },
    {
      name: 'an explicit export beats a selector export of the same weight',
      sources: [
        src('b/explicit', ['r.io'], { matchKind: 'explicit' }),
        src('z/sel', ['r.io'], { matchKind: 'selector' }),
      ],
      winner: 'b/explicit',
    },
    {
      name: 'a wildcard and a selector export tie, so the greater ns/name wins',
      sources: [
        src('z/star', ['r.io'], { matchKind: 'wildcard' }),
        src('a/sel', ['r.io'], { matchKind: 'selector' }),
      ],
      winner: 'z/star',
    },
    {
      name: 'when everything else ties, the greater ns/name wins (merged last)',
      sources: [src('b/x', ['r.io']), src('a/y', ['r.io']), src('a/x', ['r.io'])],
      winner: 'b/x',
    },
    {
      name: 'the input order does not matter',
      sources: [src('a/x', ['r.io']), src('b/x', ['r.io'])],
      winner: 'b/x',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = computePlaceholder('app', c.sources);
      assert.deepEqual(winners(result.dockerconfigjson), { 'r.io': c.winner });
      const reversed = computePlaceholder('app', [...c.sources].reverse());
      assert.equal(reversed.dockerconfigjson, result.dockerconfigjson);
    });
  }
});

describe('computePlaceholder', () => {
  const cases: Array<{
    name: string;
    sources: PlaceholderSource[];
    options?: { placeholderName?: string };
    dockerconfigjson: string;
    secretNames: string[];
    skipped?: SkippedSource[];
    conflicts?: RegistryConflict[];
    status: string;
  }> = [
    {
      name: 'no sources give exactly {"auths":{}} and the bare success status',
      sources: [],
      dockerconfigjson: '{"auths":{}}',
      secretNames: [],
      status: SUCCESS,
    },
    {
      name: 'a source of another type is not a source at all',
      sources: [src('a/opaque', ['r.io'], { type: 'Opaque' })],
      dockerconfigjson: '{"auths":{}}',
      secretNames: [],
      status: SUCCESS,
    },
    {
      name: 'disjoint registries are merged with keys sorted and secretNames sorted',
      sources: [src('z/one', ['z.io']), src('a/two', ['a.io'])],
      dockerconfigjson: '{"auths":{"a.io":{"auth":"a/two"},"z.io":{"auth":"z/one"}}}',
      secretNames: ['a/two', 'z/one'],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/two","z/one"]}',
    },
    {
      name: 'a source whose every registry lost is still listed in secretNames, as upstream lists every merged Secret',
      sources: [src('a/low', ['r.io']), src('b/high', ['r.io'], { weight: 1 })],
      dockerconfigjson: '{"auths":{"r.io":{"auth":"b/high"}}}',
      secretNames: ['a/low', 'b/high'],
      conflicts: [{ registry: 'r.io', winner: 'b/high', losers: ['a/low'] }],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/low","b/high"],"conflicts":[{"registry":"r.io","winner":"b/high","losers":["a/low"]}]}',
    },
    {
      name: 'the seed {} source adds nothing but is listed',
      sources: [src('a/seed', '{}\n')],
      dockerconfigjson: '{"auths":{}}',
      secretNames: ['a/seed'],
      status: '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/seed"]}',
    },
    {
      name: 'username, password and a verbatim auth are kept, identitytoken and email too',
      sources: [
        src(
          'a/full',
          JSON.stringify({
            auths: {
              'r.io': { username: 'u', password: 'p', auth: 'verbatim!', email: 'e@x' },
              'id.io': { identitytoken: 'tok' },
            },
          }),
        ),
      ],
      dockerconfigjson:
        '{"auths":{"id.io":{"identitytoken":"tok"},"r.io":{"username":"u","password":"p","auth":"verbatim!","email":"e@x"}}}',
      secretNames: ['a/full'],
      status: '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/full"]}',
    },
    {
      name: 'a missing auth is filled in from username and password',
      sources: [src('a/up', JSON.stringify({ auths: { 'r.io': { username: 'u', password: 'p' } } }))],
      dockerconfigjson: `{"auths":{"r.io":{"username":"u","password":"p","auth":"${b64('u:p')}"}}}`,
      secretNames: ['a/up'],
      status: '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/up"]}',
    },
    {
      name: 'a malformed source is skipped and reported while the others merge',
      sources: [src('a/good', ['r.io']), src('b/bad', JSON.stringify({ auths: [] }), { weight: 5 })],
      dockerconfigjson: '{"auths":{"r.io":{"auth":"a/good"}}}',
      secretNames: ['a/good'],
      skipped: [{ source: 'b/bad', reason: 'expected "auths" to be an object, got array' }],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/good"],"skipped":[{"source":"b/bad","reason":"expected \\"auths\\" to be an object, got array"}]}',
    },
    {
      name: 'a source without the .dockerconfigjson key is skipped',
      sources: [{ ...src('a/empty', []), dockerconfigjson: undefined }],
      dockerconfigjson: '{"auths":{}}',
      secretNames: [],
      skipped: [{ source: 'a/empty', reason: 'missing .dockerconfigjson' }],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"skipped":[{"source":"a/empty","reason":"missing .dockerconfigjson"}]}',
    },
    {
      name: 'an entry with no credential is skipped without hiding a less preferred credential',
      sources: [
        src('a/low', ['r.io']),
        src('b/high', JSON.stringify({ auths: { 'r.io': { email: 'e@x' } } }), { weight: 1 }),
      ],
      dockerconfigjson: '{"auths":{"r.io":{"auth":"a/low"}}}',
      secretNames: ['a/low', 'b/high'],
      skipped: [
        {
          source: 'b/high',
          registry: 'r.io',
          reason: 'no credential (none of username, password, auth, identitytoken, registrytoken)',
        },
      ],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/low","b/high"],"skipped":[{"source":"b/high","registry":"r.io","reason":"no credential (none of username, password, auth, identitytoken, registrytoken)"}]}',
    },
    {
      name: 'keys that differ only by scheme, /v1/ and docker.io alias conflict, and only the winner’s key is kept',
      sources: [src('a/hub-v1', ['https://index.docker.io/v1/']), src('b/hub', ['docker.io'])],
      dockerconfigjson: '{"auths":{"docker.io":{"auth":"b/hub"}}}',
      secretNames: ['a/hub-v1', 'b/hub'],
      conflicts: [{ registry: 'docker.io', winner: 'b/hub', losers: ['a/hub-v1'] }],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/hub-v1","b/hub"],"conflicts":[{"registry":"docker.io","winner":"b/hub","losers":["a/hub-v1"]}]}',
    },
    {
      name: 'two alias keys in one source are both kept and are no conflict',
      sources: [src('a/both', ['docker.io', 'https://index.docker.io/v1/'])],
      dockerconfigjson:
        '{"auths":{"docker.io":{"auth":"a/both"},"https://index.docker.io/v1/":{"auth":"a/both"}}}',
      secretNames: ['a/both'],
      status: '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/both"]}',
    },
    {
      name: 'a winner replaces every alias key a loser gave',
      sources: [
        src('a/low', ['docker.io', 'index.docker.io']),
        src('b/high', ['https://index.docker.io/v1/'], { weight: 1 }),
      ],
      dockerconfigjson: '{"auths":{"https://index.docker.io/v1/":{"auth":"b/high"}}}',
      secretNames: ['a/low', 'b/high'],
      conflicts: [{ registry: 'docker.io', winner: 'b/high', losers: ['a/low'] }],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/low","b/high"],"conflicts":[{"registry":"docker.io","winner":"b/high","losers":["a/low"]}]}',
    },
    {
      name: 'a three-way conflict lists both losers sorted, and other registries merge untouched',
      sources: [
        src('c/x', ['r.io']),
        src('a/x', ['r.io', 'only-a.io']),
        src('b/x', ['R.IO/v2/'], { weight: 2 }),
      ],
      dockerconfigjson: '{"auths":{"R.IO/v2/":{"auth":"b/x"},"only-a.io":{"auth":"a/x"}}}',
      secretNames: ['a/x', 'b/x', 'c/x'],
      conflicts: [{ registry: 'r.io', winner: 'b/x', losers: ['a/x', 'c/x'] }],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/x","b/x","c/x"],"conflicts":[{"registry":"r.io","winner":"b/x","losers":["a/x","c/x"]}]}',
    },
    {
      name: 'path-scoped keys are separate registries, not conflicts',
      sources: [src('a/x', ['r.io/team-a']), src('b/x', ['r.io'])],
      dockerconfigjson: '{"auths":{"r.io":{"auth":"b/x"},"r.io/team-a":{"auth":"a/x"}}}',
      secretNames: ['a/x', 'b/x'],
      status: '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/x","b/x"]}',
    },
    {
      name: 'the placeholder itself is never one of its sources',
      sources: [src('app/pull', ['stale.io']), src('other/x', ['r.io'])],
      options: { placeholderName: 'pull' },
      dockerconfigjson: '{"auths":{"r.io":{"auth":"other/x"}}}',
      secretNames: ['other/x'],
      skipped: [
        {
          source: 'app/pull',
          reason: 'is this placeholder itself; merging it would keep revoked credentials forever',
        },
      ],
      status:
        '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["other/x"],"skipped":[{"source":"app/pull","reason":"is this placeholder itself; merging it would keep revoked credentials forever"}]}',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = computePlaceholder('app', c.sources, c.options);
      assert.equal(result.dockerconfigjson, c.dockerconfigjson);
      assert.deepEqual(result.secretNames, c.secretNames);
      assert.deepEqual(result.skipped, c.skipped ?? []);
      assert.deepEqual(result.conflicts, c.conflicts ?? []);
      assert.equal(result.statusAnnotation, c.status);
    });
  }

  it('no credential value appears in the status annotation', () => {
    const secret = 'hunter2-very-secret';
    const result = computePlaceholder('app', [
      src('a/x', JSON.stringify({ auths: { 'r.io': { username: 'u', password: 12 } } })),
      src('b/x', JSON.stringify({ auths: { 'r.io': { password: secret, auth: secret } } })),
      src('c/x', JSON.stringify({ auths: { 'r.io': { auth: secret } } }), { weight: 1 }),
    ]);
    assert.ok(!result.statusAnnotation.includes(secret));
    assert.ok(!result.statusAnnotation.includes(b64(secret)));
  });
});

describe('registry keys in the status annotation', () => {
  // The annotation (and the Events made from it) reach every namespace the export does.
  const cases: Array<{
    name: string;
    sources: PlaceholderSource[];
    dockerconfigjson: string;
    skipped?: SkippedSource[];
    conflicts?: RegistryConflict[];
  }> = [
    {
      name: 'a skipped key is shown without its user info; the output has no entry for it',
      sources: [src('a/x', JSON.stringify({ auths: { 'https://bob:hunter2@r.io': { email: 'e@x' } } }))],
      dockerconfigjson: '{"auths":{}}',
      skipped: [
        {
          source: 'a/x',
          registry: 'https://***@r.io',
          reason: 'no credential (none of username, password, auth, identitytoken, registrytoken)',
        },
      ],
    },
    {
      name: 'keys differing only by user info conflict; the output keeps the winning key as written',
      sources: [src('a/x', ['https://bob:hunter2@r.io']), src('b/x', ['r.io/v1/'])],
      dockerconfigjson: '{"auths":{"r.io/v1/":{"auth":"b/x"}}}',
      conflicts: [{ registry: 'r.io', winner: 'b/x', losers: ['a/x'] }],
    },
    {
      name: 'a conflict over keys whose password holds a slash is shown without it',
      sources: [src('a/x', ['https://bob:hun/ter2@r.io']), src('b/x', ['bob:hun/ter2@r.io'])],
      dockerconfigjson: '{"auths":{"bob:hun/ter2@r.io":{"auth":"b/x"}}}',
      conflicts: [{ registry: '***@r.io', winner: 'b/x', losers: ['a/x'] }],
    },
    {
      name: 'the key of issue 9 is skipped with the wildcard reason',
      sources: [src('a/x', ['*a*a*a*a*a*a*a*a*a*a*b.example.com', 'r.io'])],
      dockerconfigjson: '{"auths":{"r.io":{"auth":"a/x"}}}',
      skipped: [
        {
          source: 'a/x',
          registry: '*a*a*a*a*a*a*a*a*a*a*b.example.com',
          reason: 'a host label of the key has more than 4 "*" wildcards',
        },
      ],
    },
    {
      name: 'an overlong key is skipped, shown cut with its control characters escaped',
      sources: [src('a/x', [`r.io/\u001b[2J${'a'.repeat(300)}`])],
      dockerconfigjson: '{"auths":{}}',
      skipped: [
        {
          source: 'a/x',
          registry: `r.io/\\u{1b}[2J${'a'.repeat(127 - 14)}…`,
          reason:
            'key is longer than 255 characters without its scheme, user info and /v1/ or /v2/ suffix; no image name is that long',
        },
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = computePlaceholder('app', c.sources);
      assert.equal(result.dockerconfigjson, c.dockerconfigjson);
      assert.deepEqual(result.skipped, c.skipped ?? []);
      assert.deepEqual(result.conflicts, c.conflicts ?? []);
      assert.ok(!result.statusAnnotation.includes('hunter2'));
      assert.ok(!result.statusAnnotation.includes('ter2'));
      assert.ok(!result.statusAnnotation.includes('\u001b'), 'no raw escape character');
    });
  }
});

describe('planPlaceholder', () => {
  const source = src('other/creds', ['r.io'], { matchKind: 'wildcard' });
  const filled = computePlaceholder('app', [source]);
  const base: PlaceholderSecret = {
    namespace: 'app',
    name: 'pull',
    type: DOCKER,
    data: { '.dockerconfigjson': 'e30K' },
    annotations: { [IMAGE_PULL_SECRET_ANNOTATION]: '', keep: 'me' },
  };
  const cases: Array<{
    name: string;
    placeholder: PlaceholderSecret;
    sources: PlaceholderSource[];
    write: { data: Record<string, string> | undefined; annotations: Record<string, string> } | undefined;
  }> = [
    {
      name: 'the seed placeholder is filled and annotated, other annotations kept',
      placeholder: base,
      sources: [source],
      write: {
        data: { '.dockerconfigjson': b64(filled.dockerconfigjson) },
        annotations: {
          [IMAGE_PULL_SECRET_ANNOTATION]: '',
          keep: 'me',
          [STATUS_ANNOTATION]: filled.statusAnnotation,
        },
      },
    },
    {
      name: 'a placeholder already holding the result is not written again',
      placeholder: {
        ...base,
        data: { '.dockerconfigjson': b64(filled.dockerconfigjson) },
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: filled.statusAnnotation },
      },
      sources: [source],
      write: undefined,
    },
    {
      name: 'a placeholder with the right data but a stale status is written',
      placeholder: {
        ...base,
        data: { '.dockerconfigjson': b64(filled.dockerconfigjson) },
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: SUCCESS },
      },
      sources: [source],
      write: {
        data: { '.dockerconfigjson': b64(filled.dockerconfigjson) },
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: filled.statusAnnotation },
      },
    },
    {
      name: 'extra data keys are dropped since data is replaced entirely',
      placeholder: {
        ...base,
        data: { '.dockerconfigjson': b64(filled.dockerconfigjson), extra: b64('x') },
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: filled.statusAnnotation },
      },
      sources: [source],
      write: {
        data: { '.dockerconfigjson': b64(filled.dockerconfigjson) },
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: filled.statusAnnotation },
      },
    },
    {
      name: 'revocation: with no sources left the credentials leave the placeholder',
      placeholder: {
        ...base,
        data: { '.dockerconfigjson': b64(filled.dockerconfigjson) },
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: filled.statusAnnotation },
      },
      sources: [],
      write: {
        data: { '.dockerconfigjson': b64('{"auths":{}}') },
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: SUCCESS },
      },
    },
    {
      name: 'a placeholder of the wrong type keeps its data and gets the failure status',
      placeholder: { ...base, type: 'Opaque', data: { a: b64('1') } },
      sources: [source],
      write: {
        data: undefined,
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: WRONG_TYPE_STATUS },
      },
    },
    {
      name: 'a placeholder of the wrong type already marked failed is not written again',
      placeholder: {
        ...base,
        type: 'Opaque',
        annotations: { ...base.annotations, [STATUS_ANNOTATION]: WRONG_TYPE_STATUS },
      },
      sources: [source],
      write: undefined,
    },
  ];
  for (const c of cases)
    it(c.name, () => assert.deepEqual(planPlaceholder(c.placeholder, c.sources).write, c.write));
});

describe('isPlaceholder', () => {
  const cases: Array<{
    name: string;
    annotations: Record<string, string> | undefined;
    placeholder: boolean;
  }> = [
    {
      name: 'the annotation with an empty value marks a placeholder',
      annotations: { [IMAGE_PULL_SECRET_ANNOTATION]: '' },
      placeholder: true,
    },
    { name: 'no annotations means no placeholder', annotations: undefined, placeholder: false },
    {
      name: 'other annotations do not mark a placeholder',
      annotations: { [STATUS_ANNOTATION]: '{}' },
      placeholder: false,
    },
  ];
  for (const c of cases)
    it(c.name, () => assert.equal(isPlaceholder({ annotations: c.annotations }), c.placeholder));
});

describe('collectPlaceholderSources', () => {
  const exportOf = (
    namespace: string,
    name: string,
    spec: SecretExportInput['spec'],
    weight?: string,
  ): SecretExportInput => ({
    namespace,
    name,
    annotations: weight === undefined ? {} : { [WEIGHT_ANNOTATION]: weight },
    spec,
  });
  const secrets: SecretInput[] = [
    {
      namespace: 's',
      name: 'star',
      type: DOCKER,
      data: { '.dockerconfigjson': b64('{"auths":{}}') },
      resourceVersion: '1',
    },
    {
      namespace: 's',
      name: 'named',
      type: DOCKER,
      data: { '.dockerconfigjson': b64('{}') },
      resourceVersion: '2',
    },
    { namespace: 's', name: 'opaque', type: 'Opaque', data: {}, resourceVersion: '3' },
    { namespace: 's', name: 'elsewhere', type: DOCKER, data: {}, resourceVersion: '4' },
  ];
  const secretOf = (ref: { namespace: string; name: string }) =>
    secrets.find((s) => s.namespace === ref.namespace && s.name === ref.name);

  it('gathers every export reaching the namespace whose Secret exists, with weight, match kind and decoded text', () => {
    const sources = collectPlaceholderSources(
      { name: 'app', labels: {}, annotations: {} },
      [
        exportOf('s', 'star', { toNamespace: '*' }, '2.5'),
        exportOf('s', 'named', { toNamespaces: ['app'] }, 'bogus'),
        exportOf('s', 'opaque', { toNamespace: 'app' }),
        exportOf('s', 'elsewhere', { toNamespace: 'other' }),
        exportOf('s', 'no-secret', { toNamespace: '*' }),
        exportOf('s', 'invalid', { toNamespaces: [''] }),
      ],
      secretOf,
    );
    assert.deepEqual(sources, [
      {
        ref: { namespace: 's', name: 'star' },
        weight: 2.5,
        matchKind: 'wildcard',
        secretType: DOCKER,
        dockerconfigjson: '{"auths":{}}',
      },
      {
        ref: { namespace: 's', name: 'named' },
        weight: 0,
        matchKind: 'explicit',
        secretType: DOCKER,
        dockerconfigjson: '{}',
      },
      {
        ref: { namespace: 's', name: 'opaque' },
        weight: 0,
        matchKind: 'explicit',
        secretType: 'Opaque',
        dockerconfigjson: undefined,
      },
    ]);
  });

  it('an excluded namespace gets no wildcard sources', () => {
    const sources = collectPlaceholderSources(
      { name: 'app', labels: {}, annotations: { [EXCLUDED_FROM_WILDCARD_ANNOTATION]: '' } },
      [exportOf('s', 'star', { toNamespace: '*' })],
      secretOf,
    );
    assert.deepEqual(sources, []);
  });
});

describe('placeholders over the Secret size limit', () => {
  /** A source with `count` registries whose credentials take `bytesEach` bytes. */
  const big = (ref: string, count: number, bytesEach: number): PlaceholderSource => {
    const auths = Object.fromEntries(
      Array.from({ length: count }, (_, i) => [
        `r${i}.${ref.replace('/', '-')}.io`,
        { auth: b64(`user:${'p'.repeat(bytesEach)}`) },
      ]),
    );
    return src(ref, JSON.stringify({ auths }));
  };
  const placeholder: PlaceholderSecret = {
    namespace: 'app',
    name: 'pull',
    type: DOCKER,
    data: { '.dockerconfigjson': b64('{"auths":{"old.io":{"auth":"b2xkOm9sZA=="}}}') },
    annotations: { [IMAGE_PULL_SECRET_ANNOTATION]: '', [STATUS_ANNOTATION]: SUCCESS },
  };
  const tooBig = [big('a/one', 6, 75_000), big('b/two', 6, 75_000)];
  const mergedBytes = Buffer.byteLength(computePlaceholder('app', tooBig).dockerconfigjson, 'utf8');
  const tooLarge = placeholderTooLargeMessage('app', mergedBytes, 2);

  it('the message names the size, the limit and what to change', () => {
    assert.ok(mergedBytes > MAX_SECRET_DATA_BYTES, `${mergedBytes} bytes`);
    assert.equal(
      tooLarge,
      `merged credentials are ${mergedBytes} bytes, over the 1 MiB Secret limit (1048576 bytes), from 2 exported ` +
        'Secrets; the placeholder keeps its previous data until the exports reaching namespace app give fewer credentials',
    );
  });

  const cases: Array<{
    name: string;
    placeholder: PlaceholderSecret;
    sources: PlaceholderSource[];
    failure: string | undefined;
    write: { data: Record<string, string> | undefined; annotations: Record<string, string> } | undefined;
  }> = [
    {
      name: 'over 1 MiB: only the status annotation is written, the data is left as it was',
      placeholder,
      sources: tooBig,
      failure: tooLarge,
      write: {
        data: undefined,
        annotations: {
          [IMAGE_PULL_SECRET_ANNOTATION]: '',
          [STATUS_ANNOTATION]: placeholderFailureAnnotation(tooLarge),
        },
      },
    },
    {
      name: 'over 1 MiB and already reported: nothing is written',
      placeholder: {
        ...placeholder,
        annotations: {
          ...placeholder.annotations,
          [STATUS_ANNOTATION]: placeholderFailureAnnotation(tooLarge),
        },
      },
      sources: tooBig,
      failure: tooLarge,
      write: undefined,
    },
    {
      name: 'under 1 MiB: written as usual',
      placeholder,
      sources: [big('a/one', 6, 75_000)],
      failure: undefined,
      write: {
        data: {
          '.dockerconfigjson': b64(computePlaceholder('app', [big('a/one', 6, 75_000)]).dockerconfigjson),
        },
        annotations: {
          [IMAGE_PULL_SECRET_ANNOTATION]: '',
          [STATUS_ANNOTATION]: computePlaceholder('app', [big('a/one', 6, 75_000)]).statusAnnotation,
        },
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planPlaceholder(c.placeholder, c.sources);
      assert.equal(plan.failure, c.failure);
      assert.deepEqual(plan.write, c.write);
    });
  }

  it('the failure annotation is upstream’s ReconcileFailed shape', () => {
    assert.deepEqual(JSON.parse(placeholderFailureAnnotation('boom')), {
      conditions: [{ type: 'ReconcileFailed', status: 'True', message: 'boom' }],
    });
  });

  it('a rejection by the API server keeps the server’s words, cut to 1 KiB', () => {
    assert.equal(
      placeholderRejectedMessage(
        'app',
        1000,
        'Secret "pull" is invalid: data: Too long: must have at most 1048576 bytes',
      ),
      'the API server rejected the merged credentials (1000 bytes) as too large: Secret "pull" is invalid: data: ' +
        'Too long: must have at most 1048576 bytes; the placeholder keeps its previous data until the exports ' +
        'reaching namespace app change',
    );
    assert.ok(placeholderRejectedMessage('app', 1, 'x'.repeat(100_000)).length < 1300);
  });
});

describe('isTooLargeRejection', () => {
  const cases: Array<[number, string, boolean]> = [
    [413, 'Request Entity Too Large', true],
    [422, 'Secret "p" is invalid: data: Too long: must have at most 1048576 bytes', true],
    [422, 'metadata.annotations: Too long: must have at most 262144 bytes', true],
    [422, 'Secret "p" is invalid: type: Invalid value', false],
    [500, 'etcdserver: request is too large', true],
    [409, 'the object has been modified', false],
    [500, 'internal error', false],
  ];
  for (const [code, message, want] of cases) {
    it(`${code} ${message}`, () => assert.equal(isTooLargeRejection(code, message), want));
  }
});

describe('placeholderStatusAnnotation size', () => {
  it('is upstream’s exact text when small', () => {
    assert.equal(
      placeholderStatusAnnotation({ secretNames: ['a/b'], skipped: [], conflicts: [] }),
      '{"conditions":[{"type":"ReconcileSucceeded","status":"True"}],"secretNames":["a/b"]}',
    );
  });

  const many = <T>(n: number, make: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => make(i));
  const cases: Array<{
    name: string;
    secretNames: number;
    skipped: number;
    conflicts: number;
    registryChars?: number;
  }> = [
    { name: '10,000 skipped registries', secretNames: 1, skipped: 10_000, conflicts: 0 },
    { name: '10,000 merged Secrets', secretNames: 10_000, skipped: 0, conflicts: 0 },
    { name: '5,000 conflicts and 5,000 skipped', secretNames: 2, skipped: 5_000, conflicts: 5_000 },
    {
      name: 'one skipped entry with a 100 KB registry key',
      secretNames: 1,
      skipped: 1,
      conflicts: 0,
      registryChars: 100_000,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: fits in ${MAX_STATUS_ANNOTATION_CHARS} characters and counts what is not shown`, () => {
      const secretNames = many(c.secretNames, (i) => `ns-${i}/creds-${i}`);
      const skipped: SkippedSource[] = many(c.skipped, (i) => ({
        source: 'ns/src',
        registry: c.registryChars ? 'r'.repeat(c.registryChars) : `reg-${i}.example.com`,
        reason: 'credentials are not a string',
      }));
      const conflicts: RegistryConflict[] = many(c.conflicts, (i) => ({
        registry: `c-${i}.io`,
        winner: 'a/b',
        losers: ['c/d'],
      }));
      const text = placeholderStatusAnnotation({ secretNames, skipped, conflicts });
      assert.ok(text.length <= MAX_STATUS_ANNOTATION_CHARS, `${text.length} characters`);
      const parsed = JSON.parse(text) as {
        conditions: unknown;
        secretNames?: string[];
        skipped?: SkippedSource[];
        conflicts?: RegistryConflict[];
        notShown?: Record<string, number>;
      };
      assert.deepEqual(parsed.conditions, [{ type: 'ReconcileSucceeded', status: 'True' }]);
      for (const [field, all] of [
        ['secretNames', secretNames],
        ['skipped', skipped],
        ['conflicts', conflicts],
      ] as const) {
        const shown = parsed[field] ?? [];
        assert.deepEqual(shown, all.slice(0, shown.length), `${field}: the first entries, in order`);
        assert.equal(
          shown.length + (parsed.notShown?.[field] ?? 0),
          all.length,
          `${field}: shown + notShown`,
        );
      }
    });
  }
});

describe('memoized decoding, parsing and merging', () => {
  const placeholderIn = (namespace: string, name = 'pull'): PlaceholderSecret => ({
    namespace,
    name,
    type: DOCKER,
    data: { '.dockerconfigjson': b64('{}') },
    annotations: { [IMAGE_PULL_SECRET_ANNOTATION]: '' },
  });

  it('1,000 placeholders in different namespaces against one 1 MiB source decode, parse and merge it once', () => {
    // 10,000 registries in just under the 1 MiB a Secret may hold.
    const auths = Object.fromEntries(
      Array.from({ length: 10_000 }, (_, i) => [
        `registry-${String(i).padStart(5, '0')}.example.com`,
        { auth: b64(`user-${i}:${'p'.repeat(36)}`) },
      ]),
    );
    const text = JSON.stringify({ auths });
    assert.ok(text.length > 1_000_000 && text.length < MAX_SECRET_DATA_BYTES, `${text.length} chars`);
    const secret: SecretInput = {
      namespace: 'src',
      name: 'big',
      type: DOCKER,
      data: { '.dockerconfigjson': b64(text) },
      resourceVersion: '1',
    };
    const star: SecretExportInput = {
      namespace: 'src',
      name: 'big',
      annotations: {},
      spec: { toNamespace: '*' },
    };
    clearPlaceholderMemos();
    const started = performance.now();
    const written = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const namespace = `tenant-${i}`;
      const sources = collectPlaceholderSources(
        { name: namespace, labels: {}, annotations: {} },
        [star],
        () => secret,
      );
      const plan = planPlaceholder(placeholderIn(namespace), sources);
      written.add(plan.write?.data?.['.dockerconfigjson'] ?? 'no write');
    }
    const elapsed = performance.now() - started;
    assert.deepEqual(placeholderWorkCounts(), { decodes: 1, parses: 1, merges: 1 });
    assert.ok(elapsed < 3000, `${Math.round(elapsed)} ms for 1,000 placeholders`);
    // Every placeholder got the whole merge (10,000 registries), not just some shared stub.
    assert.equal(written.size, 1);
    const [data = ''] = written;
    assert.equal(Object.keys(winners(Buffer.from(data, 'base64').toString('utf8'))).length, 10_000);
  });

  /** Steps planned one after another on warm memos; each must equal the same step computed cold. */
  const json = (registries: Record<string, string>) =>
    JSON.stringify({
      auths: Object.fromEntries(Object.entries(registries).map(([r, auth]) => [r, { auth }])),
    });
  const rotatedA = json({ 'r.io': 'AAAA' });
  const rotatedB = json({ 'r.io': 'BBBB' });
  const cases: Array<{
    name: string;
    steps: Array<{ namespace: string; placeholderName?: string; sources: PlaceholderSource[] }>;
  }> = [
    {
      name: 'a source in the placeholder’s own namespace wins there, not elsewhere',
      steps: ['other', 'app', 'zz', 'app'].map((namespace) => ({
        namespace,
        sources: [src('app/own', ['r.io']), src('zz/star', ['r.io'])],
      })),
    },
    {
      name: 'the placeholder itself is skipped only for that placeholder',
      steps: [
        { namespace: 'app', placeholderName: 'other', sources: [src('app/pull', ['r.io'])] },
        { namespace: 'app', placeholderName: 'pull', sources: [src('app/pull', ['r.io'])] },
        { namespace: 'b', placeholderName: 'pull', sources: [src('app/pull', ['r.io'])] },
        { namespace: 'app', placeholderName: 'other', sources: [src('app/pull', ['r.io'])] },
      ],
    },
    {
      name: 'weights decide, including NaN and the infinities',
      steps: [
        [1, 0],
        [0, 1],
        [Number.NaN, 0],
        [Infinity, Number.NaN],
        [-Infinity, 0],
        [Infinity, Infinity],
        [1, 0],
      ].map(([a, b]) => ({
        namespace: 'app',
        sources: [src('a/x', ['r.io'], { weight: a }), src('b/y', ['r.io'], { weight: b })],
      })),
    },
    {
      name: 'match kind and Secret type of the same refs',
      steps: [
        {
          namespace: 'app',
          sources: [src('a/x', ['r.io'], { matchKind: 'explicit' }), src('b/y', ['r.io'])],
        },
        { namespace: 'app', sources: [src('a/x', ['r.io']), src('b/y', ['r.io'])] },
        { namespace: 'app', sources: [src('a/x', ['r.io']), src('b/y', ['r.io'], { type: 'Opaque' })] },
        { namespace: 'app', sources: [src('a/x', ['r.io']), src('b/y', ['r.io'])] },
      ],
    },
    {
      name: 'conflicts across several sources',
      steps: ['n1', 'n2', 'b'].map((namespace) => ({
        namespace,
        sources: [
          src('a/one', ['r.io', 'https://index.docker.io/v1/', 'q.io']),
          src('b/two', ['R.io', 'docker.io'], { matchKind: 'explicit' }),
          src('c/three', ['q.io'], { weight: 2 }),
        ],
      })),
    },
    {
      name: 'skipped sources and registries, then the same refs with good texts',
      steps: [
        {
          namespace: 'app',
          sources: [
            src('a/bad', 'not json'),
            { ...src('b/missing', []), dockerconfigjson: undefined },
            src('c/empty', '{"auths":{"r.io":{},"s.io":{"auth":"x"}}}'),
          ],
        },
        {
          namespace: 'app',
          sources: [src('a/bad', ['r.io']), src('b/missing', ['r.io']), src('c/empty', ['s.io'])],
        },
      ],
    },
    {
      name: 'a rotated source of the same length is merged again',
      steps: [rotatedA, rotatedB, rotatedA].map((text) => ({
        namespace: 'app',
        sources: [src('a/x', text)],
      })),
    },
  ];
  for (const { name, steps } of cases) {
    it(`equals the uncached computation: ${name}`, () => {
      clearPlaceholderMemos();
      const warm = steps.map((step) =>
        computePlaceholder(step.namespace, step.sources, { placeholderName: step.placeholderName }),
      );
      steps.forEach((step, i) => {
        clearPlaceholderMemos();
        const cold = computePlaceholder(step.namespace, step.sources, {
          placeholderName: step.placeholderName,
        });
        assert.deepEqual(warm[i], cold, `step ${i}`);
      });
    });
  }

  it('an equal copy of a text reuses the merge; a changed text does not', () => {
    clearPlaceholderMemos();
    const text = json({ 'r.io': 'AAAA' });
    const copy = (JSON.parse(JSON.stringify({ text })) as { text: string }).text;
    const first = computePlaceholder('n1', [src('a/x', text)]);
    assert.equal(computePlaceholder('n2', [src('a/x', copy)]), first);
    assert.notEqual(computePlaceholder('n3', [src('a/x', json({ 'r.io': 'BBBB' }))]), first);
    assert.deepEqual(placeholderWorkCounts(), { decodes: 0, parses: 2, merges: 2 });
  });

  it('shared results are frozen', () => {
    clearPlaceholderMemos();
    const result = computePlaceholder('app', [
      src('a/x', ['r.io']),
      src('b/y', ['r.io']),
      src('c/z', 'nope'),
    ]);
    for (const part of [result, result.secretNames, result.skipped, result.conflicts, ...result.conflicts])
      assert.ok(Object.isFrozen(part));
    assert.throws(() => (result.secretNames as string[]).push('evil/one'), TypeError);
  });

  it('keeps at most 32 parsed texts, dropping the least recently used', () => {
    clearPlaceholderMemos();
    const texts = Array.from({ length: 33 }, (_, i) => json({ [`r${i}.io`]: 'x' }));
    for (const text of texts) computePlaceholder('app', [src('a/x', text)]);
    assert.equal(placeholderWorkCounts().parses, 33);
    computePlaceholder('app', [src('b/y', texts[32] ?? '')]);
    assert.equal(placeholderWorkCounts().parses, 33, 'the most recent text is still parsed');
    computePlaceholder('app', [src('b/y', texts[0] ?? '')]);
    assert.equal(placeholderWorkCounts().parses, 34, 'the oldest text was dropped');
  });
});

describe('merged entries are written as serializeDockerConfigJson writes them', () => {
  const cases: Array<{ name: string; auths: Record<string, Record<string, string>> }> = [
    {
      name: 'a key named __proto__ stays an ordinary key',
      // JSON.parse makes __proto__ an own key; an object literal would set the prototype instead.
      auths: JSON.parse('{"__proto__":{"auth":"eA=="},"a.io":{"auth":"eQ=="}}') as Record<
        string,
        Record<string, string>
      >,
    },
    {
      name: 'unicode and quotes in keys and values are escaped',
      auths: { 'ré"g\\.io': { username: 'ü', password: '"\n' } },
    },
    {
      name: 'alias keys of one registry are all kept, every field in fixed order',
      auths: {
        'https://index.docker.io/v1/': { email: 'e', identitytoken: 't', auth: 'YTpi' },
        'docker.io': { registrytoken: 'r', password: 'p', username: 'u' },
      },
    },
  ];
  for (const { name, auths } of cases) {
    it(name, () => {
      const text = JSON.stringify({ auths });
      const parsed = parseDockerConfigJson(text);
      assert.ok(parsed.ok);
      assert.equal(parsed.registries.length, Object.keys(auths).length);
      clearPlaceholderMemos();
      assert.equal(
        computePlaceholder('app', [src('a/x', text)]).dockerconfigjson,
        serializeDockerConfigJson(parsed.registries),
      );
    });
  }
});
