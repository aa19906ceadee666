/**
 * Authentication modes of auth.md §7: producer, worker, any, admin. Shared by HTTP guards and the
 * gRPC streams, so both transports accept and refuse the same tokens.
 */
import { Inject, Injectable } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import type { Config } from '../../config/config.js';
import { CONFIG, LOGGER } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import { ADMIN_SCOPE, WORKER_SCOPES, type Claims, type Principal, type TokenValidator } from '../../domain/claims.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { ValidatorRegistry } from './validators.js';

export const VALIDATOR_REGISTRY = Symbol('VALIDATOR_REGISTRY');

export type AuthMode = 'producer' | 'worker' | 'any' | 'admin';

const unauth = (m: string) => new CodeqError('UNAUTHENTICATED', m);

/** Split `Authorization: Bearer <token>` (http-api §2.1). */
export function bearerToken(header: string | undefined): string {
  if (!header || !header.trim()) throw unauth('missing Authorization header');
  const i = header.indexOf(' ');
  if (i < 0 || header.slice(0, i).toLowerCase() !== 'bearer') throw unauth('invalid Authorization format');
  const token = header.slice(i + 1);
  if (!token.trim()) throw unauth('invalid Authorization format');
  return token;
}

@Injectable()
export class AuthService {
  readonly producer: TokenValidator | null;
  readonly worker: TokenValidator | null;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(VALIDATOR_REGISTRY) registry: ValidatorRegistry,
    @Inject(TenantsService) private readonly tenants: TenantsService,
    @Inject(LOGGER) log: Logger,
  ) {
    const build = (which: string, p: Config['producerAuth']): TokenValidator | null => {
      if (!p) return null;
      try {
        return registry.build(p.provider, p.config);
      } catch (e) {
        throw new Error(`${which}: ${(e as Error).message}`);
      }
    };
    this.producer = build('PRODUCER_AUTH_CONFIG', config.producerAuth);
    this.worker = build('WORKER_AUTH_CONFIG', config.workerAuth);
    if (!this.producer) log.warn({}, 'no producer validator configured: producer and admin routes answer 500 (set PRODUCER_AUTH_PROVIDER/PRODUCER_AUTH_CONFIG)');
    if (!this.worker) log.warn({}, 'no worker validator configured: worker routes answer 500 (set WORKER_AUTH_PROVIDER/WORKER_AUTH_CONFIG)');
  }

  private async run(v: TokenValidator, token: string): Promise<Claims> {
    try {
      return await v.validate(token);
    } catch (e) {
      throw unauth(e instanceof Error ? e.message : 'invalid token');
    }
  }

  private principal(kind: 'producer' | 'worker', claims: Claims): Principal {
    const tenantId = this.tenants.resolve(claims);
    const rawRole = claims.raw['role'];
    const role = typeof rawRole === 'string' && rawRole.trim() ? rawRole.trim().toUpperCase() : 'USER';
    const isAdmin = claims.scopes.includes(ADMIN_SCOPE) || role === 'ADMIN';
    return { kind, subject: claims.subject, tenantId, claims, role, isAdmin };
  }

  async authenticateProducer(token: string): Promise<Principal> {
    if (!this.producer) throw new CodeqError('INTERNAL', 'producer validator not configured');
    return this.principal('producer', await this.run(this.producer, token));
  }

  async authenticateWorker(token: string): Promise<Principal> {
    if (!this.worker) throw new CodeqError('INTERNAL', 'worker validator not configured');
    let claims: Claims;
    try {
      claims = await this.run(this.worker, token);
      // The subject is the worker id that owns leases: an empty one would be shared by everyone.
      if (!claims.subject.trim()) throw unauth('missing subject');
      if (claims.eventTypes.length === 0) throw unauth('missing eventTypes');
      if (claims.scopes.length === 0) throw unauth('missing scope');
    } catch (workerErr) {
      if (this.config.allowProducerAsWorker && this.producer) {
        let p: Claims | undefined;
        try {
          p = await this.run(this.producer, token);
        } catch {
          /* report the worker error */
        }
        // The producer token is valid: its tenant claims decide from here (a bad tenant is
        // `403 invalid tenant claims` / PERMISSION_DENIED, not the worker validator's error).
        if (p) return this.principal('worker', { ...p, issuer: 'producer', scopes: [...WORKER_SCOPES], eventTypes: ['*'] });
      }
      throw workerErr;
    }
    return this.principal('worker', claims);
  }

  async authenticateAny(token: string): Promise<Principal> {
    if (this.worker) {
      let claims: Claims | null = null;
      try {
        claims = await this.worker.validate(token);
      } catch {
        claims = null;
      }
      if (claims && claims.eventTypes.length > 0) return this.principal('worker', claims);
    }
    if (this.producer) {
      let claims: Claims | null = null;
      try {
        claims = await this.producer.validate(token);
      } catch {
        claims = null;
      }
      if (claims) return this.principal('producer', claims);
    }
    throw unauth('invalid token');
  }

  async authenticate(mode: AuthMode, header: string | undefined): Promise<Principal> {
    const token = bearerToken(header);
    switch (mode) {
      case 'producer':
        return this.authenticateProducer(token);
      case 'worker':
        return this.authenticateWorker(token);
      case 'any':
        return this.authenticateAny(token);
      case 'admin': {
        const p = await this.authenticateProducer(token);
        // Upstream answers 401; a non-admin is authenticated but not allowed: 403 (architecture §2).
        if (!p.isAdmin) throw new CodeqError('FORBIDDEN', 'unauthorized. Admin only');
        return p;
      }
    }
  }

  /** Worker scope check (403 `missing scope`). */
  requireScope(p: Principal, scope: string): void {
    if (!p.claims.scopes.includes(scope)) throw new CodeqError('FORBIDDEN', 'missing scope', { scope });
  }
}
