/** PUT/GET/DELETE /v1/codeq/admin/topics/:topicName (admin, caller's tenant). */
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Put, Query, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { CodeqError } from '@codeq/proto/errors';
import { Caller } from '../../common/http.js';
import type { Principal } from '../../domain/claims.js';
import { topicToJson } from '../../domain/topic.js';
import { formatTime } from '../../domain/time.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { TopicsService } from './topics.service.js';

// Topic timestamps: UTC, fractional seconds with trailing zeros trimmed, like every other timestamp (http-api §1.3).
const utc = formatTime;

@Controller('v1/codeq/admin/topics')
@UseGuards(AuthGuard)
export class TopicsHttpController {
  constructor(@Inject(TopicsService) private readonly topics: TopicsService) {}

  @Put(':topicName')
  @Auth('admin')
  async put(@Caller() p: Principal, @Param('topicName') name: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const { topic, created } = await this.topics.put(p.tenantId, name, body);
    void reply.status(created ? 201 : 200);
    return topicToJson(topic, utc);
  }

  @Get(':topicName')
  @Auth('admin')
  get(@Caller() p: Principal, @Param('topicName') name: string) {
    return topicToJson(this.topics.get(p.tenantId, name), utc);
  }

  @Delete(':topicName')
  @HttpCode(204)
  @Auth('admin')
  async delete(@Caller() p: Principal, @Param('topicName') name: string, @Query('deletionPolicy') policy: string | undefined) {
    if (policy !== 'Delete') throw new CodeqError('VALIDATION_FAILED', 'deletionPolicy=Delete is required');
    await this.topics.delete(p.tenantId, name);
  }
}
