import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { LeasesModule } from '../leases/leases.module.js';
import { TasksModule } from '../tasks/tasks.module.js';
import { ProducerStreamService } from './producer-stream.service.js';
import { StreamsService } from './streams.service.js';
import { WorkerStreamService } from './worker-stream.service.js';

/** The worker and producer gRPC streams (plain @grpc/grpc-js servers, docs/adr/0001). */
@Module({
  imports: [AuthModule, LeasesModule, TasksModule],
  providers: [WorkerStreamService, ProducerStreamService, StreamsService],
  exports: [StreamsService],
})
export class StreamsModule {}
