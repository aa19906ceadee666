import type { Task } from './transport/types.js';

/**
 * Typed commands by declaration merging (graphile-worker's `GraphileWorker.Tasks` pattern).
 * Augment this interface once and `producer.submit()`, `handle.result()` and the worker's
 * handlers are all checked:
 *
 * ```ts
 * declare module '@codeq/sdk-producer' {
 *   interface Commands {
 *     // full form: payload and result
 *     'email.send': { payload: { to: string; subject: string }; result: { id: string } };
 *     // payload-only form (result untyped)
 *     'report.build': { month: number };
 *   }
 * }
 * ```
 *
 * An entry is read as the full form when it has a `payload` key and no keys other than
 * `payload` and `result`; anything else is a payload type. (So a payload that is literally
 * `{ payload: … }` must be declared in the full form: `{ payload: { payload: … } }`.)
 * Commands that are not listed stay untyped (`unknown` payload) unless {@link Register} turns on
 * `strictCommands`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by users through declaration merging
export interface Commands {}

/**
 * Type-level switches, set by declaration merging:
 *
 * ```ts
 * declare module '@codeq/sdk-producer' {
 *   interface Register { strictCommands: true }
 * }
 * ```
 *
 * With `strictCommands: true`, submitting or handling a command that is not declared in
 * {@link Commands} is a type error.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by users through declaration merging
export interface Register {}

/** Whether {@link Register} turned on `strictCommands`. */
export type StrictCommands = Register extends { strictCommands: true } ? true : false;

/** True when command entry `E` uses the full `{ payload; result? }` form. */
export type IsFullEntry<E> = [E] extends [{ payload: unknown }] ? ([Exclude<keyof E, 'payload' | 'result'>] extends [never] ? true : false) : false;

/** The result type a task gets when its command declares none (what the server stores: an object). */
export type AnyResult = Record<string, unknown>;

/** Payload of command `C` in the command map `M` (`unknown` when `C` is not declared). */
export type PayloadIn<M, C extends string> = C extends keyof M ? (IsFullEntry<M[C]> extends true ? (M[C] extends { payload: infer P } ? P : never) : M[C]) : unknown;

/** Declared result of command `C` in `M`, or `undefined` when it declares none. */
export type DeclaredResultIn<M, C extends string> = C extends keyof M ? (IsFullEntry<M[C]> extends true ? (M[C] extends { result: infer R } ? R : undefined) : undefined) : undefined;

/** Result of command `C` in `M` ({@link AnyResult} when it declares none). */
export type ResultIn<M, C extends string> = DeclaredResultIn<M, C> extends infer R ? ([R] extends [undefined] ? AnyResult : R) : never;

/** Command names accepted where `M` is the command map: the declared ones, plus any string unless `strictCommands`. */
export type CommandNameIn<M> = StrictCommands extends true ? Extract<keyof M, string> : Extract<keyof M, string> | (string & {});

/**
 * The task of command `C` (distributes over unions): `task.command` is the literal, `task.data`
 * the payload, so a `switch (task.command)` narrows `task.data`.
 */
export type TaskIn<M, C extends string> = C extends string ? Task<PayloadIn<M, C>, C> : never;

/** Names of the commands declared in {@link Commands}. */
export type KnownCommand = Extract<keyof Commands, string>;

/** Command names `submit()` accepts: declared ones, and any string unless `strictCommands` is on. */
export type CommandName = CommandNameIn<Commands>;

/** The payload type of command `C`: declared in {@link Commands}, else `unknown`. */
export type PayloadOf<C extends string> = PayloadIn<Commands, C>;

/** The result type of command `C`: its declared `result`, else `Record<string, unknown>`. */
export type ResultOf<C extends string> = ResultIn<Commands, C>;

/** The task of command `C` (a union for a union of commands, discriminated by `command`). */
export type TaskOf<C extends string> = TaskIn<Commands, C>;
