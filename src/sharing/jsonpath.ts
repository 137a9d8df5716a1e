// The subset of Kubernetes JSONPath that dangerousToNamespacesSelector keys
// use. Upstream wraps the key as `{.<key>}` and runs client-go's jsonpath on
// the Namespace; this reproduces its results for the forms below and rejects
// everything else with an error validation can report, instead of upstream's
// silent non-match.
//
// Accepted, with upstream's meaning:
//   metadata.annotations.one                     dotted fields
//   metadata.annotations.field\.cattle\.io/x     `\` escapes the next character
//                                                (every `\` is dropped, so `\\` is nothing)
//   metadata.annotations['field\.cattle\.io/x']  single-quoted key; its text is read
//                                                as a dotted path again, so unescaped dots
//                                                in it still split (as upstream)
//   spec.finalizers[0], [-1]                     array index, negative from the end
//   .metadata.name                               one leading dot (upstream reads it as
//                                                recursive descent, which finds the same
//                                                top-level field in a Namespace)
// Rejected: ["double-quoted"] (upstream fails to parse it), `*`, `..`, slices,
// unions, filters, `$`, `@`, braces, unescaped whitespace, empty segments.

export type PathSegment = { kind: 'field'; name: string } | { kind: 'index'; index: number };

export type SelectorKeyParseResult = { ok: true; segments: PathSegment[] } | { ok: false; error: string };

/** Characters that end a field in client-go's parser unless escaped. */
const TERMINATORS = new Set([' ', '\t', '\r', '\n', '.', ',', '[', ']', '$', '@', '{', '}']);

class KeySyntaxError extends Error {}

export function parseSelectorKey(key: string): SelectorKeyParseResult {
  try {
    const text = key.startsWith('.') ? key.slice(1) : key;
    if (text === '') throw new KeySyntaxError('it is empty');
    return { ok: true, segments: parsePath(text) };
  } catch (error) {
    if (error instanceof KeySyntaxError)
      return { ok: false, error: `JSONPath ${JSON.stringify(key)}: ${error.message}` };
    throw error;
  }
}

function parsePath(text: string): PathSegment[] {
  const segments: PathSegment[] = [];
  let pos = 0;
  let expectField = true;
  for (;;) {
    if (expectField) {
      const field = readField(text, pos);
      if (field.raw === '') throw new KeySyntaxError(`expected a field name at character ${pos + 1}`);
      if (field.raw === '*') throw new KeySyntaxError('wildcards (*) are not supported');
      segments.push({ kind: 'field', name: field.name });
      pos = field.end;
    }
    if (pos >= text.length) return segments;
    const c = text[pos];
    if (c === '.') {
      if (text[pos + 1] === '.') throw new KeySyntaxError('recursive descent (..) is not supported');
      pos += 1;
      expectField = true;
    } else if (c === '[') {
      const close = text.indexOf(']', pos + 1);
      if (close === -1) throw new KeySyntaxError(`unterminated [ at character ${pos + 1}`);
      segments.push(...parseBracket(text.slice(pos + 1, close)));
      pos = close + 1;
      expectField = false;
    } else {
      throw new KeySyntaxError(`unexpected ${JSON.stringify(c)} at character ${pos + 1}`);
    }
  }
}

function readField(text: string, start: number): { raw: string; name: string; end: number } {
  let name = '';
  let pos = start;
  while (pos < text.length) {
    const c = text[pos] ?? '';
    if (c === '\\') {
      const next = text[pos + 1];
      // Upstream's `\` would escape its closing brace and fail to parse.
      if (next === undefined) throw new KeySyntaxError('it ends in a lone backslash');
      // client-go keeps the escaped character and then drops every backslash.
      if (next !== '\\') name += next;
      pos += 2;
      continue;
    }
    if (TERMINATORS.has(c)) break;
    name += c;
    pos += 1;
  }
  return { raw: text.slice(start, pos), name, end: pos };
}

function parseBracket(inner: string): PathSegment[] {
  if (inner.startsWith('?(')) throw new KeySyntaxError('filters ([?(...)]) are not supported');
  if (inner.includes(',')) throw new KeySyntaxError('unions ([a,b]) are not supported');
  const quoted = /^'([^']*)'$/.exec(inner);
  if (quoted) {
    const path = quoted[1] ?? '';
    if (path === '') throw new KeySyntaxError("empty key ['']");
    if (path.startsWith('.'))
      throw new KeySyntaxError(`recursive descent (..) is not supported in ['${path}']`);
    return parsePath(path);
  }
  if (/^-?\d+$/.test(inner)) return [{ kind: 'index', index: Number.parseInt(inner, 10) }];
  if (inner.startsWith('"')) {
    throw new KeySyntaxError(
      `double-quoted keys are not accepted (upstream cannot parse them); write ['...']`,
    );
  }
  if (inner === '*') throw new KeySyntaxError('wildcards ([*]) are not supported');
  if (inner.includes(':')) throw new KeySyntaxError('slices ([a:b]) are not supported');
  throw new KeySyntaxError(`invalid index [${inner}]; use ['key'] for a key or [n] for an array index`);
}

/** The text upstream compares against `values`: `""` when anything on the path is missing. */
export function readSelectorPath(document: unknown, segments: readonly PathSegment[]): string {
  let current: unknown = document;
  for (const segment of segments) {
    if (segment.kind === 'field') {
      if (!isRecord(current) || !Object.hasOwn(current, segment.name)) return '';
      current = current[segment.name];
    } else {
      if (!Array.isArray(current)) return '';
      const index = segment.index < 0 ? segment.index + current.length : segment.index;
      if (index < 0 || index >= current.length) return '';
      current = current[index] as unknown;
    }
    // Client libraries leave absent fields as undefined; Go never sees them.
    if (current === undefined) return '';
  }
  return asText(current);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** How client-go prints one result: scalars as text, maps and lists as Go JSON. */
function asText(value: unknown): string {
  if (value === undefined) return '';
  // Go prints a JSON null as "<nil>", which then counts as present.
  if (value === null) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return goFloatText(value);
  if (typeof value === 'boolean') return String(value);
  if (value instanceof Date) return rfc3339(value);
  return escapeLikeGo(goJson(value));
}

/** Go's `%v` for a float64 (JSON numbers decode to float64): %g, exponent form from 1e+06 / below 1e-04. */
export function goFloatText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  const [mantissa = '', exponentText = '0'] = value.toExponential().split('e');
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 6) {
    const digits = String(Math.abs(exponent)).padStart(2, '0');
    return `${mantissa}e${exponent < 0 ? '-' : '+'}${digits}`;
  }
  return String(value);
}

function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** encoding/json output: object keys sorted, undefined fields dropped. */
function goJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Date) return JSON.stringify(rfc3339(value));
  if (Array.isArray(value)) return `[${value.map((item) => goJson(item)).join(',')}]`;
  if (isRecord(value)) {
    const fields = Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${goJson(value[key])}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** encoding/json escapes these even inside strings; they appear nowhere else in JSON text. */
function escapeLikeGo(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
