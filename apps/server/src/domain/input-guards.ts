/**
 * Input guards applied before any side effect (issue 12 items 3, 4): JSON nesting depth and
 * characters that cannot be stored (PostgreSQL refuses NUL in text) or have no place in
 * identifiers and URLs. Shared by the HTTP body parser, the request parsers and the gRPC streams.
 */
import { CodeqError } from '@codeq/proto/errors';

/** Deepest accepted JSON nesting (objects and arrays) of a request body or payload. */
export const MAX_JSON_DEPTH = 64;

/** True when `v` nests objects/arrays deeper than `max` levels (iterative: no stack overflow). */
export function jsonTooDeep(v: unknown, max = MAX_JSON_DEPTH): boolean {
  if (v === null || typeof v !== 'object') return false;
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (depth > max) return true;
    const children = Array.isArray(node) ? node : Object.values(node as Record<string, unknown>);
    for (const c of children) if (c !== null && typeof c === 'object') stack.push([c, depth + 1]);
  }
  return false;
}

export const depthError = () => new CodeqError('VALIDATION_FAILED', `invalid body: JSON nested deeper than ${MAX_JSON_DEPTH} levels`);

// eslint-disable-next-line no-control-regex
const NUL = /\u0000/;
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Free text (error texts, nack reasons, non-JSON payloads): anything but NUL. */
export function assertStorableText(s: string | null | undefined, field: string): void {
  if (s && NUL.test(s)) throw new CodeqError('VALIDATION_FAILED', `invalid '${field}' (must not contain NUL characters)`, { field });
}
