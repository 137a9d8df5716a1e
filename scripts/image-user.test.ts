// The image and the Deployment that runs it, checked without a container engine:
// the image's USER and the Deployment's securityContext must agree on a numeric,
// non-root user (with runAsNonRoot the kubelet can only verify a numeric uid and
// refuses to start a container whose image names its user, e.g. `USER node`); every
// base image is pinned by digest; the image holds production dependencies only; it
// declares a HEALTHCHECK; the Deployment keeps the root filesystem read-only, probes
// the health endpoints and sets resources.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));

interface ImageUser {
  uid: string;
  gid: string | undefined;
}

/** The USER of the Dockerfile's last stage (the image that runs), or undefined when it sets none. */
export function finalStageUser(dockerfile: string): ImageUser | undefined {
  let user: ImageUser | undefined;
  for (const raw of dockerfile.split('\n')) {
    const line = raw.trim();
    if (/^FROM\s/i.test(line)) user = undefined;
    const m = /^USER\s+(\S+)\s*$/i.exec(line);
    if (m) {
      const [uid = '', gid] = m[1]!.split(':');
      user = { uid, gid };
    }
  }
  return user;
}

const isNonRootId = (id: string | undefined) => id !== undefined && /^[0-9]+$/.test(id) && Number(id) > 0;

interface PodSecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
}

function deploymentPodSecurity(): { pod: PodSecurityContext; containers: PodSecurityContext[] } {
  const text = readFileSync(join(repoRoot, 'deploy', 'plain', '20-deployment.yaml'), 'utf8');
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
  const deployment = docs.find((d) => d['kind'] === 'Deployment') as
    | {
        spec: {
          template: {
            spec: {
              securityContext?: PodSecurityContext;
              containers: Array<{ securityContext?: PodSecurityContext }>;
            };
          };
        };
      }
    | undefined;
  assert.ok(deployment, 'deploy/plain/20-deployment.yaml has a Deployment');
  const podSpec = deployment.spec.template.spec;
  return {
    pod: podSpec.securityContext ?? {},
    containers: podSpec.containers.map((c) => c.securityContext ?? {}),
  };
}

describe('finalStageUser', () => {
  const cases: Array<[string, string, ImageUser | undefined]> = [
    ['no USER', 'FROM a\nRUN x', undefined],
    ['named user', 'FROM a\nUSER node', { uid: 'node', gid: undefined }],
    ['uid:gid', 'FROM a\nUSER 65532:65532', { uid: '65532', gid: '65532' }],
    ['only the last stage counts', 'FROM a AS b\nUSER 1000\nFROM c', undefined],
    ['last USER of the last stage', 'FROM a\nUSER 1\nuser 2:3', { uid: '2', gid: '3' }],
  ];
  for (const [name, dockerfile, want] of cases) {
    test(name, () => assert.deepEqual(finalStageUser(dockerfile), want));
  }
});

describe('image user and Deployment securityContext', () => {
  const user = finalStageUser(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));

  test('the Dockerfile runs as a numeric, non-zero uid and gid', () => {
    assert.ok(user, 'the final stage sets USER');
    assert.ok(isNonRootId(user.uid), `USER uid must be a number > 0, got ${JSON.stringify(user.uid)}`);
    assert.ok(isNonRootId(user.gid), `USER gid must be a number > 0, got ${JSON.stringify(user.gid)}`);
  });

  test('the Deployment requires non-root and runs as the image user', () => {
    const { pod, containers } = deploymentPodSecurity();
    assert.equal(pod.runAsNonRoot, true, 'pod securityContext.runAsNonRoot');
    assert.equal(String(pod.runAsUser), user?.uid, 'pod securityContext.runAsUser = Dockerfile USER uid');
    assert.equal(String(pod.runAsGroup), user?.gid, 'pod securityContext.runAsGroup = Dockerfile USER gid');
    for (const c of containers) {
      // A container-level override would win over the pod's; it must not undo the rule.
      assert.notEqual(c.runAsNonRoot, false, 'container securityContext.runAsNonRoot');
      if (c.runAsUser !== undefined) assert.equal(String(c.runAsUser), user?.uid, 'container runAsUser');
      if (c.runAsGroup !== undefined) assert.equal(String(c.runAsGroup), user?.gid, 'container runAsGroup');
    }
  });
});

// ---------------------------------------------------------------------------
// Dockerfile stages

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions, joining `\`-continued lines and dropping comments. */
export function dockerfileStages(dockerfile: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of dockerfile.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending !== '') logical.push(pending.trim());
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!;
    if (keyword === 'FROM') {
      const from = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$/i.exec(args);
      assert.ok(from, `unreadable FROM ${args}`);
      stages.push({ from: from[1]!, name: from[2]?.toLowerCase(), instructions: [] });
    } else {
      assert.ok(stages.length > 0, `${keyword} before the first FROM`);
      stages.at(-1)!.instructions.push({ keyword, args });
    }
  }
  return stages;
}

/** Why a stage's base is not reproducible, or undefined when it is pinned by digest or is an earlier stage. */
export function unpinnedBase(stages: Stage[], index: number): string | undefined {
  const { from } = stages[index]!;
  if (stages.slice(0, index).some((s) => s.name === from.toLowerCase())) return undefined;
  if (/@sha256:[0-9a-f]{64}$/.test(from)) return undefined;
  return `FROM ${from} is not pinned by digest (image@sha256:<64 hex digits>)`;
}

/** The stage a `COPY --from=<stage> <src> ...` of the last stage takes `src` from, or undefined. */
function copiedFrom(stage: Stage, src: string): string | undefined {
  for (const { keyword, args } of stage.instructions) {
    const m = /^--from=(\S+)\s+(\S+)\s+\S+$/.exec(args);
    if (keyword === 'COPY' && m && m[2] === src) return m[1]!.toLowerCase();
  }
  return undefined;
}

const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);

describe('dockerfileStages and unpinnedBase', () => {
  const text = [
    '# comment',
    'FROM a@sha256:' + '0'.repeat(64) + ' AS build',
    'RUN npm ci \\',
    '  --omit=dev',
    'FROM build',
    'FROM b:1',
    'from c@sha256:abc',
    'HEALTHCHECK CMD x',
  ].join('\n');
  const stages = dockerfileStages(text);
  test('joins continued lines and names stages', () => {
    assert.deepEqual(
      stages.map((s) => [s.from, s.name]),
      [
        ['a@sha256:' + '0'.repeat(64), 'build'],
        ['build', undefined],
        ['b:1', undefined],
        ['c@sha256:abc', undefined],
      ],
    );
    assert.deepEqual(runs(stages[0]!), ['npm ci --omit=dev']);
    assert.deepEqual(stages[3]!.instructions, [{ keyword: 'HEALTHCHECK', args: 'CMD x' }]);
  });
  const cases: Array<[number, boolean]> = [
    [0, true], // full digest
    [1, true], // an earlier stage
    [2, false], // a tag only
    [3, false], // a truncated digest
  ];
  for (const [index, pinned] of cases) {
    test(`stage ${index} (${stages[index]!.from}) is ${pinned ? '' : 'not '}pinned`, () => {
      assert.equal(unpinnedBase(stages, index) === undefined, pinned);
    });
  }
});

describe('the image (Dockerfile)', () => {
  const stages = dockerfileStages(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  const final = stages.at(-1)!;

  test('pins every base image by digest', () => {
    const problems = stages.map((_, i) => unpinnedBase(stages, i)).filter((p) => p !== undefined);
    assert.deepEqual(problems, []);
  });

  test('ships node_modules from a stage that ran npm ci --omit=dev, and installs nothing in the final stage', () => {
    const source = copiedFrom(final, '/app/node_modules');
    assert.ok(source, 'the final stage copies /app/node_modules from another stage');
    const stage = stages.find((s) => s.name === source);
    assert.ok(stage, `no stage named ${source}`);
    assert.ok(
      runs(stage).some((r) => /\bnpm ci\b.*--omit=dev\b/.test(r)),
      `stage ${source} runs no "npm ci --omit=dev": ${JSON.stringify(runs(stage))}`,
    );
    assert.ok(!runs(stage).some((r) => /\bnpm (install|i)\b/.test(r)), `stage ${source} runs npm install`);
    assert.deepEqual(runs(final), [], 'the final stage runs nothing');
  });

  test('declares a HEALTHCHECK on /healthz of the exposed port', () => {
    const checks = final.instructions.filter((i) => i.keyword === 'HEALTHCHECK');
    assert.equal(checks.length, 1, 'one HEALTHCHECK in the final stage');
    const exposed = final.instructions.find((i) => i.keyword === 'EXPOSE')?.args;
    assert.ok(exposed, 'the final stage EXPOSEs the health port');
    assert.match(checks[0]!.args, new RegExp(`:${exposed}/healthz\\b`));
    assert.match(checks[0]!.args, /--timeout=\d+s/);
  });
});

// ---------------------------------------------------------------------------
// The Deployment

interface Probe {
  httpGet?: { path?: string; port?: string | number };
  timeoutSeconds?: number;
}

interface Container {
  name: string;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  args?: string[];
}

function deploymentContainers(): Container[] {
  const text = readFileSync(join(repoRoot, 'deploy', 'plain', '20-deployment.yaml'), 'utf8');
  const deployment = parseAllDocuments(text)
    .map((d) => d.toJS() as { kind?: string; spec?: { template: { spec: { containers: Container[] } } } })
    .find((d) => d.kind === 'Deployment');
  assert.ok(deployment?.spec, 'deploy/plain/20-deployment.yaml has a Deployment');
  return deployment.spec.template.spec.containers;
}

describe('the Deployment (deploy/plain/20-deployment.yaml)', () => {
  const containers = deploymentContainers();
  const dockerfile = dockerfileStages(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  const exposed = dockerfile.at(-1)!.instructions.find((i) => i.keyword === 'EXPOSE')?.args;

  for (const c of containers) {
    test(`container ${c.name} has a read-only root filesystem, no privilege escalation and no capabilities`, () => {
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
      assert.equal(c.securityContext?.capabilities?.add, undefined);
    });

    test(`container ${c.name} probes /healthz (liveness) and /readyz (readiness) on the image's health port`, () => {
      const port = (probe: Probe | undefined) => {
        const p = probe?.httpGet?.port;
        return typeof p === 'string' ? c.ports?.find((x) => x.name === p)?.containerPort : p;
      };
      assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
      assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
      assert.equal(String(port(c.livenessProbe)), exposed, 'liveness port = Dockerfile EXPOSE');
      assert.equal(String(port(c.readinessProbe)), exposed, 'readiness port = Dockerfile EXPOSE');
      assert.ok(c.args?.includes(`--health-port=${exposed}`), 'the operator serves health on that port');
      assert.ok((c.livenessProbe?.timeoutSeconds ?? 1) >= 5, 'liveness timeout >= 5s on a busy node');
    });

    test(`container ${c.name} requests CPU and memory and limits memory`, () => {
      assert.ok(c.resources?.requests?.['cpu'], 'requests.cpu');
      assert.ok(c.resources?.requests?.['memory'], 'requests.memory');
      assert.ok(c.resources?.limits?.['memory'], 'limits.memory');
    });
  }
});
