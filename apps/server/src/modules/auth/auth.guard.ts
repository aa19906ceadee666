/** HTTP guard: authenticates per the route's @Auth metadata and attaches the Principal. */
import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Principal } from '../../domain/claims.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { AuthService, bearerToken, type AuthMode } from './auth.service.js';
import { RateLimiter } from './rate-limiter.js';

export const AUTH_META = 'codeq:auth';
export interface AuthRequirement {
  mode: AuthMode;
  scope?: string;
  /** Rate-limit bucket and operation label (config-and-ops §5). */
  limit?: { scope: 'producer' | 'worker' | 'admin'; operation: string };
}

/** Declare how a route authenticates, the worker scope it needs and its rate-limit bucket. */
export const Auth = (mode: AuthMode, scope?: string, limit?: AuthRequirement['limit']) =>
  SetMetadata(AUTH_META, { mode, ...(scope ? { scope } : {}), ...(limit ? { limit } : {}) });

export interface AuthedRequest {
  headers: Record<string, string | string[] | undefined>;
  principal?: Principal;
}

@Injectable()
export class AuthGuard implements CanActivate {
  /** Route metadata per handler (static: read once instead of on every request). */
  private readonly needs = new WeakMap<object, AuthRequirement | null>();
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(MetricsService) private readonly metrics: MetricsService,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const handler = ctx.getHandler();
    let need = this.needs.get(handler);
    if (need === undefined) {
      need = this.reflector.get<AuthRequirement | undefined>(AUTH_META, handler) ?? null;
      this.needs.set(handler, need);
    }
    if (!need) return true;
    const p = await this.authorize(need, req.headers['authorization']);
    req.principal = p;
    return true;
  }

  /**
   * The whole check of a route's requirement: token → principal, worker scope, rate limit (with its
   * metric). Used by this guard and by the routes registered directly on Fastify (hot-routes.ts),
   * so both answer the same tokens the same way.
   */
  async authorize(need: AuthRequirement, authorization: string | string[] | undefined): Promise<Principal> {
    const header = Array.isArray(authorization) ? authorization[0] : authorization;
    const p = await this.auth.authenticate(need.mode, header);
    if (need.scope) this.auth.requireScope(p, need.scope);
    if (need.limit && this.limiter.enabled(need.limit.scope)) {
      try {
        this.limiter.take(need.limit.scope, need.limit.operation, bearerToken(header));
      } catch (e) {
        this.metrics.rateLimitHits.inc({ scope: need.limit.scope, operation: need.limit.operation });
        throw e;
      }
    }
    return p;
  }
}
