/** Time formatting of the wire (http-api §1.3). We always emit UTC (architecture §2). */

/** RFC 3339 UTC with fractional seconds, trailing zeros trimmed: `2026-05-20T13:04:05.12Z`. */
let lastMs = NaN;
let lastText = '';

export function formatTime(ms: number): string {
  if (ms === lastMs) return lastText; // many timestamps of one response share the millisecond
  lastMs = ms;
  lastText = formatTimeUncached(ms);
  return lastText;
}

function formatTimeUncached(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-05-20T13:04:05.120Z
  const dot = iso.indexOf('.');
  let frac = iso.slice(dot + 1, iso.length - 1);
  while (frac.endsWith('0')) frac = frac.slice(0, -1);
  return frac ? `${iso.slice(0, dot)}.${frac}Z` : `${iso.slice(0, dot)}Z`;
}

/** `leaseUntil`: RFC 3339, whole seconds, UTC. */
let lastLeaseS = NaN;
let lastLeaseText = '';

export function formatLeaseUntil(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s === lastLeaseS) return lastLeaseText; // the tasks of one claim share the second
  lastLeaseS = s;
  lastLeaseText = new Date(s * 1000).toISOString().replace('.000Z', 'Z');
  return lastLeaseText;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 1 : 0);
}

/** Parse an RFC 3339 timestamp (`T` and zone mandatory). Returns epoch ms or null. */
export function parseRfc3339(s: string): number | null {
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [, y, mo, d, h, mi, sec] = m;
  // Like Go's time.Parse: the day must exist in that month (no 2026-02-30), seconds 0-59.
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > daysInMonth(Number(y), Number(mo))) return null;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return null;
  const ms = Date.parse(s.replace('t', 'T').replace('z', 'Z'));
  return Number.isFinite(ms) ? ms : null;
}
