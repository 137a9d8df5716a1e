// Tests for the CRD → TypeScript generator (scripts/codegen.ts).
//   npx tsx --test scripts/codegen.test.ts
import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { after, describe, test } from 'node:test';
import ts from 'typescript';
import { stringify } from 'yaml';
import { generate, generateModule, main, parseCrds, pascal, repoRoot, singular, type Io } from './codegen.js';

const fixtures = join(repoRoot, 'scripts', 'fixtures', 'codegen');
const tempRoot = mkdtempSync(join(tmpdir(), 'codegen-test-'));
after(() => rmSync(tempRoot, { recursive: true, force: true }));

let tempCount = 0;
/** A fresh directory holding `crds/` (a copy of the fixtures, or the given files) and an empty `generated/`. */
function workspace(files?: Record<string, string>): { crds: string; out: string } {
  const dir = join(tempRoot, String(tempCount++));
  const crds = join(dir, 'crds');
  mkdirSync(crds, { recursive: true });
  if (files) for (const [name, text] of Object.entries(files)) writeFileSync(join(crds, name), text);
  else cpSync(fixtures, crds, { recursive: true });
  return { crds, out: join(dir, 'generated') };
}

type Schema = Record<string, unknown>;

interface CrdInput {
  kind?: string;
  scope?: 'Namespaced' | 'Cluster';
}

/** CRD YAML for a Widget (or the given kind) whose only version, v1, has the given openAPIV3Schema. */
function crdYaml(schema: Schema, input: CrdInput = {}): string {
  const kind = input.kind ?? 'Widget';
  const plural = `${kind.toLowerCase()}s`;
  const versions = [{ name: 'v1', storage: true, schema }];
  return stringify({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.fixtures.codegen.example` },
    spec: {
      group: 'fixtures.codegen.example',
      names: { kind, plural, singular: kind.toLowerCase() },
      scope: input.scope ?? 'Namespaced',
      versions: versions.map((v) => ({
        name: v.name,
        served: true,
        storage: v.storage,
        schema: { openAPIV3Schema: v.schema },
      })),
    },
  });
}

/** openAPIV3Schema with the given spec properties (and required list). */
function withSpec(properties: Schema, required?: string[]): Schema {
  return {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: { type: 'object', properties, ...(required ? { required } : {}) },
    },
  };
}

async function moduleFor(schema: Schema, input: CrdInput = {}): Promise<string> {
  const [crd] = parseCrds(crdYaml(schema, input), 'widget.yaml');
  assert.ok(crd);
  const version = crd.versions.find((v) => v.storage)!;
  return (await generateModule(crd, version, 'crds/widget.yaml')).content;
}

function capture(): Io & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, log: (l) => out.push(l), error: (l) => err.push(l) };
}

function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string, prefix: string): void => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d)) {
      const full = join(d, e);
      if (statSync(full).isDirectory()) walk(full, `${prefix}${e}/`);
      else files[`${prefix}${e}`] = readFileSync(full, 'utf8');
    }
  };
  walk(dir, '');
  return files;
}

/**
 * Type-checks in-memory files with the TypeScript compiler API, with the repository's compiler settings.
 * The files are placed (virtually, never written) under scripts/, so that `@kubernetes/client-node` and
 * package.json's `"type": "module"` resolve as they do for generated/. Returns the diagnostics.
 */
function typeCheck(files: Record<string, string>): string[] {
  const dir = join(repoRoot, 'scripts', '.codegen-typecheck');
  const virtual = new Map(Object.entries(files).map(([name, text]) => [join(dir, ...name.split('/')), text]));
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noUncheckedIndexedAccess: true,
    isolatedModules: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  };
  const host = ts.createCompilerHost(options, true);
  const real = {
    fileExists: host.fileExists.bind(host),
    readFile: host.readFile.bind(host),
    getSourceFile: host.getSourceFile.bind(host),
    directoryExists: host.directoryExists?.bind(host),
  };
  host.fileExists = (f) => virtual.has(f) || real.fileExists(f);
  host.readFile = (f) => virtual.get(f) ?? real.readFile(f);
  host.directoryExists = (d) =>
    [...virtual.keys()].some((f) => f.startsWith(d + sep)) || (real.directoryExists?.(d) ?? false);
  host.getSourceFile = (f, language, ...rest) => {
    const text = virtual.get(f);
    return text !== undefined
      ? ts.createSourceFile(f, text, language)
      : real.getSourceFile(f, language, ...rest);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return message;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName.slice(dir.length + 1)}:${line + 1}: ${message}`;
  });
}

describe('schema features become the right TypeScript', () => {
  const cases: {
    name: string;
    properties: Schema;
    required?: string[];
    expect: string[];
    reject?: string[];
    /** Assert that no two interfaces in the module have the same body. */
    unique?: true;
  }[] = [
    {
      name: 'x-kubernetes-int-or-string becomes number | string',
      properties: {
        port: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
      },
      expect: ['port?: number | string;'],
    },
    {
      name: 'preserve-unknown-fields without properties becomes Record<string, unknown>',
      properties: { values: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      expect: ['values?: Record<string, unknown>;'],
    },
    {
      name: 'preserve-unknown-fields with properties keeps them and allows more',
      properties: {
        extended: {
          type: 'object',
          'x-kubernetes-preserve-unknown-fields': true,
          properties: { known: { type: 'string' } },
        },
      },
      expect: ['extended?: WidgetSpecExtended;', 'known?: string;\n  [k: string]: unknown;\n}'],
    },
    {
      name: 'an untyped preserve-unknown-fields node accepts any JSON value',
      properties: { raw: { 'x-kubernetes-preserve-unknown-fields': true } },
      expect: ['raw?: unknown;'],
    },
    {
      name: 'an embedded resource is KubernetesObject & Record<string, unknown>',
      properties: {
        template: {
          type: 'object',
          'x-kubernetes-embedded-resource': true,
          'x-kubernetes-preserve-unknown-fields': true,
        },
      },
      expect: ['template?: KubernetesObject & Record<string, unknown>;'],
    },
    {
      name: 'an array with maxItems stays an array, not a tuple',
      properties: { names: { type: 'array', maxItems: 3, items: { type: 'string' } } },
      expect: ['names?: string[];', '@maxItems 3'],
      reject: ['[] |', '[string, string'],
    },
    {
      name: 'an array with minItems stays an array, not a rest tuple',
      properties: { names: { type: 'array', minItems: 1, items: { type: 'string' } } },
      expect: ['names?: string[];', '@minItems 1'],
      reject: ['...'],
    },
    {
      name: 'a nullable scalar is T | null',
      properties: { note: { type: 'string', nullable: true, description: 'May be null.' } },
      expect: ['/**\n   * May be null.\n   */\n  note?: string | null;'],
    },
    {
      name: 'a nullable object is its interface | null',
      properties: {
        ref: { type: 'object', nullable: true, properties: { name: { type: 'string' } } },
      },
      expect: ['ref?: WidgetSpecRef | null;', 'export interface WidgetSpecRef {\n  name?: string;\n}'],
    },
    {
      name: 'required fields are non-optional and the others optional',
      properties: { size: { type: 'integer' }, mode: { type: 'string' } },
      required: ['size'],
      expect: ['size: number;', 'mode?: string;'],
    },
    {
      name: 'descriptions appear as JSDoc on the field, multi-line text included',
      properties: {
        size: { type: 'integer', description: 'Number of replicas.\nAt least one.' },
        ref: { type: 'object', description: 'Secret to read.', properties: { name: { type: 'string' } } },
      },
      expect: [
        '/**\n   * Number of replicas.\n   * At least one.\n   */\n  size?: number;',
        '/**\n   * Secret to read.\n   */\n  ref?: WidgetSpecRef;',
      ],
    },
    {
      name: 'long description lines are wrapped at word boundaries, indented lines are kept',
      properties: {
        size: {
          type: 'integer',
          description: `${'word '.repeat(30)}end\n    code line ${'x'.repeat(120)}`,
        },
      },
      expect: [
        `   * ${'word '.repeat(19)}word\n   * ${'word '.repeat(10)}end\n   *     code line ${'x'.repeat(120)}\n`,
      ],
    },
    {
      name: 'a string enum becomes a union of literals',
      properties: { mode: { type: 'string', enum: ['Fast', 'Slow'] } },
      expect: ["mode?: 'Fast' | 'Slow';"],
    },
    {
      name: 'a map becomes a strict index signature',
      properties: { labels: { type: 'object', additionalProperties: { type: 'string' } } },
      expect: ['labels?: {\n    [k: string]: string | undefined;\n  };'],
    },
    {
      name: 'a map of objects names the value type <Kind><Path>Value',
      properties: {
        secrets: {
          type: 'object',
          additionalProperties: { type: 'object', properties: { key: { type: 'string' } } },
        },
      },
      expect: [
        '[k: string]: WidgetSpecSecretsValue | undefined;',
        'export interface WidgetSpecSecretsValue {',
      ],
    },
    {
      name: 'an object without properties or preserve-unknown-fields takes no fields',
      properties: { empty: { type: 'object' } },
      expect: ['empty?: Record<string, never>;'],
    },
    {
      name: 'validation-only keywords and x- extensions are ignored',
      properties: {
        sel: {
          type: 'object',
          'x-kubernetes-validations': [{ rule: 'has(self.a) || has(self.b)' }],
          'x-kubernetes-map-type': 'atomic',
          anyOf: [{ required: ['a'] }, { required: ['b'] }],
          properties: { a: { type: 'string' }, b: { type: 'string', pattern: '^x', default: 'x' } },
        },
      },
      expect: ['export interface WidgetSpecSel {\n  a?: string;\n  b?: string;\n}'],
      reject: [' & ', 'x-kubernetes', 'rule'],
    },
    {
      name: 'list items are named after the singular field name',
      properties: {
        conditions: { type: 'array', items: { type: 'object', properties: { type: { type: 'string' } } } },
        addresses: { type: 'array', items: { type: 'object', properties: { ip: { type: 'string' } } } },
        policies: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
      },
      expect: [
        'conditions?: WidgetSpecCondition[];',
        'addresses?: WidgetSpecAddress[];',
        'policies?: WidgetSpecPolicy[];',
      ],
    },
    {
      name: 'identical shapes under the same field name are declared once as <Kind><Field>',
      properties: {
        source: {
          type: 'object',
          properties: {
            url: { type: 'string' },
            secretRef: { type: 'object', properties: { name: { type: 'string' } } },
          },
        },
        target: {
          type: 'object',
          properties: {
            path: { type: 'string' },
            secretRef: { type: 'object', properties: { name: { type: 'string' } } },
          },
        },
      },
      expect: [
        'export interface WidgetSpecSource {\n  url?: string;\n  secretRef?: WidgetSecretRef;\n}',
        'export interface WidgetSpecTarget {\n  path?: string;\n  secretRef?: WidgetSecretRef;\n}',
      ],
      reject: ['WidgetSpecSourceSecretRef', 'WidgetSpecTargetSecretRef', 'WidgetSecretRef1'],
      unique: true,
    },
    {
      name: 'identical shapes under unrelated field names are declared once and aliased by path',
      properties: {
        source: { type: 'object', properties: { name: { type: 'string' } } },
        target: { type: 'object', properties: { name: { type: 'string' } } },
      },
      expect: [
        'source?: WidgetSpecSource;\n  target?: WidgetSpecTarget;',
        'export interface WidgetSpecSource {\n  name?: string;\n}',
        '/** Same shape as {@link WidgetSpecSource}. */\nexport type WidgetSpecTarget = WidgetSpecSource;\n',
      ],
      reject: ['WidgetSpecSource1', 'interface WidgetSpecTarget'],
      unique: true,
    },
    {
      name: 'identical shapes under different field names share one interface named after their common suffix',
      properties: {
        sourceRef: { type: 'object', description: 'Read from.', properties: { name: { type: 'string' } } },
        targetRef: {
          type: 'object',
          description: 'Write to.',
          nullable: true,
          properties: { name: { type: 'string' } },
        },
      },
      expect: [
        '/**\n   * Read from.\n   */\n  sourceRef?: WidgetRef;',
        '/**\n   * Write to.\n   */\n  targetRef?: WidgetRef | null;',
      ],
      reject: ['WidgetRef1', 'WidgetSpecSourceRef', 'WidgetSpecTargetRef'],
      unique: true,
    },
    {
      name: 'different shapes whose names collide get a deterministic suffix',
      properties: {
        'foo-bar': { type: 'object', properties: { a: { type: 'string' } } },
        fooBar: { type: 'object', properties: { b: { type: 'string' } } },
      },
      expect: ["'foo-bar'?: WidgetSpecFooBar;", 'fooBar?: WidgetSpecFooBar2;'],
      reject: ['WidgetSpecFooBar1'],
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const content = await moduleFor(withSpec(c.properties, c.required));
      for (const e of c.expect)
        assert.ok(content.includes(e), `expected ${JSON.stringify(e)} in:\n${content}`);
      for (const r of c.reject ?? [])
        assert.ok(!content.includes(r), `did not expect ${JSON.stringify(r)} in:\n${content}`);
      if (c.unique) {
        const bodies = [...content.matchAll(/^export interface \w+ (\{[\s\S]*?\n\})/gm)].map((m) => m[1]);
        assert.equal(new Set(bodies).size, bodies.length, `a shape is declared twice:\n${content}`);
      }
    });
  }
});

describe('module layout', () => {
  test('the module starts with the DO NOT EDIT header naming its CRD file', async () => {
    const content = await moduleFor(withSpec({}));
    assert.equal(
      content.split('\n')[0],
      '// Code generated by scripts/codegen.ts from crds/widget.yaml — DO NOT EDIT.',
    );
    assert.doesNotMatch(content, /\d{4}-\d{2}-\d{2}|timestamp/i);
  });

  for (const [scope, namespaced] of [
    ['Namespaced', true],
    ['Cluster', false],
  ] as const) {
    test(`a ${scope} CRD exports apiVersion, kind and resource constants with namespaced: ${namespaced}`, async () => {
      const content = await moduleFor(withSpec({}), { scope });
      assert.ok(content.includes("export const WidgetApiVersion = 'fixtures.codegen.example/v1' as const;"));
      assert.ok(content.includes("export const WidgetKind = 'Widget' as const;"));
      assert.ok(
        content.includes(
          `export const WidgetResource = {\n  group: 'fixtures.codegen.example',\n  version: 'v1',\n  plural: 'widgets',\n  namespaced: ${namespaced},\n} as const;`,
        ),
        content,
      );
    });
  }

  const roots: { name: string; schema: Schema; expect: string[]; reject?: string[] }[] = [
    {
      name: 'the root interface types apiVersion and kind with the constants and metadata as V1ObjectMeta',
      schema: withSpec({}),
      expect: [
        "import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';",
        'export interface Widget {\n  apiVersion: typeof WidgetApiVersion;\n  kind: typeof WidgetKind;\n  metadata?: V1ObjectMeta;\n  spec?: WidgetSpec;\n}',
      ],
    },
    {
      name: 'spec is required on the root interface when the schema requires it',
      schema: { ...withSpec({}), required: ['spec'] },
      expect: ['  spec: WidgetSpec;\n'],
    },
    {
      name: 'status gets a <Kind>Status interface when the schema has one',
      schema: {
        type: 'object',
        properties: {
          spec: { type: 'object', properties: { a: { type: 'string' } } },
          status: {
            type: 'object',
            description: 'Observed state.',
            properties: { ready: { type: 'boolean' } },
          },
        },
      },
      expect: [
        '  status?: WidgetStatus;\n}',
        '/**\n * Observed state.\n */\nexport interface WidgetStatus {\n  ready?: boolean;\n}',
      ],
    },
    {
      name: 'status is left out when the schema has none',
      schema: withSpec({ a: { type: 'string' } }),
      expect: ['export interface WidgetSpec {'],
      reject: ['status', 'WidgetStatus'],
    },
    {
      name: 'a free-form spec is still exported as <Kind>Spec',
      schema: {
        type: 'object',
        properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
      expect: ['export type WidgetSpec = Record<string, unknown>;', 'spec?: WidgetSpec;'],
    },
  ];
  for (const r of roots) {
    test(r.name, async () => {
      const content = await moduleFor(r.schema);
      for (const e of r.expect)
        assert.ok(content.includes(e), `expected ${JSON.stringify(e)} in:\n${content}`);
      for (const x of r.reject ?? [])
        assert.ok(!content.includes(x), `did not expect ${JSON.stringify(x)} in:\n${content}`);
    });
  }

  test('every module is written to <group>/<version>/<singular>.ts and index.ts re-exports them', async () => {
    const { crds } = workspace();
    const files = await generate({ crdsDir: crds });
    assert.deepEqual(
      [...files.keys()],
      [
        'fixtures.codegen.example/v1/gadget.ts',
        'fixtures.codegen.example/v1/widget.ts',
        'fixtures.codegen.example/v1alpha1/widget.ts',
        'index.ts',
      ],
    );
    assert.equal(
      files.get('index.ts'),
      [
        '// Code generated by scripts/codegen.ts from the CRDs — DO NOT EDIT.',
        '',
        "export * from './fixtures.codegen.example/v1/gadget.js';",
        "export * from './fixtures.codegen.example/v1/widget.js';",
        "export * as WidgetV1Alpha1 from './fixtures.codegen.example/v1alpha1/widget.js';",
        '',
      ].join('\n'),
    );
  });

  test('an empty CRD directory yields an index that exports nothing', async () => {
    const { crds } = workspace({});
    const files = await generate({ crdsDir: crds });
    assert.deepEqual([...files.keys()], ['index.ts']);
    assert.match(files.get('index.ts')!, /^export \{\};$/m);
  });

  test('non-CRD documents and files are skipped', async () => {
    const { crds } = workspace({
      'kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n',
      'README.md': '# not yaml',
      'widget.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n${crdYaml(withSpec({}))}`,
    });
    const files = await generate({ crdsDir: crds });
    assert.deepEqual([...files.keys()], ['fixtures.codegen.example/v1/widget.ts', 'index.ts']);
  });

  const invalid: { name: string; yaml: string; error: RegExp }[] = [
    {
      name: 'a version without a schema is reported with its file',
      yaml: crdYaml({}).replace(/\n {6}schema:[\s\S]*$/, '\n'),
      error: /broken\.yaml: version v1 has no schema\.openAPIV3Schema/,
    },
    {
      name: 'a v1beta1 CRD is rejected',
      yaml: crdYaml(withSpec({})).replace('apiextensions.k8s.io/v1', 'apiextensions.k8s.io/v1beta1'),
      error: /broken\.yaml: only apiextensions\.k8s\.io\/v1 CRDs are supported/,
    },
    {
      name: 'an unsupported type names the field',
      yaml: crdYaml(withSpec({ odd: { type: 'date' } })),
      error: /broken\.yaml \(Widget v1\): \.spec\.odd has unsupported type "date"/,
    },
  ];
  for (const c of invalid) {
    test(c.name, async () => {
      const { crds } = workspace({ 'broken.yaml': c.yaml });
      await assert.rejects(generate({ crdsDir: crds }), c.error);
    });
  }
});

describe('determinism', () => {
  test('two runs over the same CRDs produce identical files', async () => {
    const { crds } = workspace();
    const first = await generate({ crdsDir: crds });
    const second = await generate({ crdsDir: crds });
    assert.deepEqual(second, first);
  });

  test('the output does not depend on where the CRD directory lives', async () => {
    const a = await generate({ crdsDir: workspace().crds });
    const b = await generate({ crdsDir: workspace().crds });
    assert.deepEqual(b, a);
  });

  test('CRD files are read in a fixed order regardless of creation order', async () => {
    const widget = crdYaml(withSpec({}));
    const gadget = crdYaml(withSpec({}), { kind: 'Gadget' });
    const a = await generate({ crdsDir: workspace({ 'b.yaml': widget, 'a.yaml': gadget }).crds });
    const b = await generate({ crdsDir: workspace({ 'a.yaml': gadget, 'b.yaml': widget }).crds });
    assert.deepEqual(b, a);
  });
});

describe('check and write modes', () => {
  test('check mode passes when generated/ is in sync', async () => {
    const { crds, out } = workspace();
    assert.equal(await main(['--crds', crds, '--out', out], capture()), 0);
    const io = capture();
    assert.equal(await main(['--check', '--crds', crds, '--out', out], io), 0);
    assert.match(io.out.join('\n'), /up to date \(3 modules\)/);
    assert.deepEqual(io.err, []);
  });

  test('check mode reports a stale, a missing and an extra file and writes nothing', async () => {
    const { crds, out } = workspace();
    assert.equal(await main(['--crds', crds, '--out', out], capture()), 0);
    writeFileSync(join(out, 'fixtures.codegen.example/v1/widget.ts'), '// edited by hand\n');
    rmSync(join(out, 'fixtures.codegen.example/v1/gadget.ts'));
    writeFileSync(
      join(out, 'fixtures.codegen.example/v1/leftover.ts'),
      '// Code generated by scripts/codegen.ts\n',
    );
    const before = snapshot(out);
    const io = capture();
    assert.equal(await main(['--check', '--crds', crds, '--out', out], io), 1);
    const report = io.err.join('\n');
    assert.match(report, /stale: +\S*generated\/fixtures\.codegen\.example\/v1\/widget\.ts/);
    assert.match(report, /missing: +\S*generated\/fixtures\.codegen\.example\/v1\/gadget\.ts/);
    assert.match(report, /extra: +\S*generated\/fixtures\.codegen\.example\/v1\/leftover\.ts/);
    assert.deepEqual(snapshot(out), before);
  });

  test('check mode reports every file missing when generated/ does not exist', async () => {
    const { crds, out } = workspace();
    const io = capture();
    assert.equal(await main(['--check', '--crds', crds, '--out', out], io), 1);
    assert.equal(io.err.join('\n').match(/missing:/g)?.length, 4);
    assert.equal(existsSync(out), false);
  });

  test('write mode rewrites stale files, restores missing ones and removes extra generated ones', async () => {
    const { crds, out } = workspace();
    await main(['--crds', crds, '--out', out], capture());
    const expected = snapshot(out);
    writeFileSync(join(out, 'index.ts'), '// stale\n');
    rmSync(join(out, 'fixtures.codegen.example/v1alpha1/widget.ts'));
    mkdirSync(join(out, 'old.example/v1'), { recursive: true });
    writeFileSync(
      join(out, 'old.example/v1/thing.ts'),
      '// Code generated by scripts/codegen.ts from crds/thing.yaml\n',
    );
    const io = capture();
    assert.equal(await main(['--crds', crds, '--out', out], io), 0);
    assert.match(io.out.join('\n'), /1 added, 1 updated, 1 removed/);
    assert.deepEqual(snapshot(out), expected);
    assert.equal(existsSync(join(out, 'old.example')), false, 'empty directories are removed');
  });

  test('write mode keeps a file it did not generate and fails', async () => {
    const { crds, out } = workspace();
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'handwritten.ts'), 'export const x = 1;\n');
    const io = capture();
    assert.equal(await main(['--crds', crds, '--out', out], io), 1);
    assert.match(io.err.join('\n'), /did not write[\s\S]*handwritten\.ts/);
    assert.equal(readFileSync(join(out, 'handwritten.ts'), 'utf8'), 'export const x = 1;\n');
  });

  test('unknown flags print usage and exit 2', async () => {
    const io = capture();
    assert.equal(await main(['--chek'], io), 2);
    assert.match(io.err.join('\n'), /usage: tsx scripts\/codegen\.ts/);
  });

  test('the CLI exits non-zero when check mode finds drift', () => {
    const { crds, out } = workspace();
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'scripts', 'codegen.ts'), '--check', '--crds', crds, '--out', out],
      { cwd: repoRoot, encoding: 'utf8' },
    );
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /missing: .*index\.ts/);
  });
});

describe('generated code type-checks', () => {
  const usage = `
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  isWidget,
  WidgetApiVersion,
  WidgetKind,
  WidgetResource,
  WidgetV1Alpha1,
  type Widget,
  type WidgetSpec,
  type GadgetSpec,
  type GadgetSpecSecondary,
} from './index.js';

export const widget: Widget = {
  apiVersion: WidgetApiVersion,
  kind: 'Widget',
  metadata: { name: 'w', namespace: 'default' },
  spec: {
    size: 1,
    port: 'http',
    mode: 'Fast',
    toNamespaces: ['a', 'b', 'c', 'd'],
    labels: { team: 'platform' },
    values: { anything: [1, 'two'] },
    raw: 'any JSON',
    extended: { known: 'k', extra: { nested: true } },
    template: { apiVersion: 'v1', kind: 'Secret', data: {} },
    note: null,
    sourceRef: { name: 'src' },
    targetRef: null,
    selectors: [{ key: 'k', operator: 'In', values: ['v'] }],
    empty: {},
  },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
};
export const asObject: KubernetesObject = widget;
export const plural: 'widgets' = WidgetResource.plural;
export const namespaced: true = WidgetResource.namespaced;
export const team: string | undefined = widget.spec.labels?.['team'];
export function portOf(o: KubernetesObject): number | string | undefined {
  return isWidget(o) ? o.spec.port : undefined;
}
export const old: WidgetV1Alpha1.Widget = { apiVersion: 'fixtures.codegen.example/v1alpha1', kind: WidgetKind };
export const gadget: GadgetSpec = { primary: { secretRef: { name: 'a' } }, secondary: { secretRef: { name: 'b' } } };
export const fallback: GadgetSpecSecondary | undefined = gadget.primary;

// @ts-expect-error spec is required
export const noSpec: Widget = { apiVersion: WidgetApiVersion, kind: WidgetKind };
// @ts-expect-error apiVersion is the exact constant
export const wrongVersion: Widget = { apiVersion: 'fixtures.codegen.example/v2', kind: WidgetKind, spec: widget.spec };
// @ts-expect-error int-or-string rejects booleans
export const badPort: WidgetSpec['port'] = true;
// @ts-expect-error fields the schema would prune are rejected
export const pruned: WidgetSpec = { size: 1, sourceRef: { name: 's' }, bogus: 1 };
// @ts-expect-error enums are literal unions
export const badMode: WidgetSpec['mode'] = 'Medium';
// @ts-expect-error null only where nullable
export const nullSize: WidgetSpec['size'] = null;
// @ts-expect-error an object without properties takes no fields
export const notEmpty: WidgetSpec['empty'] = { a: 1 };
// @ts-expect-error the shared secret reference requires a name
export const noName: WidgetSpec['sourceRef'] = {};
`;

  test('the fixture modules and a usage snippet compile without errors', async () => {
    const files = Object.fromEntries(await generate({ crdsDir: workspace().crds }));
    assert.deepEqual(typeCheck({ ...files, 'usage.ts': usage }), []);
  });

  test('the type check catches an invalid generated module', async () => {
    const files = Object.fromEntries(await generate({ crdsDir: workspace().crds }));
    const widget = 'fixtures.codegen.example/v1/widget.ts';
    files[widget] = files[widget]!.replace('metadata?: V1ObjectMeta;', 'metadata?: V1ObjectMetaTypo;');
    const diagnostics = typeCheck({ ...files, 'usage.ts': usage });
    assert.ok(
      diagnostics.some(
        (d) => d.startsWith(`${widget.split('/').join(sep)}:`) && d.includes('V1ObjectMetaTypo'),
      ),
      diagnostics.join('\n'),
    );
  });

  test('a usage snippet that breaks the generated types fails the type check', async () => {
    const files = Object.fromEntries(await generate({ crdsDir: workspace().crds }));
    const diagnostics = typeCheck({ ...files, 'usage.ts': usage.replace("port: 'http'", 'port: false') });
    assert.ok(
      diagnostics.some((d) => d.startsWith('usage.ts:')),
      diagnostics.join('\n'),
    );
  });
});

describe('naming helpers', () => {
  const names: [string, string, string][] = [
    ['toNamespaces', 'ToNamespaces', 'ToNamespace'],
    ['conditions', 'Conditions', 'Condition'],
    ['policies', 'Policies', 'Policy'],
    ['addresses', 'Addresses', 'Address'],
    ['status', 'Status', 'StatusItem'],
    ['data', 'Data', 'DataItem'],
    ['x-foo.bar', 'XFooBar', 'XFooBar' + 'Item'],
    ['ipv4addresses', 'Ipv4Addresses', 'Ipv4Address'],
  ];
  for (const [key, p, s] of names) {
    test(`field ${key} is named ${p}, one of its items ${s}`, () => {
      assert.equal(pascal(key), p);
      assert.equal(singular(key), s);
    });
  }
});
