// The image's USER and the Deployment's securityContext must agree on a numeric,
// non-root user: with runAsNonRoot the kubelet can only verify a numeric uid and
// refuses to start a container whose image names its user (e.g. `USER node`).
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
