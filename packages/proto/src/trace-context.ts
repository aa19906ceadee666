/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) text forms shared by the server and the
 * SDKs: `traceparent` (version 00) and `tracestate`. Dependency-free on purpose: the SDKs and the
 * server map these to `@opentelemetry/api` span contexts; this module only checks and formats text.
 */

/** The parts of a `traceparent` header. */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  spanId: string;
  /** 0..255; bit 0 is "sampled". */
  traceFlags: number;
}

/** Longest `tracestate` kept (the W3C limit is 32 list members; 512 characters is what vendors keep). */
export const MAX_TRACE_STATE = 512;

const PARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** Parses a `traceparent` value; null when it is absent or malformed (the header is then ignored, as W3C says). */
export function parseTraceParent(value: string | null | undefined): TraceParent | null {
  if (typeof value !== 'string') return null;
  const m = PARENT.exec(value.trim());
  if (!m) return null;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null;
  return { traceId, spanId, traceFlags: parseInt(flags, 16) };
}

/** Formats a version-00 `traceparent` value. */
export function formatTraceParent(p: TraceParent): string {
  return `00-${p.traceId}-${p.spanId}-${(p.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** A `tracestate` value worth keeping: printable ASCII, at most {@link MAX_TRACE_STATE} characters; else null. */
export function cleanTraceState(value: string | null | undefined): string | null {
  if (typeof value !== 'string') return null;
  const v = value.trim();
  if (!v || v.length > MAX_TRACE_STATE || !/^[\x20-\x7e]+$/.test(v)) return null;
  return v;
}
