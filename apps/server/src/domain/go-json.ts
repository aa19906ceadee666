/**
 * JSON text as Go's encoding/json writes it (http-api §6.1): object keys sorted, no whitespace,
 * `<` `>` `&` U+2028 U+2029 escaped. Payloads are stored as this text so upstream clients see
 * byte-identical strings.
 */
export function goJson(value: unknown): string {
  return escapeHtml(JSON.stringify(sortKeys(value)) ?? 'null');
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const src = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    const keys = Object.keys(src);
    // UTF-16 order equals UTF-8 byte order unless a key holds surrogates or U+E000..U+FFFF.
    keys.sort(keys.some((k) => /[\uD800-\uFFFF]/.test(k)) ? compareUtf8 : undefined);
    for (const k of keys) out[k] = sortKeys(src[k]);
    return out;
  }
  return v;
}

// Go sorts map keys by byte order of their UTF-8 encoding.
function compareUtf8(a: string, b: string): number {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return Buffer.compare(ba, bb);
}

function escapeHtml(s: string): string {
  if (!/[<>&\u2028\u2029]/.test(s)) return s;
  return s.replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}
