// Shared helpers for the codeQ HTTP bench: clock, payload, stats, loopback check.
import { performance } from 'node:perf_hooks';

/** Epoch milliseconds with sub-ms resolution. timeOrigin comes from the realtime
 * clock, so values are comparable between processes on the same host. */
export const now = () => performance.timeOrigin + performance.now();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const PAYLOAD_BYTES = 200;

/** {"seq":i,"t0":…,"kind":"bench","pad":"xxx…"}: JSON.stringify length is
 * PAYLOAD_BYTES ± a few bytes (exactly 200 for a 6-digit seq and a 3-decimal t0). */
const PAD = (() => {
  const fixed = JSON.stringify({ seq: 999999, t0: 1_700_000_000_000.123, kind: 'bench', pad: '' }).length;
  return 'x'.repeat(Math.max(0, PAYLOAD_BYTES - fixed));
})();
export function makePayload(seq, t0) {
  return { seq, t0, kind: 'bench', pad: PAD };
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** count/mean/p50/p90/p99/max of a numeric array (not modified). */
export function summarize(values) {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return {
    count: s.length,
    mean: s.length ? sum / s.length : NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1] : NaN,
  };
}

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** CPU seconds and peak RSS of the calling process. */
export function processStats() {
  const ru = process.resourceUsage();
  return { maxRssMB: ru.maxRSS / 1024, cpuUserS: ru.userCPUTime / 1e6, cpuSysS: ru.systemCPUTime / 1e6 };
}

/** This bench only talks to 127.0.0.0/8, ::1 or localhost. Returns the parsed URL. */
export function assertLoopback(urlString, what = 'url') {
  let u;
  try {
    u = new URL(urlString);
  } catch {
    throw new Error(`${what}: not a URL: ${urlString}`);
  }
  const h = u.hostname.replace(/^\[|\]$/g, '');
  if (!(h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h))) {
    throw new Error(`${what}: ${urlString} is not a loopback address; this bench only targets 127.0.0.0/8, ::1 or localhost`);
  }
  if (u.protocol !== 'http:') throw new Error(`${what}: only http:// is supported (got ${u.protocol})`);
  return u;
}

export const r1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
export const r3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);
