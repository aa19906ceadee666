import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { DashboardHttpController } from './dashboard.http-controller.js';
import { DashboardService } from './dashboard.service.js';

/** The web dashboard: /ui static files, /v1/codeq/whoami and /v1/codeq/admin/throughput. */
@Module({
  imports: [AuthModule, MetricsModule, TasksModule],
  controllers: [DashboardHttpController],
  providers: [DashboardService],
})
export class DashboardModule {}
