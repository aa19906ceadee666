import { Module } from '@nestjs/common';
import type { Config } from '../../config/config.js';
import { CONFIG } from '../../common/tokens.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { RateLimiter } from './rate-limiter.js';
import { AuthGuard } from './auth.guard.js';
import { AuthService, VALIDATOR_REGISTRY } from './auth.service.js';
import { defaultRegistry } from './validators.js';

@Module({
  imports: [TenantsModule, MetricsModule],
  providers: [
    { provide: VALIDATOR_REGISTRY, useFactory: defaultRegistry },
    { provide: RateLimiter, useFactory: (c: Config) => new RateLimiter({ ...c.rateLimit }), inject: [CONFIG] },
    AuthService,
    AuthGuard,
  ],
  exports: [AuthService, AuthGuard, VALIDATOR_REGISTRY, RateLimiter],
})
export class AuthModule {}
