// Compile-only fixture for src/typed-handlers.spec.ts with `strictCommands` on: handling an
// undeclared command is a type error. Each rule has one `@ts-expect-error` that must be needed.
import { expectTypeOf } from 'expect-type';
import { createWorker, type CommandName } from '../../src/index.js';

declare module '@codeq/sdk-producer' {
  interface Commands {
    'wstrict.email': { payload: { to: string }; result: { id: string } };
  }
  interface Register {
    strictCommands: true;
  }
}

const target = { baseUrl: 'http://localhost:8080', token: 't' };

export function strictUsage(): void {
  expectTypeOf<CommandName>().toEqualTypeOf<'wstrict.email'>();
  createWorker({ ...target, handlers: { 'wstrict.email': async (data) => ({ id: data.to }) } });
  createWorker({ ...target, commands: ['wstrict.email'], handler: (t) => ({ id: t.data.to }) });

  // @ts-expect-error an undeclared command in `commands`
  createWorker({ ...target, commands: ['not.declared'], handler: () => undefined });
  createWorker({
    ...target,
    handlers: {
      'wstrict.email': async (data) => ({ id: data.to }),
      // @ts-expect-error an undeclared command in `handlers`
      'not.declared': () => undefined,
    },
  });
}
