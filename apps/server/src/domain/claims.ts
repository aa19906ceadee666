/** What a validator returns for an accepted token (auth.md §1). */
export interface Claims {
  subject: string;
  email: string;
  issuer: string;
  audience: string[];
  scopes: string[];
  eventTypes: string[];
  raw: Record<string, unknown>;
  /** When the token stops being accepted (its `exp` plus the validator's clock skew). */
  expiresAtMs?: number;
}

/** Validates a bearer token. Rejections throw an Error whose message is returned to the client. */
export interface TokenValidator {
  validate(token: string): Promise<Claims> | Claims;
}

export const WORKER_SCOPES = [
  'codeq:claim',
  'codeq:heartbeat',
  'codeq:abandon',
  'codeq:nack',
  'codeq:result',
  'codeq:subscribe',
] as const;
export type WorkerScope = (typeof WORKER_SCOPES)[number];
export const ADMIN_SCOPE = 'codeq:admin';

/** The authenticated caller, after tenant resolution. */
export interface Principal {
  kind: 'producer' | 'worker';
  subject: string;
  tenantId: string;
  claims: Claims;
  /** Upper-cased raw `role`, or USER. */
  role: string;
  isAdmin: boolean;
}

/** Upstream's default commands for a `*` worker that names none (task-model §18 #22). */
export const LEGACY_DEFAULT_COMMANDS = ['GENERATE_MASTER', 'GENERATE_CREATIVE'] as const;

/**
 * Commands a worker may claim, given what it asked for. Returns null when a requested command is
 * outside its event types (→ 403 `event type not allowed`).
 */
export function authorisedCommands(eventTypes: readonly string[], requested: readonly string[]): string[] | null {
  const any = eventTypes.includes('*');
  if (requested.length === 0) return any ? [...LEGACY_DEFAULT_COMMANDS] : [...eventTypes];
  if (any) return [...requested];
  for (const c of requested) if (!eventTypes.includes(c)) return null;
  return [...requested];
}
