// The App's fetch → template → deploy pipeline behind runner interfaces.
// Runners for a stage kind plug in here (the registry fetcher is the next
// issue); a stage kind that no runner can perform fails with a clear
// "not supported yet" message, never a silent success. No Kubernetes I/O:
// the controller writes the statuses this module returns.

import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { domainMetrics, type FetchResult } from '../runtime/domain-metrics.js';
import { fetchStageKind, type FetchStageKind } from './fetch-secrets.js';
import type { AppSpec, FetchStage, InlinePathsFrom, JsonObject, TemplateStep } from './types.js';

/** What a stage run reports; exitCode 0 means success. */
export interface StageOutcome {
  exitCode: number;
  error?: string;
  /**
   * The failure cannot go away before a watched input changes (a missing or
   * unusable Secret, the operator configuration, the object's spec): the run is not
   * retried on the failure backoff, a change of that input runs it at once.
   */
  awaitsInputChange?: boolean;
  stdout?: string;
  stderr?: string;
  /** Bytes a fetch stage pulled, when it knows (for the fetch metrics). */
  bytes?: number;
}

export interface FetchRequest {
  /** Namespace of the App / PackageRepository: secretRef names a Secret there. */
  namespace: string;
  index: number;
  stage: FetchStage;
  /** secretRef.name the stage uses (after placeholders and annotations), if any. */
  secretName: string | undefined;
  /** Directory the stage writes its content into (already created). */
  directory: string;
}

export interface FetchStageRunner {
  readonly name: string;
  canRun(stage: FetchStage): boolean;
  run(request: FetchRequest): Promise<StageOutcome>;
}

export interface TemplateRequest {
  namespace: string;
  index: number;
  step: TemplateStep;
  /** The fetched content. */
  directory: string;
  /** Output of the previous template step (YAML stream), if any. */
  input: string | undefined;
}

export interface TemplateStageRunner {
  readonly name: string;
  canRun(step: TemplateStep): boolean;
  /** `stdout` carries the rendered YAML stream on success. */
  run(request: TemplateRequest): Promise<StageOutcome>;
}

export interface DeployRequest {
  namespace: string;
  appName: string;
  index: number;
  step: JsonObject;
  spec: AppSpec;
  /** Rendered manifests (empty for delete). */
  manifests: string;
}

export interface DeployStageRunner {
  readonly name: string;
  canRun(step: JsonObject): boolean;
  deploy(request: DeployRequest): Promise<StageOutcome>;
  delete(request: DeployRequest): Promise<StageOutcome>;
}

export interface StageRunners {
  fetch: readonly FetchStageRunner[];
  template: readonly TemplateStageRunner[];
  deploy: readonly DeployStageRunner[];
}

/** No stage kind can run yet: every App fails at its first fetch stage. */
export const NO_RUNNERS: StageRunners = { fetch: [], template: [], deploy: [] };

const TEMPLATE_KINDS = ['ytt', 'kbld', 'helmTemplate', 'kustomize', 'jsonnet', 'sops', 'cue'] as const;

export function templateStepKind(step: TemplateStep): string {
  for (const kind of TEMPLATE_KINDS) if (step[kind] !== undefined && step[kind] !== null) return kind;
  return 'unknown';
}

export function deployStepKind(step: JsonObject): string {
  if (step.kapp !== undefined && step.kapp !== null) return 'kapp';
  return 'unknown';
}

export type PipelinePhase = 'fetch' | 'template' | 'deploy' | 'delete';

const PHASE_PREFIX: Record<PipelinePhase, string> = {
  fetch: 'Fetching resources',
  template: 'Templating dir',
  deploy: 'Deploying',
  delete: 'Deleting resources',
};

/** A failed pipeline: `error` is the stage-level text, `message` has the phase prefix. */
export interface PipelineFailure {
  phase: PipelinePhase;
  error: string;
  message: string;
  /** See StageOutcome.awaitsInputChange. */
  awaitsInputChange?: boolean;
}

export function pipelineFailure(phase: PipelinePhase, error: string): PipelineFailure {
  return { phase, error, message: `${PHASE_PREFIX[phase]}: ${error}` };
}

const NOT_SUPPORTED = 'not supported yet';

export function notSupported(what: string, index: number, kind: string): string {
  return `${what} ${index} (${kind}): ${NOT_SUPPORTED}`;
}

// Caps on the lists that drive per-item work. The CRDs carry the same numbers
// (maxItems / maxProperties); these catch objects stored before the CRDs had them.
export const MAX_FETCH_STAGES = 100;
export const MAX_TEMPLATE_STEPS = 100;
export const MAX_DEPLOY_STEPS = 10;
export const MAX_INLINE_PATHS = 1000;
export const MAX_INLINE_PATHS_FROM = 100;
/** Characters of a path field (fetch path, subPath, directoryPath, inline file path). */
export const MAX_RELATIVE_PATH_LENGTH = 1024;

/**
 * Why `path` cannot name a place inside the directory it is relative to, or
 * undefined when it can. The CRDs' pattern on these fields says the same:
 * empty, or `/`-separated components, none `..`, no leading `/`, no NUL or
 * backslash.
 */
export function relativePathProblem(path: unknown): string | undefined {
  if (path === undefined || path === null || path === '') return undefined;
  if (typeof path !== 'string') return 'is not a string';
  if (path.length > MAX_RELATIVE_PATH_LENGTH) return `is longer than ${MAX_RELATIVE_PATH_LENGTH} characters`;
  if (path.includes('\0')) return 'contains a NUL character';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.startsWith('/')) return 'is absolute';
  if (path.split('/').includes('..')) return "has a '..' component";
  return undefined;
}

const shownPath = (path: unknown): string => {
  const text = typeof path === 'string' ? path : String(path);
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
};

function countProblem(field: string, value: unknown, limit: number): string | undefined {
  const count = Array.isArray(value)
    ? value.length
    : value !== null && typeof value === 'object'
      ? Object.keys(value).length
      : 0;
  return count > limit ? `${field} has ${count} items, more than the limit of ${limit}` : undefined;
}

/** The first problem of the fetch stage's user-given paths and list sizes, if any. */
function fetchStageProblem(stage: FetchStage): string | undefined {
  const inline = stage.inline ?? undefined;
  const pathsFrom: unknown[] = Array.isArray(inline?.['pathsFrom']) ? inline['pathsFrom'] : [];
  const counted =
    countProblem('inline.paths', inline?.['paths'], MAX_INLINE_PATHS) ??
    countProblem('inline.pathsFrom', inline?.['pathsFrom'], MAX_INLINE_PATHS_FROM);
  if (counted) return counted;
  const paths: Array<[string, unknown]> = [
    ['path', stage.path],
    ['image.subPath', stage.image?.subPath],
    ['http.subPath', (stage.http as { subPath?: unknown } | null | undefined)?.subPath],
    ['git.subPath', (stage.git as { subPath?: unknown } | null | undefined)?.subPath],
  ];
  const inlinePaths = inline?.['paths'];
  if (inlinePaths !== null && typeof inlinePaths === 'object' && !Array.isArray(inlinePaths)) {
    for (const key of Object.keys(inlinePaths)) paths.push(['inline.paths key', key]);
  }
  pathsFrom.forEach((source, i) => {
    const from = (source ?? {}) as InlinePathsFrom;
    paths.push([`inline.pathsFrom[${i}].secretRef.directoryPath`, from.secretRef?.directoryPath]);
    paths.push([`inline.pathsFrom[${i}].configMapRef.directoryPath`, from.configMapRef?.directoryPath]);
  });
  for (const [field, path] of paths) {
    const problem = relativePathProblem(path);
    if (problem) {
      return `${field} ${shownPath(path)} must be a relative path inside the fetch directory (it ${problem})`;
    }
  }
  return undefined;
}

/** A spec-level failure (list over its cap, a path that leaves the work directory), or undefined. */
function specProblem(spec: AppSpec | undefined): PipelineFailure | undefined {
  const counted =
    countProblem('spec.fetch', spec?.fetch, MAX_FETCH_STAGES) ??
    countProblem('spec.template', spec?.template, MAX_TEMPLATE_STEPS) ??
    countProblem('spec.deploy', spec?.deploy, MAX_DEPLOY_STEPS);
  if (counted) return { ...pipelineFailure('fetch', counted), awaitsInputChange: true };
  for (const [index, stage] of (spec?.fetch ?? []).entries()) {
    const problem = fetchStageProblem(stage ?? {});
    if (problem) {
      const error = `fetch stage ${index} (${fetchStageKind(stage ?? {})}): ${problem}`;
      return { ...pipelineFailure('fetch', error), awaitsInputChange: true };
    }
  }
  return undefined;
}

/**
 * The runner for each fetch stage, or the failure naming the first problem:
 * a list over its cap, a path field that leaves the fetch directory, or a
 * stage none can run.
 */
export function planFetch(
  spec: AppSpec | undefined,
  runners: StageRunners,
): { ok: true; runners: FetchStageRunner[] } | { ok: false; failure: PipelineFailure } {
  const stages = spec?.fetch ?? [];
  if (stages.length === 0) {
    return {
      ok: false,
      failure: pipelineFailure('fetch', 'expected at least one fetch stage in spec.fetch'),
    };
  }
  const problem = specProblem(spec);
  if (problem) return { ok: false, failure: problem };
  const chosen: FetchStageRunner[] = [];
  for (const [index, stage] of stages.entries()) {
    const runner = runners.fetch.find((r) => r.canRun(stage));
    if (!runner) {
      const kind: FetchStageKind = fetchStageKind(stage);
      return { ok: false, failure: pipelineFailure('fetch', notSupported('fetch stage', index, kind)) };
    }
    chosen.push(runner);
  }
  return { ok: true, runners: chosen };
}

/** secretRef.name of a fetch stage, for the kinds that take one. */
export function fetchStageSecretName(stage: FetchStage): string | undefined {
  switch (fetchStageKind(stage)) {
    case 'image':
      return stage.image?.secretRef?.name;
    case 'imgpkgBundle':
      return stage.imgpkgBundle?.secretRef?.name;
    case 'http':
      return stage.http?.secretRef?.name;
    case 'git':
      return stage.git?.secretRef?.name;
    case 'helmChart':
      return stage.helmChart?.repository?.secretRef?.name;
    default:
      return undefined;
  }
}

/**
 * Directory of fetch stage `index`: the work dir itself for a single stage,
 * else `path` or the index. Throws when the result would not be inside the
 * work dir (planFetch rejects such paths first; this is the last guard).
 */
export function fetchStageDirectory(workDir: string, stages: readonly FetchStage[], index: number): string {
  if (stages.length === 1) return workDir;
  const stage = stages[index];
  const directory = join(workDir, stage?.path ? stage.path : String(index));
  const inside = relative(resolve(workDir), resolve(directory));
  if (
    relativePathProblem(stage?.path) !== undefined ||
    inside === '..' ||
    inside.startsWith(`..${sep}`) ||
    isAbsolute(inside)
  ) {
    throw new Error(`fetch stage ${index}: path ${shownPath(stage?.path)} is not inside the fetch directory`);
  }
  return directory;
}

/** Status of one stage, in the shape of the CRD's status.fetch / template / deploy. */
export interface StageStatus {
  startedAt?: string;
  updatedAt?: string;
  exitCode?: number;
  error?: string;
  stdout?: string;
  stderr?: string;
  finished?: boolean;
  [key: string]: unknown;
}

export function stageStatus(
  outcome: StageOutcome,
  times: { startedAt?: string; updatedAt: string },
  extra: Partial<StageStatus> = {},
): StageStatus {
  const s: StageStatus = {};
  if (times.startedAt !== undefined) s.startedAt = times.startedAt;
  s.updatedAt = times.updatedAt;
  s.exitCode = outcome.exitCode;
  if (outcome.error) s.error = outcome.error;
  if (outcome.stdout) s.stdout = outcome.stdout;
  if (outcome.stderr) s.stderr = outcome.stderr;
  return { ...s, ...extra };
}

export interface PipelineInput {
  namespace: string;
  appName: string;
  spec: AppSpec;
  runners: StageRunners;
  /** Empty directory for this run; the caller removes it afterwards. */
  workDir: string;
  mkdir(path: string): Promise<void>;
  /** RFC 3339 timestamp (second precision). */
  now(): string;
  /** Called after each phase with the statuses so far, so the caller can publish progress. */
  progress?(partial: PipelineResult): Promise<void>;
}

export interface PipelineResult {
  fetch?: StageStatus;
  template?: StageStatus;
  deploy?: StageStatus;
  failure?: PipelineFailure;
}

/** The metrics' result label of a fetch stage. */
export function fetchResult(outcome: StageOutcome): FetchResult {
  if (outcome.exitCode === 0) return 'succeeded';
  return outcome.awaitsInputChange ? 'awaiting_change' : 'failed';
}

function failedOutcome(outcome: StageOutcome, label: string): string {
  const detail = outcome.error || outcome.stderr?.trim() || `exit code ${outcome.exitCode}`;
  return `${label}: ${detail}`;
}

export type FetchPhaseInput = Pick<
  PipelineInput,
  'namespace' | 'spec' | 'runners' | 'workDir' | 'mkdir' | 'now'
>;

/** Runs every fetch stage into its directory of the work dir; stops at the first failure. */
export async function runFetchPhase(
  input: FetchPhaseInput,
): Promise<{ status: StageStatus; failure?: PipelineFailure }> {
  const startedAt = input.now();
  const planned = planFetch(input.spec, input.runners);
  if (!planned.ok) {
    return {
      status: stageStatus(
        { exitCode: 1, error: planned.failure.error },
        { startedAt, updatedAt: input.now() },
      ),
      failure: planned.failure,
    };
  }
  const stages = input.spec.fetch ?? [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  for (const [index, stage] of stages.entries()) {
    const runner = planned.runners[index] as FetchStageRunner;
    let outcome: StageOutcome;
    const fetchStartedAt = performance.now();
    try {
      const directory = fetchStageDirectory(input.workDir, stages, index);
      await input.mkdir(directory);
      outcome = await runner.run({
        namespace: input.namespace,
        index,
        stage,
        secretName: fetchStageSecretName(stage),
        directory,
      });
    } catch (err) {
      outcome = { exitCode: 1, error: err instanceof Error ? err.message : String(err) };
    }
    domainMetrics.fetched(
      fetchStageKind(stage),
      fetchResult(outcome),
      (performance.now() - fetchStartedAt) / 1000,
      outcome.bytes ?? 0,
    );
    if (outcome.stdout) stdout.push(outcome.stdout);
    if (outcome.stderr) stderr.push(outcome.stderr);
    if (outcome.exitCode !== 0) {
      const error = failedOutcome(outcome, `fetch stage ${index} (${fetchStageKind(stage)})`);
      const failure = pipelineFailure('fetch', error);
      if (outcome.awaitsInputChange) failure.awaitsInputChange = true;
      return {
        status: stageStatus(
          { exitCode: outcome.exitCode, error, stdout: stdout.join('\n'), stderr: stderr.join('\n') },
          { startedAt, updatedAt: input.now() },
        ),
        failure,
      };
    }
  }
  return {
    status: stageStatus(
      { exitCode: 0, stdout: stdout.join('\n'), stderr: stderr.join('\n') },
      { startedAt, updatedAt: input.now() },
    ),
  };
}

/**
 * Runs fetch (every stage), then template (each step gets the previous
 * step's output), then deploy. Stops at the first failure. A stage kind that
 * no runner can perform fails with "<stage> <i> (<kind>): not supported yet".
 */
export async function runPipeline(input: PipelineInput): Promise<PipelineResult> {
  const { spec, runners } = input;
  const result: PipelineResult = {};
  const report = async () => {
    if (input.progress) await input.progress({ ...result });
  };

  const fetched = await runFetchPhase(input);
  result.fetch = fetched.status;
  if (fetched.failure) {
    result.failure = fetched.failure;
    return result;
  }
  await report();

  // template
  const steps = spec.template ?? [];
  let rendered: string | undefined;
  if (steps.length === 0) {
    result.template = stageStatus(
      { exitCode: 1, error: 'expected at least one template step in spec.template' },
      { updatedAt: input.now() },
    );
    result.failure = pipelineFailure('template', 'expected at least one template step in spec.template');
    return result;
  }
  for (const [index, step] of steps.entries()) {
    const runner = runners.template.find((r) => r.canRun(step));
    let outcome: StageOutcome;
    const label = `template stage ${index} (${templateStepKind(step)})`;
    if (!runner) {
      // Only a spec change can give this step a runner: no point retrying on a timer.
      outcome = { exitCode: 1, error: NOT_SUPPORTED, awaitsInputChange: true };
    } else {
      try {
        outcome = await runner.run({
          namespace: input.namespace,
          index,
          step,
          directory: input.workDir,
          input: rendered,
        });
      } catch (err) {
        outcome = { exitCode: 1, error: err instanceof Error ? err.message : String(err) };
      }
    }
    if (outcome.exitCode !== 0) {
      const error = failedOutcome(outcome, label);
      result.template = stageStatus(
        { exitCode: outcome.exitCode, error, stderr: outcome.stderr },
        { updatedAt: input.now() },
      );
      result.failure = pipelineFailure('template', error);
      if (outcome.awaitsInputChange) result.failure.awaitsInputChange = true;
      return result;
    }
    rendered = outcome.stdout ?? '';
  }
  result.template = stageStatus({ exitCode: 0 }, { updatedAt: input.now() });
  await report();

  // deploy
  const deploySteps = spec.deploy ?? [];
  const deployStartedAt = input.now();
  if (deploySteps.length === 0) {
    const error = 'expected at least one deploy step in spec.deploy';
    result.deploy = stageStatus(
      { exitCode: 1, error },
      { startedAt: deployStartedAt, updatedAt: input.now() },
      { finished: true },
    );
    result.failure = pipelineFailure('deploy', error);
    return result;
  }
  const deployOut: string[] = [];
  for (const [index, step] of deploySteps.entries()) {
    const runner = runners.deploy.find((r) => r.canRun(step));
    let outcome: StageOutcome;
    const label = `deploy stage ${index} (${deployStepKind(step)})`;
    if (!runner) {
      // Only a spec change can give this step a runner: no point retrying on a timer.
      outcome = { exitCode: 1, error: NOT_SUPPORTED, awaitsInputChange: true };
    } else {
      try {
        outcome = await runner.deploy({
          namespace: input.namespace,
          appName: input.appName,
          index,
          step,
          spec,
          manifests: rendered ?? '',
        });
      } catch (err) {
        outcome = { exitCode: 1, error: err instanceof Error ? err.message : String(err) };
      }
    }
    if (outcome.stdout) deployOut.push(outcome.stdout);
    if (outcome.exitCode !== 0) {
      const error = failedOutcome(outcome, label);
      result.deploy = stageStatus(
        { exitCode: outcome.exitCode, error, stdout: deployOut.join('\n'), stderr: outcome.stderr },
        { startedAt: deployStartedAt, updatedAt: input.now() },
        { finished: true },
      );
      result.failure = pipelineFailure('deploy', error);
      if (outcome.awaitsInputChange) result.failure.awaitsInputChange = true;
      return result;
    }
  }
  result.deploy = stageStatus(
    { exitCode: 0, stdout: deployOut.join('\n') },
    { startedAt: deployStartedAt, updatedAt: input.now() },
    { finished: true },
  );
  return result;
}

/** True when the status records a deploy that may have created resources. */
export function hasDeployRecord(status: { deploy?: StageStatus } | undefined): boolean {
  return typeof status?.deploy?.startedAt === 'string' && status.deploy.startedAt !== '';
}

export const NOOP_DELETE_HINT =
  'with spec.noopDelete: true the App is removed and its deployed resources are left in place';

export type DeletePlan =
  | { action: 'none'; reason: 'noopDelete' | 'nothing-deployed' }
  | { action: 'fail'; failure: PipelineFailure }
  | { action: 'run'; runners: DeployStageRunner[] };

/**
 * Deleting an App: nothing to do with noopDelete or when nothing was ever
 * deployed; otherwise every deploy step needs a runner that deletes what it
 * deployed, and a step no runner can delete fails (the App keeps its finalizer).
 */
export function planDelete(
  spec: AppSpec | undefined,
  status: { deploy?: StageStatus } | undefined,
  runners: StageRunners,
): DeletePlan {
  if (spec?.noopDelete === true) return { action: 'none', reason: 'noopDelete' };
  if (!hasDeployRecord(status)) return { action: 'none', reason: 'nothing-deployed' };
  const chosen: DeployStageRunner[] = [];
  for (const [index, step] of (spec?.deploy ?? []).entries()) {
    const runner = runners.deploy.find((r) => r.canRun(step));
    if (!runner) {
      return {
        action: 'fail',
        failure: pipelineFailure(
          'delete',
          `${notSupported('deploy stage', index, deployStepKind(step))} (${NOOP_DELETE_HINT})`,
        ),
      };
    }
    chosen.push(runner);
  }
  return { action: 'run', runners: chosen };
}

/** Runs the deletes planned by planDelete, in reverse deploy order; stops at the first failure. */
export async function runDelete(input: {
  namespace: string;
  appName: string;
  spec: AppSpec;
  runners: readonly DeployStageRunner[];
}): Promise<PipelineFailure | undefined> {
  const steps = input.spec.deploy ?? [];
  for (let index = steps.length - 1; index >= 0; index--) {
    const step = steps[index] as JsonObject;
    const runner = input.runners[index];
    if (!runner) continue;
    let outcome: StageOutcome;
    try {
      outcome = await runner.delete({
        namespace: input.namespace,
        appName: input.appName,
        index,
        step,
        spec: input.spec,
        manifests: '',
      });
    } catch (err) {
      outcome = { exitCode: 1, error: err instanceof Error ? err.message : String(err) };
    }
    if (outcome.exitCode !== 0) {
      return pipelineFailure(
        'delete',
        failedOutcome(outcome, `deploy stage ${index} (${deployStepKind(step)})`),
      );
    }
  }
  return undefined;
}
