import { findExecutable, resultFromStdout } from './shell-task.js';

describe(resultFromStdout.name, () => {
  it('keeps a JSON object and wraps anything else as { stdout }', () => {
    expect(resultFromStdout('{"a":1}\n')).toEqual({ a: 1 });
    expect(resultFromStdout('[1,2]')).toEqual({ stdout: '[1,2]' });
    expect(resultFromStdout('hello\n')).toEqual({ stdout: 'hello\n' });
    expect(resultFromStdout('{broken')).toEqual({ stdout: '{broken' });
    expect(resultFromStdout('')).toEqual({ stdout: '' });
  });
});

describe(findExecutable.name, () => {
  it('finds programs on PATH and by path', () => {
    expect(findExecutable('sh')).toMatch(/\/sh$/);
    expect(findExecutable('/bin/sh')).toBe('/bin/sh');
    expect(findExecutable('surely-not-a-program-xyz')).toBeUndefined();
    expect(findExecutable('sh', { PATH: '/nonexistent' })).toBeUndefined();
  });
});
