#!/usr/bin/env node
// Generates src/gen/ from proto/ with buf + ts-proto, both taken from node_modules.
//
//   node scripts/gen.mjs           regenerate src/gen/ (the output is committed)
//   node scripts/gen.mjs --check   regenerate into a temp dir and fail when src/gen/ differs
//
// Generation always happens in a temporary directory first, so `gen` and `gen:check` produce
// byte-identical trees, and a failed run never leaves a half-written src/gen/ behind.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const genDir = join(pkgDir, 'src', 'gen');
const buf = join(pkgDir, 'node_modules', '.bin', process.platform === 'win32' ? 'buf.cmd' : 'buf');
const check = process.argv.includes('--check');

if (!existsSync(buf)) {
  console.error(`gen: ${relative(pkgDir, buf)} not found; run pnpm install first`);
  process.exit(2);
}

const tmp = mkdtempSync(join(tmpdir(), 'codeq-proto-gen-'));
try {
  // buf resolves buf.gen.yaml's `local:` plugin path and `out:` relative to the cwd; --output
  // moves the whole output base into the temp dir (so the tree lands in <tmp>/src/gen).
  const run = spawnSync(buf, ['generate', '--template', 'buf.gen.yaml', '--output', tmp], {
    cwd: pkgDir,
    stdio: 'inherit',
  });
  if (run.error) throw run.error;
  if (run.status !== 0) {
    console.error(`gen: buf generate failed (exit ${run.status})`);
    process.exit(run.status ?? 1);
  }
  const fresh = join(tmp, 'src', 'gen');

  if (check) {
    const diffs = compareTrees(fresh, genDir);
    if (diffs.length > 0) {
      console.error('gen:check FAILED: src/gen/ is not what proto/ + buf.gen.yaml generate:');
      for (const d of diffs) console.error(`  ${d}`);
      console.error('Run `pnpm --filter @codeq/proto gen` and commit the result.');
      process.exit(1);
    }
    console.log(`gen:check ok: src/gen/ is up to date (${listFiles(fresh).length} files)`);
  } else {
    rmSync(genDir, { recursive: true, force: true });
    cpSync(fresh, genDir, { recursive: true });
    console.log(`gen: wrote ${listFiles(genDir).length} files to ${relative(pkgDir, genDir)}/`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/** Relative paths of all files below `dir`, sorted ('/' separators). */
function listFiles(dir, base = dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, base));
    else out.push(relative(base, p).split('\\').join('/'));
  }
  return out.sort();
}

/** Human-readable differences between the freshly generated tree and the committed one. */
function compareTrees(expectedDir, actualDir) {
  const expected = listFiles(expectedDir);
  const actual = new Set(listFiles(actualDir));
  const diffs = [];
  for (const f of expected) {
    if (!actual.has(f)) diffs.push(`missing:  src/gen/${f}`);
    else if (!readFileSync(join(expectedDir, f)).equals(readFileSync(join(actualDir, f)))) {
      diffs.push(`differs:  src/gen/${f}`);
    }
    actual.delete(f);
  }
  for (const f of actual) diffs.push(`extra:    src/gen/${f}`);
  return diffs;
}
