// Compile-only fixture for src/typed-commands.spec.ts with `strictCommands` on: undeclared
// commands are type errors. Each rule has one `@ts-expect-error` that must be needed.
import { expectTypeOf } from 'expect-type';
import { createProducer, type CommandName, type StrictCommands } from '../../src/index.js';

declare module '../../src/commands.js' {
  interface Commands {
    'strict.email': { payload: { to: string }; result: { id: string } };
    'strict.report': { month: number };
  }
  interface Register {
    strictCommands: true;
  }
}

export async function strictUsage(): Promise<void> {
  expectTypeOf<StrictCommands>().toEqualTypeOf<true>();
  expectTypeOf<CommandName>().toEqualTypeOf<'strict.email' | 'strict.report'>();
  const p = createProducer({ baseUrl: 'http://localhost:8080', token: 't' });
  const h = await p.submit('strict.email', { to: 'a@example.com' });
  expectTypeOf(h.result()).resolves.toEqualTypeOf<{ id: string }>();
  await p.submit('strict.report', { month: 1 });

  // @ts-expect-error undeclared command with strictCommands on
  await p.submit('not.declared', { any: 1 });
  const dynamic: string = 'strict.email';
  // @ts-expect-error an arbitrary string is not a declared command
  await p.submit(dynamic, { to: 'x' });
  await p.submitMany([
    { command: 'strict.report', payload: { month: 2 } },
    // @ts-expect-error batch items with undeclared commands
    { command: 'not.declared', payload: 1 },
  ]);
}
