/** Same keys with the same values (labels, annotations); a missing map equals an empty one. */
export function sameStringMap(
  a: Record<string, string> | undefined,
  b: Record<string, string> | undefined,
): boolean {
  const keys = Object.keys(a ?? {});
  return keys.length === Object.keys(b ?? {}).length && keys.every((k) => b?.[k] === a![k]);
}
