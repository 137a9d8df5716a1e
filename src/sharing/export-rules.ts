// Validation and weight of a SecretExport, with upstream's exact messages.
// Messages marked Beyond cover what upstream accepts silently but can never
// apply (a selector key it cannot parse, an unknown operator).

import { WEIGHT_ANNOTATION } from './annotations.js';
import { parseSelectorKey } from './jsonpath.js';
import { validateLabelSelector } from './label-selector.js';
import type { SecretExportSpec } from './types.js';

export const ALL_NAMESPACES = '*';

export const MSG_NO_TARGET =
  'Expected to have at least one non-empty to namespace or to namespace annotation';
export const MSG_EMPTY_NAMESPACE = 'Expected to namespace to be non-empty';
export const MSG_VALUES_REQUIRED = "Values must be specified when `operator` is 'In' or 'NotIn'";
export const MSG_VALUES_FORBIDDEN =
  "Values may not be specified when `operator` is 'Exists' or 'DoesNotExist'";

const SELECTOR_OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** toNamespaces then a non-empty toNamespace, as upstream lists them. */
export function staticToNamespaces(spec: SecretExportSpec): string[] {
  const result = [...(spec.toNamespaces ?? [])];
  if (spec.toNamespace) result.push(spec.toNamespace);
  return result;
}

/** Every problem with the export's spec, in upstream's order; empty when the export is usable. */
export function validateExportSpec(spec: SecretExportSpec): string[] {
  const errors: string[] = [];
  const toNamespaces = staticToNamespaces(spec);
  const selector = spec.dangerousToNamespacesSelector ?? [];
  const labelSelector = spec.toNamespacesLabelSelector;

  if (toNamespaces.length === 0 && selector.length === 0 && labelSelector === undefined) {
    errors.push(MSG_NO_TARGET);
  }
  for (const namespace of toNamespaces) {
    if (namespace === '') errors.push(MSG_EMPTY_NAMESPACE);
  }
  selector.forEach((field, index) => {
    const hasValues = (field.values ?? []).length > 0;
    if ((field.operator === 'In' || field.operator === 'NotIn') && !hasValues)
      errors.push(MSG_VALUES_REQUIRED);
    if ((field.operator === 'Exists' || field.operator === 'DoesNotExist') && hasValues) {
      errors.push(MSG_VALUES_FORBIDDEN);
    }
    // Beyond: upstream ignores an unknown operator (the entry always passes); the CRD enum normally stops it.
    if (!SELECTOR_OPERATORS.has(field.operator)) {
      errors.push(
        `Expected dangerousToNamespacesSelector[${index}].operator to be one of In, NotIn, Exists, DoesNotExist`,
      );
    }
    // Beyond: upstream logs an unparsable key and the selector silently matches nothing.
    const parsed = parseSelectorKey(field.key);
    if (!parsed.ok) errors.push(`Invalid dangerousToNamespacesSelector[${index}].key: ${parsed.error}`);
  });
  if (labelSelector !== undefined) errors.push(...validateLabelSelector(labelSelector));
  return errors;
}

/** Upstream's combined error text, or undefined when there is nothing to report. */
export function validationErrorText(messages: readonly string[]): string | undefined {
  if (messages.length === 0) return undefined;
  return `Validation errors:\n${messages.map((message) => `- ${message}`).join('\n')}`;
}

/**
 * The `secretgen.carvel.dev/weight` annotation as Go's strconv.ParseFloat
 * reads it; anything it rejects (or out of float64 range) is ignored as 0.
 * NaN is also read as 0, since it cannot be ordered.
 */
export function exportWeight(annotations: Record<string, string> | undefined): number {
  const text = annotations?.[WEIGHT_ANNOTATION];
  if (text === undefined) return 0;
  const value = parseGoFloat(text);
  return value === undefined || Number.isNaN(value) ? 0 : value;
}

// Go float syntax: `_` may sit between digits (and right after 0x).
const DIGITS = String.raw`\d(?:_?\d)*`;
const HEX_DIGITS = String.raw`[0-9a-fA-F](?:_?[0-9a-fA-F])*`;
const DECIMAL_FLOAT = new RegExp(
  String.raw`^[+-]?(?:${DIGITS}(?:\.(?:${DIGITS})?)?|\.${DIGITS})(?:[eE][+-]?${DIGITS})?$`,
);
const HEX_FLOAT = new RegExp(
  String.raw`^([+-]?)0[xX]_?(?:(${HEX_DIGITS})(?:\.(${HEX_DIGITS})?)?|\.(${HEX_DIGITS}))[pP]([+-]?${DIGITS})$`,
);
const INFINITY = /^([+-]?)(?:inf|infinity)$/i;

function parseGoFloat(text: string): number | undefined {
  const infinity = INFINITY.exec(text);
  if (infinity) return infinity[1] === '-' ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(text)) return Number.NaN;
  const value = DECIMAL_FLOAT.test(text) ? Number(text.replaceAll('_', '')) : parseHexFloat(text);
  // Go reports out-of-range values as errors; upstream then ignores them.
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

function parseHexFloat(text: string): number | undefined {
  const match = HEX_FLOAT.exec(text);
  if (!match) return undefined;
  const [, sign, whole = '', fraction = '', onlyFraction = '', exponent = '0'] = match;
  const fractionDigits = (fraction || onlyFraction).replaceAll('_', '');
  const mantissa = Number.parseInt(whole.replaceAll('_', '') + fractionDigits || '0', 16);
  const value = mantissa * 2 ** (Number(exponent.replaceAll('_', '')) - 4 * fractionDigits.length);
  return sign === '-' ? -value : value;
}
