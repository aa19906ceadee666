/** HTTP guard: authenticates per the route's @Auth metadata and attaches the Principal. */
import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Principal } from '../../domain/claims.js';
import { AuthService, type AuthMode } from './auth.service.js';

export const AUTH_META = 'codeq:auth';
export interface AuthRequirement {
  mode: AuthMode;
  scope?: string;
}

/** Declare how a route authenticates (and the worker scope it needs). */
export const Auth = (mode: AuthMode, scope?: string) => SetMetadata(AUTH_META, scope ? { mode, scope } : { mode });

export interface AuthedRequest {
  headers: Record<string, string | string[] | undefined>;
  principal?: Principal;
}

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(@Inject(Reflector) private readonly reflector: Reflector, @Inject(AuthService) private readonly auth: AuthService) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const need = this.reflector.get<AuthRequirement | undefined>(AUTH_META, ctx.getHandler());
    if (!need) return true;
    const header = req.headers['authorization'];
    const p = await this.auth.authenticate(need.mode, Array.isArray(header) ? header[0] : header);
    if (need.scope) this.auth.requireScope(p, need.scope);
    req.principal = p;
    return true;
  }
}
