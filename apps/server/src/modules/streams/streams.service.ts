/**
 * Lifecycle of the two gRPC stream listeners (grpc-streams.md §1): each starts only when its
 * address is set, needs its validator, and fails start-up with upstream's messages.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '../../config/config.js';
import { CONFIG } from '../../common/tokens.js';
import { AuthService } from '../auth/auth.service.js';
import { ProducerStreamService } from './producer-stream.service.js';
import { WorkerStreamService } from './worker-stream.service.js';

@Injectable()
export class StreamsService {
  /** Bound ports (0 when a listener is off). Updated in place by start()/stop(). */
  readonly ports = { workerPort: 0, producerPort: 0 };

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(WorkerStreamService) readonly worker: WorkerStreamService,
    @Inject(ProducerStreamService) readonly producer: ProducerStreamService,
  ) {}

  /** Start the listeners whose address is set; on failure nothing is left listening. */
  async start(): Promise<void> {
    const workerAddr = this.config.workerStreamAddr.trim();
    const producerAddr = this.config.producerStreamAddr.trim();
    try {
      if (workerAddr) {
        if (!this.auth.worker) throw new Error('workerStreamAddr set but no worker validator configured');
        this.ports.workerPort = await this.worker.start(workerAddr);
      }
      if (producerAddr) {
        if (!this.auth.producer) throw new Error('producerStreamAddr set but no producer validator configured');
        this.ports.producerPort = await this.producer.start(producerAddr);
      }
    } catch (e) {
      await this.stop(0);
      throw e;
    }
  }

  /** End open streams with UNAVAILABLE and close both listeners, within `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    await Promise.all([this.worker.stop(graceMs), this.producer.stop(graceMs)]);
    this.ports.workerPort = 0;
    this.ports.producerPort = 0;
  }
}
