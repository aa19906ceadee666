/** Retry delays for nack and lease expiry (task-model §8). Integer seconds. */
export const BACKOFF_POLICIES = ['fixed', 'linear', 'exponential', 'exp_equal_jitter', 'exp_full_jitter'] as const;
export type BackoffPolicy = (typeof BACKOFF_POLICIES)[number];

export interface BackoffConfig {
  policy: BackoffPolicy;
  baseSeconds: number;
  maxSeconds: number;
}

/**
 * Delay before the next delivery, given `n` deliveries so far.
 * `random` returns a float in [0, 1) (injectable for tests).
 */
export function backoffSeconds(cfg: BackoffConfig, n: number, random: () => number = Math.random): number {
  const base = cfg.baseSeconds <= 0 ? 1 : cfg.baseSeconds;
  const max = cfg.maxSeconds <= 0 ? base : cfg.maxSeconds;
  const exp = () => Math.min(Math.floor(base * 2 ** Math.min(n, 62)), max);
  switch (cfg.policy) {
    case 'fixed':
      return Math.min(base, max);
    case 'linear':
      return Math.min(base * Math.max(1, n), max);
    case 'exponential':
      return exp();
    case 'exp_equal_jitter': {
      const d = exp();
      const half = Math.floor(d / 2);
      return half + Math.floor(random() * (half + 1));
    }
    case 'exp_full_jitter': {
      const d = exp();
      return d <= 0 ? 0 : Math.floor(random() * (d + 1));
    }
  }
}

/** Delay applied by a nack: explicit (> 0) or computed, capped at maxSeconds either way. */
export function nackDelaySeconds(cfg: BackoffConfig, requested: number | undefined, n: number, random?: () => number): number {
  const max = cfg.maxSeconds <= 0 ? Math.max(cfg.baseSeconds, 1) : cfg.maxSeconds;
  const d = requested !== undefined && requested > 0 ? requested : backoffSeconds(cfg, n, random);
  return Math.min(d, max);
}
