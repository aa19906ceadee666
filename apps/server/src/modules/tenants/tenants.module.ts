import { Module } from '@nestjs/common';
import { TenantsService } from './tenants.service.js';
import { TopicsService } from './topics.service.js';

@Module({ providers: [TenantsService, TopicsService], exports: [TenantsService, TopicsService] })
export class TenantsModule {}
