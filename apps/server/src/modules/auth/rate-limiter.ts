/**
 * Token buckets per (scope, caller) (config-and-ops §5). The caller key is a hash of the raw bearer
 * token, so tokens are never kept in memory in clear. Per process: with several replicas the
 * effective limit is N × the configured one (documented).
 */
import { createHash } from 'node:crypto';
import { CodeqError } from '@codeq/proto/errors';
import type { RateLimitBucket } from '../../config/config.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly janitor: NodeJS.Timeout;

  constructor(private readonly limits: Record<string, RateLimitBucket>, private readonly now: () => number = Date.now) {
    // Drop buckets idle for 10 minutes (a refilled bucket is the same as a new one).
    this.janitor = setInterval(() => this.sweep(600_000), 300_000);
    this.janitor.unref();
  }

  enabled(scope: string): boolean {
    const l = this.limits[scope];
    return !!l && l.requestsPerMinute > 0 && l.burstSize > 0;
  }

  /** Take one token or throw RATE_LIMITED with upstream's body fields. */
  take(scope: string, operation: string, subject: string): void {
    const l = this.limits[scope];
    if (!l || l.requestsPerMinute <= 0 || l.burstSize <= 0) return;
    const key = `${scope}:${createHash('sha256').update(subject.trim()).digest('hex')}`;
    const rate = l.requestsPerMinute / 60; // tokens per second
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: l.burstSize, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(l.burstSize, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - b.tokens) / rate));
    throw new CodeqError('RATE_LIMITED', 'rate limit exceeded', { operation, retryAfterSeconds, scope });
  }

  private sweep(idleMs: number): void {
    const cutoff = this.now() - idleMs;
    for (const [k, b] of this.buckets) if (b.at < cutoff) this.buckets.delete(k);
  }

  close(): void {
    clearInterval(this.janitor);
  }
}
