/**
 * `jwks` validator (auth.md §4.2) with jose: keys from a remote JWKS, cached and refreshed when a
 * token names an unknown `kid` (single-flight, at most once per cooldown), issuer and audience
 * checks, RS/PS/ES/EdDSA algorithms, and a clock skew that really applies (upstream's is ignored).
 */
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Claims, TokenValidator } from '../../domain/claims.js';

export interface JwksConfig {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** Nanoseconds (Go time.Duration encoding, as upstream). */
  clockSkew?: number;
  /** Nanoseconds; 0 = default 5 s. */
  httpTimeout?: number;
  /** Milliseconds between refetches triggered by unknown kids (default 30 s). */
  cooldownMs?: number;
  /** Accept tokens without `exp` (default false: such tokens never expire, so they are refused). */
  allowMissingExp?: boolean;
}

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export function parseJwksConfig(config: unknown): JwksConfig {
  let o: unknown = config;
  if (typeof o === 'string') {
    try {
      o = JSON.parse(o);
    } catch (e) {
      const at = /position \d+/.exec((e as Error).message); // the message would quote the input
      throw new Error(`invalid JWKS config: invalid JSON${at ? ` (${at[0]})` : ''}`);
    }
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('invalid JWKS config: expected an object');
  const c = o as Record<string, unknown>;
  const str = (k: string) => (typeof c[k] === 'string' ? (c[k]).trim() : '');
  const jwksUrl = str('jwksUrl');
  if (!jwksUrl) throw new Error('jwksURL is required');
  try {
    const u = new URL(jwksUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new Error(`invalid JWKS config: jwksUrl must be an http(s) URL`);
  }
  const issuer = str('issuer');
  if (!issuer) throw new Error('issuer is required');
  const audience = str('audience');
  if (!audience) throw new Error('audience is required');
  const num = (k: string): number | undefined => {
    if (c[k] === undefined || c[k] === null) return undefined;
    if (typeof c[k] !== 'number' || !Number.isFinite(c[k]) || (c[k]) < 0) throw new Error(`invalid JWKS config: ${k} must be a non-negative integer (nanoseconds)`);
    return c[k];
  };
  const out: JwksConfig = { jwksUrl, issuer, audience };
  const skew = num('clockSkew');
  const timeout = num('httpTimeout');
  const cooldown = num('cooldownMs');
  if (skew !== undefined) out.clockSkew = skew;
  if (timeout !== undefined) out.httpTimeout = timeout;
  if (cooldown !== undefined) out.cooldownMs = cooldown;
  if (c['allowMissingExp'] !== undefined) {
    if (typeof c['allowMissingExp'] !== 'boolean') throw new Error('invalid JWKS config: allowMissingExp must be true or false');
    out.allowMissingExp = c['allowMissingExp'];
  }
  return out;
}

function toClaims(p: JWTPayload): Claims {
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const aud = Array.isArray(p.aud) ? p.aud.filter((a): a is string => typeof a === 'string') : typeof p.aud === 'string' ? [p.aud] : [];
  const scope = (p as Record<string, unknown>)['scope'];
  const eventTypes = (p as Record<string, unknown>)['eventTypes'];
  const claims: Claims = {
    subject: str(p.sub),
    email: str((p as Record<string, unknown>)['email']),
    issuer: str(p.iss),
    audience: aud,
    scopes: typeof scope === 'string' ? scope.split(/\s+/).filter(Boolean) : [],
    eventTypes: Array.isArray(eventTypes) ? eventTypes.filter((e): e is string => typeof e === 'string') : [],
    raw: { ...p },
  };
  if (typeof p.exp === 'number') claims.expiresAtMs = p.exp * 1000;
  return claims;
}

export function jwksValidator(config: unknown): TokenValidator {
  const cfg = parseJwksConfig(config);
  const keys = createRemoteJWKSet(new URL(cfg.jwksUrl), {
    timeoutDuration: cfg.httpTimeout ? Math.max(1, Math.round(cfg.httpTimeout / 1e6)) : 5000,
    cooldownDuration: cfg.cooldownMs ?? 30_000,
    cacheMaxAge: 5 * 60_000,
  });
  const clockTolerance = Math.round((cfg.clockSkew ?? 0) / 1e9);
  return {
    async validate(token: string): Promise<Claims> {
      let header;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        throw new Error('token is malformed');
      }
      if (!header.alg || !ALGORITHMS.includes(header.alg)) throw new Error(`unexpected signing method: ${String(header.alg)}`);
      if (typeof header.kid !== 'string' || !header.kid) throw new Error('missing kid in token header');
      try {
        // Tokens without `exp` never expire: refused unless the config allows them (issue 12 item 13).
        const { payload } = await jwtVerify(token, keys, {
          issuer: cfg.issuer,
          audience: cfg.audience,
          algorithms: ALGORITHMS,
          clockTolerance,
          ...(cfg.allowMissingExp ? {} : { requiredClaims: ['exp'] }),
        });
        const claims = toClaims(payload);
        if (claims.expiresAtMs !== undefined) claims.expiresAtMs += clockTolerance * 1000;
        return claims;
      } catch (e) {
        throw new Error(describe(e, token));
      }
    },
  };
}

/** Upstream-style messages; never echo the token. */
function describe(e: unknown, token: string): string {
  if (e instanceof errors.JWTExpired) return 'token expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    let payload: Record<string, unknown> = {};
    try {
      payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      /* ignore */
    }
    if (e.claim === 'iss') return `invalid issuer: ${typeof payload['iss'] === 'string' ? payload['iss'] : ''}`;
    if (e.claim === 'aud') {
      const aud = payload['aud'];
      return `invalid audience: [${Array.isArray(aud) ? aud.join(' ') : typeof aud === 'string' ? aud : ''}]`;
    }
    if (e.claim === 'nbf') return 'token is not valid yet';
    return `token has invalid claims: ${e.message}`;
  }
  // Never echo the JWKS URL or network errors to (unauthenticated) callers (issue 12 item 13).
  if (e instanceof errors.JWKSNoMatchingKey) return 'key not found in JWKS';
  if (e instanceof errors.JWKSTimeout) return 'failed to fetch JWKS: timeout';
  if (e instanceof errors.JWKSInvalid) return 'failed to parse JWKS';
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (e instanceof errors.JOSEAlgNotAllowed) return 'unexpected signing method';
  if (e instanceof errors.JWTInvalid || e instanceof errors.JWSInvalid) return 'token is malformed';
  const msg = e instanceof Error ? e.message : String(e);
  if (/fetch|ECONNREFUSED|ENOTFOUND|ECONNRESET|EHOSTUNREACH|socket|status/i.test(msg)) return 'failed to fetch JWKS';
  return 'invalid token';
}
