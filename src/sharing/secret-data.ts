// Secret `data` values are base64; compare and convert them in one place.

export function decodeSecretValue(encoded: string): string {
  return Buffer.from(encoded, 'base64').toString('utf8');
}

export function encodeSecretValue(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** Same keys and same bytes; two encodings of one value compare equal. */
export function sameSecretData(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => {
    const left = a[key];
    const right = b[key];
    if (!Object.hasOwn(b, key) || left === undefined || right === undefined) return false;
    return left === right || Buffer.from(left, 'base64').equals(Buffer.from(right, 'base64'));
  });
}
