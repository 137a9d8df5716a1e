import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NO_RUNNERS,
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
  workDir: '/work',
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
        [0, undefined, '/work/0'],
        [1, 'creds', '/work/1'],
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
