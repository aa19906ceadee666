import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));

/** Type errors of compiling `file` alone (strict settings like the package's). */
function diagnostics(file: string): string[] {
  const program = ts.createProgram([file], {
    strict: true,
    noUncheckedIndexedAccess: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    types: ['node'],
    skipLibCheck: true,
    noEmit: true,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? `${d.file.fileName.slice(here.length - 3)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

// Each fixture marks every misuse with @ts-expect-error and states types with expect-type: it
// compiles cleanly only if each of those lines really is a type error and every expectation holds.
describe('typed handlers (declaration merging)', () => {
  it('types handler maps (data, ctx.task, results), narrows task.command, types events and schemas', () => {
    expect(diagnostics(join(here, '..', 'test', 'fixtures', 'typed-handlers.ts'))).toEqual([]);
  }, 60_000);

  it('rejects handlers of undeclared commands when Register.strictCommands is on', () => {
    expect(diagnostics(join(here, '..', 'test', 'strict', 'strict-handlers.ts'))).toEqual([]);
  }, 60_000);
});
