import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { TopicsHttpController } from '../tenants/topics.http-controller.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { AdminHttpController } from './admin.http-controller.js';
import { TaskEvents } from './task-events.js';
import { TasksHttpController } from './tasks.http-controller.js';
import { TasksService } from './tasks.service.js';
import { OperatorHttpController } from './operator.http-controller.js';
import { OperatorService } from './operator.service.js';

@Module({
  imports: [AuthModule, MetricsModule, TenantsModule],
  controllers: [TasksHttpController, AdminHttpController, TopicsHttpController, OperatorHttpController],
  providers: [TasksService, TaskEvents, OperatorService],
  exports: [TasksService, TaskEvents, OperatorService],
})
export class TasksModule {}
