/**
 * JSON text as Go's encoding/json writes it (http-api §6.1): object keys sorted, no whitespace,
 * `<` `>` `&` U+2028 U+2029 escaped. Payloads are stored as this text so upstream clients see
 * byte-identical strings.
 */
export function goJson(value: unknown): string {
  return escapeHtml(JSON.stringify(sortKeys(value)) ?? 'null');
}

/** A key whose UTF-16 order may differ from its UTF-8 byte order (surrogates, U+E000..U+FFFF). */
const UTF16_ORDER_DIFFERS = /[\uD800-\uFFFF]/;
const HTML_CHARS = /[<>&\u2028\u2029]/;
const HTML_CHARS_ALL = /[<>&\u2028\u2029]/g;

/**
 * `v` with every object's keys in Go's order. Runs per stored payload and result: a value that is
 * already in that order (a plain object with sorted keys, an array) is returned as it is, without
 * a copy; anything else is copied as before (same JSON text either way).
 */
function sortKeys(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return v.map(sortKeys);
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const e: unknown = v[i];
      const s = sortKeys(e);
      if (out === null && s !== e) out = v.slice(0, i);
      if (out !== null) out[i] = s;
    }
    return out ?? v;
  }
  const src = v as Record<string, unknown>;
  const keys = Object.keys(src);
  let utf8Order = false;
  for (const k of keys) {
    if (UTF16_ORDER_DIFFERS.test(k)) {
      utf8Order = true;
      break;
    }
  }
  const proto: unknown = Object.getPrototypeOf(src);
  // An input with a `__proto__` own key takes the copy path (into a prototype-less object).
  let inOrder = (proto === Object.prototype || proto === null) && !keys.includes('__proto__');
  for (let i = 1; inOrder && i < keys.length; i++) {
    const a = keys[i - 1]!;
    const b = keys[i]!;
    if (utf8Order ? compareUtf8(a, b) >= 0 : a >= b) inOrder = false;
  }
  if (inOrder) {
    let kids: unknown[] | null = null;
    for (let i = 0; i < keys.length; i++) {
      const e = src[keys[i]!];
      const s = sortKeys(e);
      if (kids === null && s !== e) kids = keys.slice(0, i).map((k) => src[k]);
      if (kids !== null) kids[i] = s;
    }
    if (kids === null) return src;
    const out = plainObject();
    for (let i = 0; i < keys.length; i++) out[keys[i]!] = kids[i];
    return out;
  }
  const out = plainObject();
  // UTF-16 order equals UTF-8 byte order unless a key holds surrogates or U+E000..U+FFFF.
  keys.sort(utf8Order ? compareUtf8 : undefined);
  for (const k of keys) out[k] = sortKeys(src[k]);
  return out;
}

/**
 * The copy's target: no prototype, so a `__proto__` key of the input is copied as an ordinary own
 * key (on `{}` the assignment would hit the prototype setter and the key would vanish from the
 * stored payload).
 */
function plainObject(): Record<string, unknown> {
  return Object.create(null) as Record<string, unknown>;
}

// Go sorts map keys by byte order of their UTF-8 encoding.
function compareUtf8(a: string, b: string): number {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return Buffer.compare(ba, bb);
}

/** JSON text with `<` `>` `&` U+2028 U+2029 written as `\uXXXX`, as Go's encoding/json writes them (http-api §1.3). */
export function escapeHtml(s: string): string {
  if (!HTML_CHARS.test(s)) return s;
  return s.replace(HTML_CHARS_ALL, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}
