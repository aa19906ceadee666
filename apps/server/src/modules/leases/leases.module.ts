import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { LeasesHttpController } from './leases.http-controller.js';
import { LeasesService } from './leases.service.js';

@Module({
  imports: [AuthModule, MetricsModule, TasksModule, TenantsModule],
  controllers: [LeasesHttpController],
  providers: [LeasesService],
  exports: [LeasesService],
})
export class LeasesModule {}
