/** Packs workspace packages like `pnpm publish` would (workspace: ranges → versions), with npm. */
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export async function packageVersion(dir: string): Promise<{ name: string; version: string }> {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  return { name: pkg.name, version: pkg.version };
}

export async function pack(dir: string, into: string, versions: Record<string, string>): Promise<string> {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  const stage = join(into, `stage-${pkg.name.replace(/\W/g, '_')}`);
  await mkdir(stage, { recursive: true });
  for (const f of ['bin', 'dist', 'proto', 'oclif.manifest.json', 'README.md']) await cp(join(dir, f), join(stage, f), { recursive: true }).catch(() => undefined);
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries<string>(pkg[field] ?? {})) {
      if (range.startsWith('workspace:')) pkg[field][name] = versions[name] ?? range;
    }
  }
  delete pkg.devDependencies;
  delete pkg.scripts;
  await writeFile(join(stage, 'package.json'), JSON.stringify(pkg, null, 2));
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', into], { cwd: stage });
  return join(into, stdout.trim().split('\n').pop()!);
}
