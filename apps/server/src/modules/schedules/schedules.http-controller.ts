/** Schedule routes (issue 17 item 4; docs/operator-api.md): admin-scoped, per tenant. */
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Caller } from '../../common/http.js';
import type { Principal } from '../../domain/claims.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { SchedulesService, scheduleToJson } from './schedules.service.js';

@Controller('v1/codeq/admin/schedules')
@UseGuards(AuthGuard)
export class SchedulesHttpController {
  constructor(@Inject(SchedulesService) private readonly schedules: SchedulesService) {}

  /** Create (201) or replace (200) the schedule named in the body. */
  @Post()
  @Auth('admin')
  async upsert(@Caller() p: Principal, @Body() body: unknown, @Res({ passthrough: true }) res: FastifyReply) {
    const out = await this.schedules.upsert(p.tenantId, body);
    res.status(out.created ? 201 : 200);
    return scheduleToJson(out.schedule);
  }

  @Get()
  @Auth('admin')
  async list(@Caller() p: Principal) {
    return { schedules: (await this.schedules.list(p.tenantId)).map(scheduleToJson) };
  }

  @Get(':name')
  @Auth('admin')
  async get(@Caller() p: Principal, @Param('name') name: string) {
    return scheduleToJson(await this.schedules.get(p.tenantId, name));
  }

  @Delete(':name')
  @HttpCode(200)
  @Auth('admin')
  async remove(@Caller() p: Principal, @Param('name') name: string) {
    await this.schedules.remove(p.tenantId, name);
    return { name, deleted: true };
  }
}
