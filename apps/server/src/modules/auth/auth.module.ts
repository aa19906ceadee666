import { Module } from '@nestjs/common';
import { TenantsModule } from '../tenants/tenants.module.js';
import { AuthGuard } from './auth.guard.js';
import { AuthService, VALIDATOR_REGISTRY } from './auth.service.js';
import { defaultRegistry } from './validators.js';

@Module({
  imports: [TenantsModule],
  providers: [{ provide: VALIDATOR_REGISTRY, useFactory: defaultRegistry }, AuthService, AuthGuard],
  exports: [AuthService, AuthGuard, VALIDATOR_REGISTRY],
})
export class AuthModule {}
