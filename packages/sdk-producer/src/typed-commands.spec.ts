import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));

describe('typed commands (declaration merging)', () => {
  it('checks payloads of declared commands and leaves others free', () => {
    // test/fixtures/typed-commands.ts marks every misuse with @ts-expect-error: it compiles
    // cleanly only if each of those lines really is a type error.
    const fixture = join(here, '..', 'test', 'fixtures', 'typed-commands.ts');
    const program = ts.createProgram([fixture], {
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
    const diags = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diags).toEqual([]);
  }, 30_000);
});
