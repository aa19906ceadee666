/**
 * Optional runtime validation of payloads with any Standard Schema validator (zod, valibot,
 * arktype …): the producer validates before sending, the worker before running a handler.
 */
import type { Commands, PayloadIn } from './commands.js';
import type { StandardSchemaV1 } from './standard-schema.js';

/**
 * Schemas per command. Declared commands must have a schema whose output is their payload type;
 * other commands take any schema.
 */
export type CommandSchemasIn<M> = { readonly [K in Extract<keyof M, string>]?: StandardSchemaV1<unknown, PayloadIn<M, K>> } & {
  readonly [command: string]: StandardSchemaV1 | undefined;
};

/** Schemas for the commands declared in `Commands` of `@codeq/sdk-producer`. */
export type CommandSchemas = CommandSchemasIn<Commands>;

/** One validation issue: the message and the path to the offending value (`[]` for the root). */
export interface SchemaIssue {
  readonly message: string;
  readonly path: ReadonlyArray<PropertyKey>;
}

/** The outcome of {@link validatePayload}. */
export type ValidationOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly issues: readonly SchemaIssue[] };

const isStandard = (s: unknown): s is StandardSchemaV1 =>
  typeof s === 'object' && s !== null && typeof (s as { '~standard'?: { validate?: unknown } })['~standard']?.validate === 'function';

/** Checks that every entry of a `schemas` option is a Standard Schema (throws a TypeError naming the bad one). */
export function checkSchemas(schemas: Readonly<Record<string, unknown>> | undefined): void {
  if (schemas === undefined) return;
  if (typeof schemas !== 'object' || schemas === null) throw new TypeError('schemas must be an object of Standard Schemas by command');
  for (const [command, s] of Object.entries(schemas)) {
    if (s !== undefined && !isStandard(s)) throw new TypeError(`schemas['${command}'] is not a Standard Schema (zod, valibot, arktype … implement '~standard')`);
  }
}

/** Validates `value` with `schema` (sync or async validators); the output may differ from the input (defaults, transforms). */
export async function validatePayload(schema: StandardSchemaV1, value: unknown): Promise<ValidationOutcome> {
  let r = schema['~standard'].validate(value);
  if (r instanceof Promise) r = await r;
  if (r.issues) {
    return { ok: false, issues: r.issues.map((i) => ({ message: i.message, path: (i.path ?? []).map((p) => (typeof p === 'object' ? p.key : p)) })) };
  }
  return { ok: true, value: r.value };
}

/** `to: Invalid email; subject: Required` (the root is `(root)`). */
export function formatIssues(issues: readonly SchemaIssue[]): string {
  return issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`).join('; ');
}
