import { Module } from '@nestjs/common';
import { MetricsHttpController } from './metrics.http-controller.js';
import { MetricsService } from './metrics.service.js';

@Module({ controllers: [MetricsHttpController], providers: [MetricsService], exports: [MetricsService] })
export class MetricsModule {}
