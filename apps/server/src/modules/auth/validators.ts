/**
 * Token validators and their registry (auth.md §2, §4). `static` is built in here; `jwks` and
 * `multi` register into the same registry (their own module), so adding a provider never touches
 * the guards.
 */
import * as crypto from 'node:crypto';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Claims, TokenValidator } from '../../domain/claims.js';
import { jwksValidator } from './jwks.validator.js';

export type ValidatorFactory = (config: unknown, registry: ValidatorRegistry) => TokenValidator;

export class ValidatorRegistry {
  private readonly factories = new Map<string, ValidatorFactory>();
  register(type: string, factory: ValidatorFactory): this {
    this.factories.set(type, factory);
    return this;
  }
  has(type: string): boolean {
    return this.factories.has(type);
  }
  build(type: string, config: unknown): TokenValidator {
    const f = this.factories.get(type.trim());
    if (!f) throw new Error(`unknown auth provider type: ${type}`);
    return f(config, this);
  }
}

function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`static auth: invalid config: ${what} must be a list of strings`);
  return v as string[];
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

// One-shot crypto.hash (Node ≥ 20.12) avoids a Hash object per request.
const oneShot = (crypto as unknown as { hash?: (alg: string, data: string, enc: 'buffer') => Buffer }).hash;
const digest = (s: string): Buffer => (oneShot ? oneShot('sha256', s, 'buffer') : createHash('sha256').update(s).digest());

/** Accepts exactly one configured token; returns fixed claims (auth.md §4.1). */
export function staticValidator(config: unknown): TokenValidator {
  if (config === undefined || config === null || config === '') throw new Error('static auth: missing config');
  let o: Record<string, unknown>;
  if (typeof config === 'string') o = { token: config };
  else if (typeof config === 'object' && !Array.isArray(config)) o = config as Record<string, unknown>;
  else throw new Error('static auth: invalid config: expected a token string or an object');
  const token = typeof o['token'] === 'string' ? o['token'].trim() : '';
  if (!token) throw new Error('static auth: token is required');
  const subject = typeof o['subject'] === 'string' && o['subject'] ? o['subject'] : 'static';
  const email = typeof o['email'] === 'string' ? o['email'] : '';
  const scopes = stringList(o['scopes'], 'scopes');
  const eventTypes = stringList(o['eventTypes'], 'eventTypes');
  const raw = o['raw'] ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('static auth: invalid config: raw must be an object');
  const expected = digest(token);
  // Claims are immutable and shared between requests (deep-frozen once).
  const claims: Claims = deepFreeze({
    subject,
    email,
    issuer: '',
    audience: [],
    scopes: [...scopes],
    eventTypes: [...eventTypes],
    raw: structuredClone(raw as Record<string, unknown>),
  });
  // Tokens already verified skip hashing. V8 seeds string hashes per process, so a map lookup
  // reveals nothing useful about the secret; new tokens are compared in constant time through
  // fixed-length digests (auth.md §9 #6).
  const verified = new Set<string>();
  return {
    validate(presented: string): Claims {
      if (verified.has(presented)) return claims;
      if (!timingSafeEqual(digest(presented.trim()), expected)) throw new Error('invalid token');
      if (verified.size < 64) verified.add(presented);
      return claims;
    },
  };
}

/** Tries 2–4 nested providers in order; the first that accepts wins (auth.md §4.3). */
export function multiValidator(config: unknown, registry: ValidatorRegistry): TokenValidator {
  let o: unknown = config;
  if (typeof o === 'string') {
    try {
      o = JSON.parse(o);
    } catch (e) {
      throw new Error(`multi auth: invalid config: ${(e as Error).message}`);
    }
  }
  const providers = (o as { providers?: unknown } | null)?.providers;
  if (!Array.isArray(providers) || providers.length < 2 || providers.length > 4) {
    throw new Error('multi auth: providers must contain between 2 and 4 entries');
  }
  const children = providers.map((p, i) => {
    const type = typeof (p as { type?: unknown })?.type === 'string' ? ((p as { type: string }).type).trim() : '';
    if (!type || type === 'multi') throw new Error(`multi auth: provider ${i} has an invalid type`);
    try {
      return registry.build(type, (p as { config?: unknown }).config);
    } catch (e) {
      throw new Error(`multi auth: configure provider ${i}: ${(e as Error).message}`);
    }
  });
  return {
    async validate(token: string): Promise<Claims> {
      const errors: string[] = [];
      for (const c of children) {
        try {
          return await c.validate(token);
        } catch (e) {
          errors.push(e instanceof Error ? e.message : String(e));
        }
      }
      throw new Error(`multi auth: token rejected by every provider: ${errors.join('\n')}`);
    },
  };
}

export function defaultRegistry(): ValidatorRegistry {
  return new ValidatorRegistry()
    .register('static', (c) => staticValidator(c))
    .register('jwks', (c) => jwksValidator(c))
    .register('multi', (c, r) => multiValidator(c, r));
}
