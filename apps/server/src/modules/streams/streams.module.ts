import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { LeasesModule } from '../leases/leases.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { ProducerStreamServer } from './producer-stream.server.js';
import { WorkerStreamServer } from './worker-stream.server.js';

@Module({
  imports: [AuthModule, LeasesModule, TasksModule],
  providers: [WorkerStreamServer, ProducerStreamServer],
  exports: [WorkerStreamServer, ProducerStreamServer],
})
export class StreamsModule {}
