/**
 * Packs a workspace package the way `pnpm publish` would (`workspace:` ranges rewritten to
 * versions, devDependencies and scripts dropped) with `npm pack`, for the monorepo's tests that
 * install the published artifacts into an empty project.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

type Manifest = Record<string, unknown> & { name: string };

/** `execFile` as a promise (stdout/stderr as strings). */
export const run = promisify(execFile);

/** Name and version of the package in `dir`. */
export async function packageVersion(dir: string): Promise<{ name: string; version: string }> {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}

/**
 * Copies the publishable files of the package in `dir` to a stage under `into`, rewrites its
 * `workspace:` ranges with `versions` (package name → version), and `npm pack`s it into `into`.
 * Resolves with the tarball's path.
 */
export async function packWorkspacePackage(dir: string, into: string, versions: Record<string, string> = {}): Promise<string> {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Manifest;
  const stage = join(into, `stage-${pkg.name.replace(/\W/g, '_')}`);
  await mkdir(stage, { recursive: true });
  for (const f of ['bin', 'dist', 'proto', 'oclif.manifest.json', 'README.md']) await cp(join(dir, f), join(stage, f), { recursive: true }).catch(() => undefined);
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    const deps = pkg[field];
    if (typeof deps !== 'object' || deps === null) continue;
    const ranges = deps as Record<string, string>;
    for (const [name, range] of Object.entries(ranges)) {
      if (range.startsWith('workspace:')) ranges[name] = versions[name] ?? range;
    }
  }
  delete pkg.devDependencies;
  delete pkg.scripts;
  await writeFile(join(stage, 'package.json'), JSON.stringify(pkg, null, 2));
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', into], { cwd: stage });
  return join(into, stdout.trim().split('\n').pop()!);
}

/**
 * Packs the packages in `dirs` (in order) into `into`, each with the others' `workspace:` ranges
 * rewritten to their versions. Resolves with the tarball path per package name, in `dirs` order.
 */
export async function packWorkspacePackages(dirs: readonly string[], into: string): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const d of dirs) {
    const { name, version } = await packageVersion(d);
    versions[name] = version;
  }
  const out: Record<string, string> = {};
  for (const d of dirs) out[(await packageVersion(d)).name] = await packWorkspacePackage(d, into, versions);
  return out;
}
