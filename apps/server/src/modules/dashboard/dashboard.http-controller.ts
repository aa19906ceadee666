/** Routes the dashboard needs beyond the task and operator APIs: who am I, and recent throughput. */
import { Controller, Get, Headers, Inject, Query, UseGuards } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import { Caller } from '../../common/http.js';
import type { Principal } from '../../domain/claims.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { AuthService } from '../auth/auth.service.js';
import { DashboardService } from './dashboard.service.js';
import { MAX_MINUTES } from './throughput.js';

@Controller('v1/codeq')
@UseGuards(AuthGuard)
export class DashboardHttpController {
  constructor(
    @Inject(DashboardService) private readonly dashboard: DashboardService,
    @Inject(AuthService) private readonly auth: AuthService,
  ) {}

  /**
   * The caller as the server sees it: any producer or worker token. A token that both validators
   * accept (the development setup's single token) answers as the producer, the dashboard's role.
   */
  @Get('whoami')
  async whoami(@Headers('authorization') header: string | undefined) {
    let p: Principal | null = null;
    if (this.auth.producer) {
      try {
        p = await this.auth.authenticate('producer', header);
      } catch (e) {
        if (!CodeqError.is(e) || e.code !== 'UNAUTHENTICATED') throw e;
      }
    }
    p ??= await this.auth.authenticate('any', header);
    return { tenantId: p.tenantId, subject: p.subject, kind: p.kind, role: p.role, admin: p.isAdmin };
  }

  /** Created / completed / failed tasks of the caller's tenant per 10 s over the last `minutes` (this process's counts). */
  @Get('admin/throughput')
  @Auth('producer')
  throughput(@Caller() p: Principal, @Query('minutes') minutes?: string) {
    let m = 15;
    if (minutes !== undefined && minutes !== '') {
      m = Number(minutes);
      if (!Number.isInteger(m) || m < 1 || m > MAX_MINUTES) throw new CodeqError('VALIDATION_FAILED', `minutes must be an integer from 1 to ${MAX_MINUTES}`);
    }
    return { tenantId: p.tenantId, ...this.dashboard.report(p.tenantId, m) };
  }
}
