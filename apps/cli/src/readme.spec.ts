import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('README', () => {
  it('documents every command', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const dir = join(root, 'src', 'commands');
    const ids = readdirSync(dir).flatMap((topic) =>
      readdirSync(join(dir, topic))
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))
        .map((f) => `${topic} ${f.replace(/\.ts$/, '')}`),
    );

    expect(ids.length).toBe(27);
    for (const id of ids) expect({ id, documented: readme.includes(`codeq ${id}`) }).toEqual({ id, documented: true });
  });
});
