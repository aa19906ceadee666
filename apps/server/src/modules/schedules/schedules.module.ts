import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { SchedulesHttpController } from './schedules.http-controller.js';
import { SchedulesService } from './schedules.service.js';

@Module({
  imports: [AuthModule, MetricsModule, TasksModule],
  controllers: [SchedulesHttpController],
  providers: [SchedulesService],
  exports: [SchedulesService],
})
export class SchedulesModule {}
