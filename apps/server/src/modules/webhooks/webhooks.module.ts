import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { WebhooksService } from './webhooks.service.js';

@Module({ imports: [AuthModule, MetricsModule, TasksModule], providers: [WebhooksService], exports: [WebhooksService] })
export class WebhooksModule {}
