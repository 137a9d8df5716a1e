import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  MAX_DEPLOY_STEPS,
  MAX_FETCH_STAGES,
  MAX_INLINE_PATHS,
  MAX_INLINE_PATHS_FROM,
  MAX_TEMPLATE_STEPS,
  NO_RUNNERS,
  relativePathProblem,
  runFetchPhase,
  fetchStageDirectory,
  fetchStageSecretName,
  planDelete,
  planFetch,
  runDelete,
  runPipeline,
  type DeployStageRunner,
  type FetchRequest,
  type FetchStageRunner,
  type StageRunners,
  type TemplateStageRunner,
} from './app-pipeline.js';
import type { AppSpec, FetchStage } from './types.js';

const bundle: FetchStage = { imgpkgBundle: { image: 'registry.corp.com/pkg:1.0.0' } };
const image: FetchStage = { image: { url: 'registry.corp.com/cfg:1', secretRef: { name: 'creds' } } };
const git: FetchStage = { git: { url: 'https://github.com/x/y', ref: 'main' } };

function fetcher(kinds: string[], log: FetchRequest[] = [], fail?: string): FetchStageRunner {
  return {
    name: 'fake-fetch',
    canRun: (stage) => kinds.some((k) => stage[k] !== undefined),
    run: async (req) => {
      log.push(req);
      return fail ? { exitCode: 1, error: fail } : { exitCode: 0, stdout: `fetched ${req.index}` };
    },
  };
}

const ytt: TemplateStageRunner = {
  name: 'fake-ytt',
  canRun: (step) => step.ytt !== undefined,
  run: async (req) => ({ exitCode: 0, stdout: `${req.input ?? ''}rendered-${req.index};` }),
};

function kapp(deployed: string[] = [], deleted: string[] = []): DeployStageRunner {
  return {
    name: 'fake-kapp',
    canRun: (step) => step.kapp !== undefined,
    deploy: async (req) => {
      deployed.push(req.manifests);
      return { exitCode: 0, stdout: 'Succeeded' };
    },
    delete: async (req) => {
      deleted.push(`${req.appName}:${req.index}`);
      return { exitCode: 0 };
    },
  };
}

let clock = 0;
const base = (spec: AppSpec, runners: StageRunners) => ({
  namespace: 'ns',
  appName: 'app',
  spec,
  runners,
  workDir: '/fetch-work',
  mkdir: async () => undefined,
  now: () => `2026-01-01T00:00:0${clock++ % 10}Z`,
});

describe('planFetch', () => {
  it('without runners, fails at the first fetch stage naming its index and kind', () => {
    assert.deepEqual(planFetch({ fetch: [bundle, image] }, NO_RUNNERS), {
      ok: false,
      failure: {
        phase: 'fetch',
        error: 'fetch stage 0 (imgpkgBundle): not supported yet',
        message: 'Fetching resources: fetch stage 0 (imgpkgBundle): not supported yet',
      },
    });
  });

  it('names the first stage no runner can perform', () => {
    const plan = planFetch({ fetch: [bundle, git] }, { ...NO_RUNNERS, fetch: [fetcher(['imgpkgBundle'])] });
    assert.equal(plan.ok, false);
    assert.equal(
      !plan.ok && plan.failure.message,
      'Fetching resources: fetch stage 1 (git): not supported yet',
    );
  });

  it('fails an App without fetch stages', () => {
    const plan = planFetch({}, NO_RUNNERS);
    assert.equal(
      !plan.ok && plan.failure.message,
      'Fetching resources: expected at least one fetch stage in spec.fetch',
    );
  });

  it('picks a runner for every stage when all kinds are supported', () => {
    const plan = planFetch(
      { fetch: [bundle, image] },
      { ...NO_RUNNERS, fetch: [fetcher(['imgpkgBundle', 'image'])] },
    );
    assert.equal(plan.ok, true);
  });
});

describe('relativePathProblem', () => {
  const cases: Array<[string, unknown, string | undefined]> = [
    ['unset', undefined, undefined],
    ['empty', '', undefined],
    ['one directory', 'config', undefined],
    ['nested, with a trailing slash', 'a/b/', undefined],
    ['dot components and dot-names', './.config/..data/.../x.', undefined],
    ['a doubled slash', 'a//b', undefined],
    ['longest allowed', 'a'.repeat(1024), undefined],
    ['parent directory', '..', "has a '..' component"],
    ['climbing out', '../../x', "has a '..' component"],
    ['climbing out midway', 'a/../../x', "has a '..' component"],
    ['a trailing ..', 'a/..', "has a '..' component"],
    ['absolute', '/etc/passwd', 'is absolute'],
    ['NUL', 'a\0b', 'contains a NUL character'],
    ['backslash', '..\\x', 'contains a backslash'],
    ['too long', 'a'.repeat(1025), 'is longer than 1024 characters'],
    ['not a string', 7, 'is not a string'],
  ];
  for (const [name, path, want] of cases) {
    it(`${name}: ${want ?? 'accepted'}`, () => assert.equal(relativePathProblem(path), want));
  }
});

describe('planFetch rejects what would leave the work directory or exceed a cap', () => {
  const inline = (more: Record<string, unknown>): FetchStage => ({
    inline: { paths: { 'a.yml': 'a' }, ...more },
  });
  const cases: Array<{ name: string; spec: AppSpec; error: string }> = [
    {
      name: 'a fetch path climbing out',
      spec: { fetch: [bundle, { ...image, path: '../../x' }] },
      error:
        'fetch stage 1 (image): path "../../x" must be a relative path inside the fetch directory (it has a \'..\' component)',
    },
    {
      name: 'an absolute fetch path, even for a single stage',
      spec: { fetch: [{ ...bundle, path: '/tmp/x' }] },
      error:
        'fetch stage 0 (imgpkgBundle): path "/tmp/x" must be a relative path inside the fetch directory (it is absolute)',
    },
    {
      name: 'an image subPath climbing out',
      spec: { fetch: [{ image: { url: 'r/i:1', subPath: 'a/../..' } }] },
      error:
        'fetch stage 0 (image): image.subPath "a/../.." must be a relative path inside the fetch directory (it has a \'..\' component)',
    },
    {
      name: 'an inline file path climbing out',
      spec: { fetch: [{ inline: { paths: { '../x.yml': 'x' } } }] },
      error:
        'fetch stage 0 (inline): inline.paths key "../x.yml" must be a relative path inside the fetch directory (it has a \'..\' component)',
    },
    {
      name: 'an inline directoryPath with a NUL',
      spec: { fetch: [inline({ pathsFrom: [{ secretRef: { name: 's', directoryPath: 'a\0' } }] })] },
      error:
        'fetch stage 0 (inline): inline.pathsFrom[0].secretRef.directoryPath "a\\u0000" must be a relative path inside the fetch directory (it contains a NUL character)',
    },
    {
      name: 'too many fetch stages (an object stored before the CRD capped them)',
      spec: { fetch: Array.from({ length: MAX_FETCH_STAGES + 1 }, () => bundle) },
      error: `spec.fetch has ${MAX_FETCH_STAGES + 1} items, more than the limit of ${MAX_FETCH_STAGES}`,
    },
    {
      name: 'too many template steps',
      spec: {
        fetch: [bundle],
        template: Array.from({ length: MAX_TEMPLATE_STEPS + 1 }, () => ({ ytt: {} })),
      },
      error: `spec.template has ${MAX_TEMPLATE_STEPS + 1} items, more than the limit of ${MAX_TEMPLATE_STEPS}`,
    },
    {
      name: 'too many deploy steps',
      spec: { fetch: [bundle], deploy: Array.from({ length: MAX_DEPLOY_STEPS + 1 }, () => ({ kapp: {} })) },
      error: `spec.deploy has ${MAX_DEPLOY_STEPS + 1} items, more than the limit of ${MAX_DEPLOY_STEPS}`,
    },
    {
      name: 'too many inline.pathsFrom',
      spec: {
        fetch: [
          inline({
            pathsFrom: Array.from({ length: MAX_INLINE_PATHS_FROM + 1 }, (_, i) => ({
              secretRef: { name: `s${i}` },
            })),
          }),
        ],
      },
      error: `fetch stage 0 (inline): inline.pathsFrom has ${MAX_INLINE_PATHS_FROM + 1} items, more than the limit of ${MAX_INLINE_PATHS_FROM}`,
    },
    {
      name: 'too many inline.paths',
      spec: {
        fetch: [
          {
            inline: {
              paths: Object.fromEntries(
                Array.from({ length: MAX_INLINE_PATHS + 1 }, (_, i) => [`f${i}`, '']),
              ),
            },
          },
        ],
      },
      error: `fetch stage 0 (inline): inline.paths has ${MAX_INLINE_PATHS + 1} items, more than the limit of ${MAX_INLINE_PATHS}`,
    },
  ];
  const all = { ...NO_RUNNERS, fetch: [fetcher(['imgpkgBundle', 'image', 'inline'])] };
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(planFetch(c.spec, all), {
        ok: false,
        failure: {
          phase: 'fetch',
          error: c.error,
          message: `Fetching resources: ${c.error}`,
          awaitsInputChange: true,
        },
      });
    });
  }

  it('accepts the same stages with paths inside the work directory', () => {
    const spec: AppSpec = {
      fetch: [
        { ...bundle, path: 'bundle' },
        { image: { url: 'r/i:1', subPath: 'config/' }, path: './cfg' },
        inline({ pathsFrom: [{ secretRef: { name: 's', directoryPath: 'values' } }] }),
      ],
    };
    assert.equal(planFetch(spec, all).ok, true);
  });

  it('writes nothing outside the work directory for path ../../x', async () => {
    const root = mkdtempSync(join(tmpdir(), 'app-pipeline-test-'));
    try {
      const workDir = join(root, 'a', 'work');
      await mkdir(workDir, { recursive: true });
      const log: FetchRequest[] = [];
      const result = await runFetchPhase({
        namespace: 'ns',
        spec: { fetch: [bundle, { ...image, path: '../../x' }] },
        runners: { ...NO_RUNNERS, fetch: [fetcher(['imgpkgBundle', 'image'], log)] },
        workDir,
        mkdir: async (p) => {
          await mkdir(p, { recursive: true });
        },
        now: () => '2026-01-01T00:00:00Z',
      });
      assert.match(
        result.failure?.error ?? '',
        /path "\.\.\/\.\.\/x" must be a relative path inside the fetch directory/,
      );
      assert.deepEqual(log, []);
      assert.equal(existsSync(join(root, 'x')), false);
      assert.deepEqual(readdirSync(join(root, 'a')), ['work']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('fetch stage helpers', () => {
  it('reads the secretRef name of each kind that takes one', () => {
    assert.equal(fetchStageSecretName(image), 'creds');
    assert.equal(fetchStageSecretName({ http: { url: 'u', secretRef: { name: 'h' } } }), 'h');
    assert.equal(
      fetchStageSecretName({ helmChart: { name: 'c', repository: { url: 'u', secretRef: { name: 'r' } } } }),
      'r',
    );
    assert.equal(fetchStageSecretName({ inline: { paths: {} } }), undefined);
    assert.equal(fetchStageSecretName(bundle), undefined);
  });

  it('puts a single stage in the work dir and several in their path or index', () => {
    assert.equal(fetchStageDirectory('/w', [bundle], 0), '/w');
    assert.equal(fetchStageDirectory('/w', [bundle, { ...image, path: 'cfg' }], 0), '/w/0');
    assert.equal(fetchStageDirectory('/w', [bundle, { ...image, path: 'cfg' }], 1), '/w/cfg');
  });

  it('refuses a stage directory outside the work dir', () => {
    for (const path of ['../../x', '/etc', 'a/../../b']) {
      assert.throws(
        () => fetchStageDirectory('/w', [bundle, { ...image, path }], 1),
        /^Error: fetch stage 1: path ".*" is not inside the fetch directory$/,
      );
    }
    assert.equal(fetchStageDirectory('/w', [bundle, { ...image, path: '.' }], 1), '/w');
  });
});

describe('runPipeline', () => {
  it('records an unsupported fetch stage as exit code 1 with the error, and stops', async () => {
    const result = await runPipeline(base({ fetch: [bundle], template: [{ ytt: {} }] }, NO_RUNNERS));
    assert.equal(
      result.failure?.message,
      'Fetching resources: fetch stage 0 (imgpkgBundle): not supported yet',
    );
    assert.equal(result.fetch?.exitCode, 1);
    assert.equal(result.fetch?.error, 'fetch stage 0 (imgpkgBundle): not supported yet');
    assert.ok(result.fetch?.startedAt && result.fetch.updatedAt);
    assert.equal(result.template, undefined);
    assert.equal(result.deploy, undefined);
  });

  it('passes each stage its secret and directory, then templates and deploys', async () => {
    const fetched: FetchRequest[] = [];
    const deployed: string[] = [];
    const progress: string[] = [];
    const result = await runPipeline({
      ...base(
        { fetch: [bundle, image], template: [{ ytt: {} }, { ytt: {} }], deploy: [{ kapp: {} }] },
        { fetch: [fetcher(['imgpkgBundle', 'image'], fetched)], template: [ytt], deploy: [kapp(deployed)] },
      ),
      progress: async (p) => {
        progress.push(Object.keys(p).join('+'));
      },
    });
    assert.equal(result.failure, undefined);
    assert.deepEqual(
      fetched.map((r) => [r.index, r.secretName, r.directory]),
      [
        [0, undefined, '/fetch-work/0'],
        [1, 'creds', '/fetch-work/1'],
      ],
    );
    assert.deepEqual(deployed, ['rendered-0;rendered-1;']);
    assert.equal(result.fetch?.exitCode, 0);
    assert.equal(result.template?.exitCode, 0);
    assert.equal(result.deploy?.exitCode, 0);
    assert.equal(result.deploy?.finished, true);
    assert.deepEqual(progress, ['fetch', 'fetch+template']);
  });

  it('reports a failing fetch with the stage named and the runner error', async () => {
    const result = await runPipeline(
      base(
        { fetch: [bundle] },
        { ...NO_RUNNERS, fetch: [fetcher(['imgpkgBundle'], [], 'UNAUTHORIZED: authentication required')] },
      ),
    );
    assert.equal(
      result.failure?.message,
      'Fetching resources: fetch stage 0 (imgpkgBundle): UNAUTHORIZED: authentication required',
    );
    // A registry may start accepting the credentials: retried on the failure backoff.
    assert.equal(result.failure?.awaitsInputChange, undefined);
  });

  it('fails a template step no runner supports after a successful fetch', async () => {
    const result = await runPipeline(
      base(
        { fetch: [bundle], template: [{ helmTemplate: {} }] },
        { ...NO_RUNNERS, fetch: [fetcher(['imgpkgBundle'])] },
      ),
    );
    assert.equal(
      result.failure?.message,
      'Templating dir: template stage 0 (helmTemplate): not supported yet',
    );
    assert.equal(result.fetch?.exitCode, 0);
    assert.equal(result.template?.exitCode, 1);
    // Only a spec change can fix it: the App is not refetched on the failure backoff.
    assert.equal(result.failure?.awaitsInputChange, true);
  });

  it('fails a deploy step no runner supports', async () => {
    const result = await runPipeline(
      base(
        { fetch: [bundle], template: [{ ytt: {} }], deploy: [{ kapp: {} }] },
        { ...NO_RUNNERS, fetch: [fetcher(['imgpkgBundle'])], template: [ytt] },
      ),
    );
    assert.equal(result.failure?.message, 'Deploying: deploy stage 0 (kapp): not supported yet');
    assert.equal(result.deploy?.finished, true);
    assert.equal(result.failure?.awaitsInputChange, true);
  });

  it('turns a runner exception into a failed stage', async () => {
    const throwing: FetchStageRunner = {
      name: 'boom',
      canRun: () => true,
      run: async () => {
        throw new Error('socket hang up');
      },
    };
    const result = await runPipeline(base({ fetch: [git] }, { ...NO_RUNNERS, fetch: [throwing] }));
    assert.equal(result.failure?.message, 'Fetching resources: fetch stage 0 (git): socket hang up');
  });
});

describe('planDelete / runDelete', () => {
  const deployedStatus = { deploy: { startedAt: '2026-01-01T00:00:00Z', exitCode: 0 } };

  it('has nothing to do with noopDelete, even after a deploy', () => {
    assert.deepEqual(planDelete({ noopDelete: true, deploy: [{ kapp: {} }] }, deployedStatus, NO_RUNNERS), {
      action: 'none',
      reason: 'noopDelete',
    });
  });

  it('has nothing to do when nothing was ever deployed', () => {
    assert.deepEqual(planDelete({ deploy: [{ kapp: {} }] }, { deploy: {} }, NO_RUNNERS), {
      action: 'none',
      reason: 'nothing-deployed',
    });
  });

  it('refuses to drop deployed resources it cannot delete, and says how to leave them', () => {
    assert.deepEqual(planDelete({ deploy: [{ kapp: {} }] }, deployedStatus, NO_RUNNERS), {
      action: 'fail',
      failure: {
        phase: 'delete',
        error:
          'deploy stage 0 (kapp): not supported yet (with spec.noopDelete: true the App is removed and its deployed resources are left in place)',
        message:
          'Deleting resources: deploy stage 0 (kapp): not supported yet (with spec.noopDelete: true the App is removed and its deployed resources are left in place)',
      },
    });
  });

  it('deletes through the deploy runners in reverse order', async () => {
    const deleted: string[] = [];
    const runner = kapp([], deleted);
    const spec: AppSpec = { deploy: [{ kapp: {} }, { kapp: {} }] };
    const plan = planDelete(spec, deployedStatus, { ...NO_RUNNERS, deploy: [runner] });
    assert.equal(plan.action, 'run');
    const failure = await runDelete({
      namespace: 'ns',
      appName: 'app',
      spec,
      runners: plan.action === 'run' ? plan.runners : [],
    });
    assert.equal(failure, undefined);
    assert.deepEqual(deleted, ['app:1', 'app:0']);
  });
});
