/** Tenant resolution from token claims (auth.md §6). One function for every transport. */
export const TENANT_ALIASES = ['tid', 'tenantId', 'tenant_id', 'organizationId', 'organization_id'] as const;
export const TENANT_PATTERN = /^[a-z][a-z0-9-]{1,62}$/;

export type TenantResult = { ok: true; tenantId: string } | { ok: false; reason: 'missing' | 'malformed' | 'conflict' };

export function resolveTenant(raw: Readonly<Record<string, unknown>>, subject: string): TenantResult {
  let selected: string | undefined;
  for (const alias of TENANT_ALIASES) {
    if (!Object.prototype.hasOwnProperty.call(raw, alias)) continue;
    const v = raw[alias];
    if (typeof v !== 'string') return { ok: false, reason: 'malformed' };
    const t = v.trim();
    if (!TENANT_PATTERN.test(t)) return { ok: false, reason: 'malformed' };
    if (selected === undefined) selected = t;
    else if (selected !== t) return { ok: false, reason: 'conflict' };
  }
  if (selected !== undefined) return { ok: true, tenantId: selected };
  const sub = subject.trim();
  if (!sub) return { ok: false, reason: 'missing' };
  if (!TENANT_PATTERN.test(sub)) return { ok: false, reason: 'malformed' };
  return { ok: true, tenantId: sub };
}
