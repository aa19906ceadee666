import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { SubscriptionsHttpController } from './subscriptions.http-controller.js';
import { SubscriptionsService } from './subscriptions.service.js';
import { WebhooksService } from './webhooks.service.js';

@Module({
  imports: [AuthModule, MetricsModule, TasksModule],
  controllers: [SubscriptionsHttpController],
  providers: [WebhooksService, SubscriptionsService],
  exports: [WebhooksService, SubscriptionsService],
})
export class WebhooksModule {}
