#!/usr/bin/env node
// Summarise a V8 .cpuprofile (e.g. from `node --cpu-prof`): top functions by self time and by
// total (inclusive) time, plus self time per package / area.
//
//   node bench/profile-summary.mjs <file.cpuprofile> [--top 25] [--from-us T --to-us T]   (or a positional [top])
//
// --from-us/--to-us restrict it to a window of the monotonic clock (µs; http-bench prints the
// window of its measurements), so server start-up (module loading) does not dilute the picture.
//
// Self time = samples whose leaf frame is the function. Total time = samples with the function
// anywhere on the stack (counted once per sample even under recursion). Percentages are of the
// whole profile; "(idle)" is time the main thread had nothing to do, so 100% − idle is busy time.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename } from 'node:path';

function areaOf(url) {
  if (!url) return '(native/V8)';
  if (url.startsWith('node:')) return 'node core';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const m = url.match(/\/(apps|packages)\/([^/]+)\//);
  if (m) return `${m[1]}/${m[2]}`;
  return 'other';
}

function shortUrl(url) {
  if (!url) return '';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const m = url.match(/\/((?:apps|packages)\/.*)$/);
  return m ? m[1] : basename(url);
}

/** -> {totalMs, idleMs, busyMs, self:[…], total:[…], areas:[…]} sorted descending.
 * fromUs/toUs (optional): keep only samples in that window of the monotonic clock the profile's
 * timestamps use (CLOCK_MONOTONIC on Linux, the same as process.hrtime), e.g. to drop start-up. */
export function summarizeProfile(profile, { fromUs = -Infinity, toUs = Infinity } = {}) {
  const nodes = new Map();
  const parent = new Map();
  for (const n of profile.nodes) {
    nodes.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // duration of sample i = time until the next sample (µs); the last one gets the mean
  const selfUs = new Map();
  let sumDelta = 0;
  for (let i = 1; i < deltas.length; i++) sumDelta += Math.max(0, deltas[i]);
  const meanDelta = deltas.length > 1 ? sumDelta / (deltas.length - 1) : 1000;
  let t = profile.startTime ?? 0;
  let kept = 0;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    kept++;
    const d = i + 1 < deltas.length ? Math.max(0, deltas[i + 1]) : meanDelta;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + d);
  }
  const keyOf = (n) => {
    const cf = n.callFrame;
    return `${cf.functionName || '(anonymous)'}\u0000${cf.url}\u0000${cf.lineNumber}`;
  };
  const info = new Map(); // key -> {name, url, line, selfUs, totalUs}
  const get = (n) => {
    const k = keyOf(n);
    let e = info.get(k);
    if (!e) {
      const cf = n.callFrame;
      e = { name: cf.functionName || '(anonymous)', url: cf.url, line: cf.lineNumber + 1, selfUs: 0, totalUs: 0 };
      info.set(k, e);
    }
    return e;
  };
  const areas = new Map();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const n = nodes.get(id);
    if (!n) continue;
    totalUs += us;
    const e = get(n);
    e.selfUs += us;
    if (e.name === '(idle)') idleUs += us;
    const area = e.name.startsWith('(') && !e.url ? e.name : areaOf(e.url);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cn = nodes.get(cur);
      if (cn.callFrame.functionName === '(root)') break;
      const k = keyOf(cn);
      if (seen.has(k)) continue;
      seen.add(k);
      get(cn).totalUs += us;
    }
  }
  const list = [...info.values()];
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: (totalUs - idleUs) / 1000,
    samples: kept,
    window: Number.isFinite(fromUs) || Number.isFinite(toUs) ? { fromUs, toUs } : undefined,
    self: [...list].sort((x, y) => y.selfUs - x.selfUs),
    total: [...list].filter((e) => e.name !== '(idle)').sort((x, y) => y.totalUs - x.totalUs),
    areas: [...areas.entries()].map(([area, us]) => ({ area, us })).sort((x, y) => y.us - x.us),
  };
}

export function formatSummary(s, top = 25) {
  const pct = (us) => ((100 * us) / 1000 / (s.totalMs || 1)).toFixed(1).padStart(5) + '%';
  const pctBusy = (us) => (s.busyMs ? ((100 * us) / 1000 / s.busyMs).toFixed(1) : '-').padStart(5) + '%';
  const ms = (us) => (us / 1000).toFixed(0).padStart(7) + ' ms';
  const where = (e) => (e.url ? `${shortUrl(e.url)}:${e.line}` : '');
  const lines = [];
  lines.push(`profile${s.window ? ' (measurement window only)' : ''}: ${s.samples} samples, ${(s.totalMs / 1000).toFixed(2)} s, idle ${pct(s.idleMs * 1000).trim()}, busy ${(s.busyMs / 1000).toFixed(2)} s`);
  lines.push(`\ntop ${top} by SELF time      (% of profile | % of busy)`);
  for (const e of s.self.slice(0, top)) lines.push(`${ms(e.selfUs)} ${pct(e.selfUs)} ${e.name === '(idle)' ? '     -' : pctBusy(e.selfUs)}  ${e.name}  ${where(e)}`);
  lines.push(`\ntop ${top} by TOTAL time     (% of profile | % of busy)`);
  for (const e of s.total.slice(0, top)) lines.push(`${ms(e.totalUs)} ${pct(e.totalUs)} ${pctBusy(e.totalUs)}  ${e.name}  ${where(e)}`);
  lines.push('\nself time by package / area');
  for (const a of s.areas.slice(0, 15)) lines.push(`${ms(a.us)} ${pct(a.us)}  ${a.area}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const flag = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  let top = Number(flag('--top')) || 25;
  const fromUs = Number(flag('--from-us') ?? -Infinity);
  const toUs = Number(flag('--to-us') ?? Infinity);
  const file = args[0];
  if (args[1] !== undefined && Number(args[1]) > 0) top = Number(args[1]); // positional [top], as before
  if (!file) {
    console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [--top 25 | 25] [--from-us T --to-us T]');
    process.exit(64);
  }
  const s = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), { fromUs, toUs });
  console.log(`${file}\n${formatSummary(s, top)}`);
}
