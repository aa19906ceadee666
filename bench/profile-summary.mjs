#!/usr/bin/env node
// Summarise a V8 .cpuprofile: top functions by self time and by total (inclusive) time, and self
// time per package. Usage: node bench/profile-summary.mjs <file.cpuprofile> [top=25]
import { readFileSync } from 'node:fs';

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!file) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [top]');
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfById = new Map();
let total = 0;
p.samples.forEach((id, i) => {
  const d = p.timeDeltas[i] ?? 0;
  selfById.set(id, (selfById.get(id) ?? 0) + d);
  total += d;
});
const label = (cf) => `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
const self = new Map();
const incl = new Map();
const pkg = new Map();
for (const [id, t] of selfById) {
  const cf = byId.get(id).callFrame;
  self.set(label(cf), (self.get(label(cf)) ?? 0) + t);
  const m = cf.url.match(/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/);
  const k = m ? m[1] : cf.url.includes('/apps/server/') ? 'codeq server' : cf.url ? 'node internals' : cf.functionName;
  pkg.set(k, (pkg.get(k) ?? 0) + t);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur).callFrame);
    if (seen.has(l)) continue;
    seen.add(l);
    incl.set(l, (incl.get(l) ?? 0) + t);
  }
}
const show = (title, m, n) => {
  console.log(`\n${title}`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${((100 * t) / total).toFixed(1).padStart(6)}%  ${k}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
show('self time', self, top);
show('total time (inclusive)', incl, top);
show('self time by package', pkg, 15);
