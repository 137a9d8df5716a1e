// The App controller (and through it the fetching controllers' shared run
// bookkeeping) against a small in-memory API: a write that fails once must
// never leave an App that is not fetched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { JSON_PATCH_NOT_APPLICABLE_MESSAGE } from '../../runtime/api-errors.js';
import type { EventRecorder } from '../../runtime/events.js';
import { InformerFactory } from '../../runtime/informer-factory.js';
import { ApiError, type KubeClient, type ResourceType, type WatchEvent } from '../../runtime/kube-client.js';
import { silentLogger, type Logger } from '../../runtime/logger.js';
import type { StageRunners } from '../app-pipeline.js';
import type { RunStatus } from '../run-status.js';
import { AppController } from './app.js';
import { PackageRepositoryController } from './package-repository.js';
import { APP_FINALIZER, PACKAGE_REPOSITORY_FINALIZER } from './resources.js';

type Obj = KubernetesObject & { status?: unknown; spec?: unknown };
type PatchOp = { op: string; path: string; value?: unknown };
/** Returns an error to fail this request with, or undefined to let it through. */
type Fault = (req: { plural: string; subresource?: string; ops: PatchOp[] }) => Error | undefined;

/** Just enough of kube-apiserver for one controller: list, watch, JSON patch, status subresource. */
class FakeApi {
  private readonly objects = new Map<string, Obj>();
  private readonly watchers = new Set<{ plural: string; emit: (e: WatchEvent<Obj>) => void }>();
  private rv = 1;
  readonly faults: Fault[] = [];

  put(plural: string, obj: Obj): void {
    const md = obj.metadata!;
    const key = `${plural}/${md.namespace}/${md.name}`;
    const existing = this.objects.get(key);
    md.resourceVersion = String(++this.rv);
    md.uid ??= `uid-${md.name}`;
    md.generation ??= 1;
    this.objects.set(key, structuredClone(obj));
    for (const w of this.watchers) {
      if (w.plural === plural)
        w.emit({ type: existing ? 'MODIFIED' : 'ADDED', object: structuredClone(obj) });
    }
  }

  read(plural: string, namespace: string, name: string): Obj | undefined {
    return this.objects.get(`${plural}/${namespace}/${name}`);
  }

  readonly client = {
    writesAllowed: () => true,
    list: async (rt: ResourceType) => ({
      items: [...this.objects.entries()]
        .filter(([k]) => k.startsWith(`${rt.plural}/`))
        .map(([, o]) => structuredClone(o)),
      resourceVersion: String(this.rv),
    }),
    watch: (rt: ResourceType, _opts: unknown, emit: (e: WatchEvent<Obj>) => void, signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        const w = { plural: rt.plural, emit };
        this.watchers.add(w);
        signal.addEventListener('abort', () => {
          this.watchers.delete(w);
          resolve();
        });
      }),
    jsonPatch: async (rt: ResourceType, ns: string, name: string, ops: PatchOp[], subresource?: string) => {
      const fault = this.faults.map((f) => f({ plural: rt.plural, subresource, ops })).find((e) => e);
      if (fault) throw fault;
      const current = structuredClone(this.read(rt.plural, ns, name));
      if (!current) throw new ApiError(404, 'not found', 'NotFound');
      const md = current.metadata!;
      for (const op of ops) {
        if (op.op === 'test' && op.path === '/metadata/resourceVersion' && md.resourceVersion !== op.value)
          throw new ApiError(422, JSON_PATCH_NOT_APPLICABLE_MESSAGE, 'Invalid');
        if (op.op === 'add' && op.path === '/status') current.status = op.value;
        if (op.op === 'add' && op.path === '/metadata/finalizers') md.finalizers = op.value as string[];
        if (op.op === 'add' && op.path === '/metadata/finalizers/-') md.finalizers!.push(op.value as string);
      }
      this.put(rt.plural, current);
      return current;
    },
  };
}

/** Fails the first `times` requests that match. */
function failFirst(
  times: number,
  matches: Parameters<Fault>[0] extends infer R ? (r: R) => boolean : never,
  err: () => Error,
): Fault {
  let left = times;
  return (req) => {
    if (left > 0 && matches(req)) {
      left -= 1;
      return err();
    }
    return undefined;
  };
}

const unavailable = () => new ApiError(503, 'the server is currently unable to handle the request');
const isStatusWrite = (r: { subresource?: string }) => r.subresource === 'status';

class TestAppController extends AppController {
  secretChanged(key: string): void {
    this.fetchAgain([key]);
  }
}

class TestRepositoryController extends PackageRepositoryController {
  secretChanged(key: string): void {
    this.fetchAgain([key]);
  }
}

type Kind = 'App' | 'PackageRepository';

/** An App (or a PackageRepository) with an inline fetch, and its controller on a fake API. */
async function startApp(opts: { workRoot: string; logger?: Logger; app?: Partial<Obj>; kind?: Kind }) {
  const kind = opts.kind ?? 'App';
  const plural = kind === 'App' ? 'apps' : 'packagerepositories';
  const api = new FakeApi();
  let fetches = 0;
  const runners: StageRunners = {
    fetch: [
      {
        name: 'inline',
        canRun: (s) => s.inline !== undefined,
        run: async () => {
          fetches++;
          return { exitCode: 0 };
        },
      },
    ],
    template: [{ name: 'ytt', canRun: () => true, run: async () => ({ exitCode: 0, stdout: '' }) }],
    deploy: [
      {
        name: 'kapp',
        canRun: () => true,
        deploy: async () => ({ exitCode: 0 }),
        delete: async () => ({ exitCode: 0 }),
      },
    ],
  };
  const inline = { inline: { paths: { 'config.yml': 'a: 1\n' } } };
  api.put(
    plural,
    kind === 'App'
      ? {
          apiVersion: 'kappctrl.k14s.io/v1alpha1',
          kind,
          metadata: { namespace: 'ns', name: 'a', finalizers: [APP_FINALIZER] },
          spec: { fetch: [inline], template: [{ ytt: {} }], deploy: [{ kapp: {} }] },
          ...opts.app,
        }
      : {
          apiVersion: 'packaging.carvel.dev/v1alpha1',
          kind,
          metadata: { namespace: 'ns', name: 'a', finalizers: [PACKAGE_REPOSITORY_FINALIZER] },
          spec: { fetch: inline },
        },
  );
  const client = api.client as unknown as KubeClient;
  const logger = opts.logger ?? silentLogger;
  const ctx = {
    client,
    informers: new InformerFactory(client, logger),
    events: { event: () => undefined, drain: async () => undefined } as unknown as EventRecorder,
    logger,
    concurrency: 2,
    resyncPeriodMs: 0,
  };
  const controller =
    kind === 'App'
      ? new TestAppController(ctx, { runners, workRoot: opts.workRoot })
      : new TestRepositoryController(ctx, {
          runners,
          workRoot: opts.workRoot,
          content: { sync: async () => ({ exitCode: 0 }) },
        });
  return {
    api,
    controller,
    fetches: () => fetches,
    status: () => api.read(plural, 'ns', 'a')?.status as RunStatus | undefined,
    async start() {
      await controller.start();
      ctx.informers.start();
      await ctx.informers.waitForSync();
      controller.runWorkers();
    },
    async stop() {
      await controller.stop();
      await ctx.informers.stop();
    },
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const succeeded = (s: RunStatus | undefined) =>
  s?.observedGeneration === 1 && s.conditions?.some((c) => c.type === 'ReconcileSucceeded') === true;

async function withWorkRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'fetching-controller-test-'));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('a run whose first writes or work dir fail is retried until the App has run', async (t) => {
  const cases: Array<{ name: string; faults?: Fault[]; workDirMissingFor?: number; kind?: Kind }> = [
    { name: 'the first status write fails', faults: [failFirst(1, isStatusWrite, unavailable)] },
    { name: 'the first two status writes fail', faults: [failFirst(2, isStatusWrite, unavailable)] },
    {
      name: 'the final status write fails',
      faults: [
        (() => {
          let writes = 0;
          return (r: { subresource?: string }) =>
            isStatusWrite(r) && ++writes === 3 ? unavailable() : undefined;
        })(),
      ],
    },
    { name: 'the work dir cannot be made (mkdtemp fails)', workDirMissingFor: 150 },
    {
      name: 'PackageRepository: the first status write fails',
      faults: [failFirst(1, isStatusWrite, unavailable)],
      kind: 'PackageRepository',
    },
    {
      name: 'PackageRepository: the work dir cannot be made (mkdtemp fails)',
      workDirMissingFor: 150,
      kind: 'PackageRepository',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () =>
      withWorkRoot(async (root) => {
        const workRoot = c.workDirMissingFor ? join(root, 'not-yet') : root;
        const app = await startApp({ workRoot, kind: c.kind });
        app.api.faults.push(...(c.faults ?? []));
        await app.start();
        try {
          if (c.workDirMissingFor) {
            await new Promise((r) => setTimeout(r, c.workDirMissingFor));
            assert.equal(app.fetches(), 0, `${c.name}: fetched without a work dir`);
            await mkdir(workRoot);
          }
          await until(`${c.name}: a successful run`, () => succeeded(app.status()));
          assert.ok(app.fetches() >= 1, c.name);
        } finally {
          await app.stop();
        }
      }),
    );
  }
});

test('a forced re-fetch (a fetch Secret changed) survives a failed status write', async () => {
  await withWorkRoot(async (root) => {
    const app = await startApp({ workRoot: root });
    await app.start();
    try {
      await until('the first run', () => succeeded(app.status()));
      await app.controller.queue.idle();
      assert.equal(app.fetches(), 1);
      app.api.faults.push(failFirst(1, isStatusWrite, unavailable));
      app.controller.secretChanged('ns/a');
      await until('the forced run', () => app.fetches() === 2);
    } finally {
      await app.stop();
    }
  });
});

test('a failed JSON patch test (422) on the finalizer is retried quietly from the newer object', async () => {
  await withWorkRoot(async (root) => {
    const errors: string[] = [];
    const logger: Logger = { ...silentLogger, error: (m) => void errors.push(m), child: () => logger };
    const app = await startApp({
      workRoot: root,
      logger,
      app: { metadata: { namespace: 'ns', name: 'a' } },
    });
    // Someone else's write lands between our cache read and our patch.
    app.api.faults.push(
      failFirst(
        1,
        (r) => r.ops.some((o) => o.op === 'test'),
        () => new ApiError(422, JSON_PATCH_NOT_APPLICABLE_MESSAGE, 'Invalid'),
      ),
    );
    await app.start();
    try {
      await until('a successful run', () => succeeded(app.status()));
      assert.deepEqual(app.api.read('apps', 'ns', 'a')?.metadata?.finalizers, [APP_FINALIZER]);
      assert.deepEqual(errors, []);
      assert.equal(app.controller.queue.stats.failures, 0);
      assert.equal(app.controller.queue.stats.staleReads, 1);
    } finally {
      await app.stop();
    }
  });
});
