/**
 * The dashboard's built files (apps/dashboard/dist), loaded into memory once at start-up with their
 * precompressed `.br` / `.gz` siblings (written by the dashboard build). A few hundred kilobytes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';

export interface StaticFile {
  type: string;
  etag: string;
  /** Hashed file names (Vite's assets/) never change: cached for a year. */
  immutable: boolean;
  body: Buffer;
  br: Buffer | null;
  gzip: Buffer | null;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.woff2': 'font/woff2',
};

/** Where the built dashboard is: the configured directory, else the @codeq/dashboard package's dist/. */
export function resolveDashboardDir(configured: string): string | null {
  if (configured) return configured;
  try {
    const pkg = createRequire(import.meta.url).resolve('@codeq/dashboard/package.json');
    return join(dirname(pkg), 'dist');
  } catch {
    return null;
  }
}

/** Loads every file under `dir` (keyed by its URL path relative to `dir`, with `/`), or null when there is no index.html. */
export function loadStaticFiles(dir: string): Map<string, StaticFile> | null {
  if (!existsSync(join(dir, 'index.html'))) return null;
  const files = new Map<string, StaticFile>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      const st = statSync(full);
      if (st.isDirectory()) {
        walk(full);
        continue;
      }
      if (name.endsWith('.br') || name.endsWith('.gz')) continue;
      const rel = relative(dir, full).split(sep).join('/');
      const body = readFileSync(full);
      const sibling = (ext: string) => (existsSync(full + ext) ? readFileSync(full + ext) : null);
      files.set(rel, {
        type: TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream',
        etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`,
        immutable: rel.startsWith('assets/'),
        body,
        br: sibling('.br'),
        gzip: sibling('.gz'),
      });
    }
  };
  walk(dir);
  return files;
}

/** The encoding to send for an Accept-Encoding header: br, then gzip (q=0 excludes). */
export function pickEncoding(accept: string | undefined, f: StaticFile): 'br' | 'gzip' | null {
  if (!accept) return null;
  const ok = new Set<string>();
  for (const part of accept.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q && Number(q.slice(2)) === 0) continue;
    if (name) ok.add(name.trim());
  }
  if (f.br && (ok.has('br') || ok.has('*'))) return 'br';
  if (f.gzip && (ok.has('gzip') || ok.has('*'))) return 'gzip';
  return null;
}
