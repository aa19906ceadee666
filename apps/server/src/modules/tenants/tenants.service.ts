/** Tenant resolution for every transport (auth.md §6). Failures never echo claim values. */
import { Injectable } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import type { Claims } from '../../domain/claims.js';
import { resolveTenant } from '../../domain/tenant.js';

@Injectable()
export class TenantsService {
  /** The caller's tenant, or 403 `invalid tenant claims`. */
  resolve(claims: Claims): string {
    const r = resolveTenant(claims.raw, claims.subject);
    if (!r.ok) throw new CodeqError('FORBIDDEN', 'invalid tenant claims', { reason: r.reason });
    return r.tenantId;
  }
}
