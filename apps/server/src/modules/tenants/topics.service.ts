/** The tenant topic catalog (http-api §6.13) and the policy lookups the queue applies. */
import { Inject, Injectable } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import { CLOCK, TOPIC_STORE, type Clock } from '../../common/tokens.js';
import { decodePolicy, samePolicy, validatePolicy, validateTenant, validateTopicName, type Topic, type TopicPolicy, type TopicStore } from '../../domain/topic.js';

@Injectable()
export class TopicsService {
  constructor(@Inject(TOPIC_STORE) private readonly store: TopicStore, @Inject(CLOCK) private readonly clock: Clock) {}

  /** Create (201) or reconcile (200; version +1 only when the policy changed). */
  async put(tenantId: string, topicName: string, body: unknown): Promise<{ topic: Topic; created: boolean }> {
    const raw = decodePolicy(body);
    const policy = validatePolicy(tenantId, topicName, raw);
    const now = this.clock.now();
    const existing = this.store.get(tenantId, topicName);
    if (!existing) {
      const topic: Topic = { topicId: `${tenantId}.${topicName}`, tenantId, topicName, policy, version: 1, createdAtMs: now, updatedAtMs: now };
      await this.store.put(topic);
      return { topic, created: true };
    }
    if (samePolicy(existing.policy, policy)) return { topic: existing, created: false };
    const topic: Topic = { ...existing, policy, version: existing.version + 1, updatedAtMs: now };
    await this.store.put(topic);
    return { topic, created: false };
  }

  get(tenantId: string, topicName: string): Topic {
    validateTenant(tenantId);
    validateTopicName(topicName);
    const t = this.store.get(tenantId, topicName);
    if (!t) throw new CodeqError('NOT_FOUND', `queue topic "${tenantId}.${topicName}" not found`);
    return t;
  }

  async delete(tenantId: string, topicName: string): Promise<void> {
    validateTenant(tenantId);
    validateTopicName(topicName);
    await this.store.delete(tenantId, topicName);
  }

  /**
   * The policy governing a command's queue in a tenant: topic name = the lower-cased command with
   * `_` and `.` read as `-` (topic names are DNS labels, so `PROCESS_ORDER` is governed by
   * `process-order` and `email.send` by `email-send`).
   */
  policyFor(tenantId: string, commandKey: string): TopicPolicy | null {
    return this.store.get(tenantId, topicNameOf(commandKey))?.policy ?? null;
  }
}

/** The topic name that governs a command key (lower-cased command): `_` and `.` become `-`. */
export function topicNameOf(commandKey: string): string {
  return /[_.]/.test(commandKey) ? commandKey.replace(/[_.]/g, '-') : commandKey;
}
