/**
 * Typed payloads by declaration merging (graphile-worker's `GraphileWorker.Tasks` pattern).
 * Augment this interface once and both `producer.submit()` and the worker's handlers are checked:
 *
 * ```ts
 * declare module '@codeq/sdk-producer' {
 *   interface Commands {
 *     'email.send': { to: string; subject: string };
 *   }
 * }
 * ```
 *
 * Commands that are not listed stay untyped (`unknown` payload).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by users through declaration merging
export interface Commands {}

/** Names of the commands declared in {@link Commands}. */
export type KnownCommand = Extract<keyof Commands, string>;

/** The payload type of command `C`: declared in {@link Commands}, else `unknown`. */
export type PayloadOf<C extends string> = C extends KnownCommand ? Commands[C] : unknown;
