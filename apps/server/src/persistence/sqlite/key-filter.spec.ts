import { KeyFilter } from './key-filter.js';

describe('KeyFilter (idempotency keys on disk, issue 13)', () => {
  it('answers "maybe" for everything until it is complete', () => {
    const f = new KeyFilter();
    expect(f.usable).toBe(false);
    expect(f.mayContain('acme\u0000never-added')).toBe(true);
  });

  it('never forgets an added key, and rules out almost every other one', () => {
    const f = new KeyFilter();
    for (let i = 0; i < 100_000; i++) f.add(`acme\u0000key-${i}`);
    f.markComplete();
    expect(f.usable).toBe(true);
    for (let i = 0; i < 100_000; i++) expect(f.mayContain(`acme\u0000key-${i}`)).toBe(true);
    let maybes = 0;
    for (let i = 0; i < 100_000; i++) if (f.mayContain(`beta\u0000key-${i}`)) maybes++;
    expect(maybes).toBeLessThan(100); // 0.1 %: with 100,000 keys in 2 MiB the expected rate is far lower
  });

  it('reset forgets the keys and the completeness', () => {
    const f = new KeyFilter();
    f.add('a\u0000k');
    f.markComplete();
    expect(f.mayContain('a\u0000other')).toBe(false);
    f.reset();
    expect(f.usable).toBe(false);
    f.markComplete();
    expect(f.mayContain('a\u0000k')).toBe(false);
  });
});
