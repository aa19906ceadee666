/** Worker subscriptions (http-api §6.12). */
import { Body, Controller, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { Caller } from '../../common/http.js';
import type { Principal } from '../../domain/claims.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { SubscriptionsService } from './subscriptions.service.js';

@Controller('v1/codeq/workers/subscriptions')
@UseGuards(AuthGuard)
export class SubscriptionsHttpController {
  constructor(@Inject(SubscriptionsService) private readonly subs: SubscriptionsService) {}

  @Post()
  @HttpCode(200)
  @Auth('worker', 'codeq:subscribe')
  create(@Caller() p: Principal, @Body() body: unknown) {
    return this.subs.toJson(this.subs.create(p.tenantId, p.claims.eventTypes, body));
  }

  @Post(':id/heartbeat')
  @HttpCode(200)
  @Auth('worker', 'codeq:subscribe')
  heartbeat(@Caller() p: Principal, @Param('id') id: string, @Body() body: unknown) {
    return this.subs.toJson(this.subs.heartbeat(p.tenantId, id, body));
  }
}
