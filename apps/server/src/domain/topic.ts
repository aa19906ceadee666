/**
 * Queue topics: a tenant's policy catalog (http-api §6.13, task-model §17), keyed
 * `<tenant>.<topicName>`. A topic named like a command (lower-cased) governs that command's queue
 * in the tenant: see `applyTopicToCreate` and the claim limit in LeasesService.
 */
import { CodeqError } from '@codeq/proto/errors';
import { TENANT_PATTERN } from './tenant.js';

export interface TopicPolicy {
  priorityTiers: number[];
  maxAttempts: number;
  deadLetterTopicRef: string;
  retentionSeconds: number;
  maxConsumers: number;
}

export interface Topic {
  topicId: string;
  tenantId: string;
  topicName: string;
  policy: TopicPolicy;
  version: number;
  createdAtMs: number;
  updatedAtMs: number;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const POLICY_FIELDS = ['priorityTiers', 'maxAttempts', 'deadLetterTopicRef', 'retentionSeconds', 'maxConsumers'];

const invalid = (field: string, message: string) => new CodeqError('UNPROCESSABLE', `invalid ${field}: ${message}`, { field });

export function validateTenant(tenantId: string): void {
  if (!TENANT_PATTERN.test(tenantId)) throw invalid('tenantId', 'must match ^[a-z][a-z0-9-]{1,62}$');
}

export function validateTopicName(name: string): void {
  if (name.length === 0 || name.length > 63 || !DNS_LABEL.test(name)) throw invalid('topicName', 'must be a DNS label of at most 63 characters');
}

/** Strict decode of a PUT body: one JSON object, no unknown fields, right types (else 400). */
export function decodePolicy(body: unknown): Record<string, unknown> {
  const bad = (m: string) => new CodeqError('VALIDATION_FAILED', `invalid request body: ${m}`);
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.getPrototypeOf(body) !== Object.prototype) {
    throw bad('expected exactly one JSON object');
  }
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!POLICY_FIELDS.includes(k)) throw bad(`json: unknown field "${k}"`);
  const intField = (k: string) => {
    if (o[k] !== undefined && o[k] !== null && (typeof o[k] !== 'number' || !Number.isInteger(o[k]))) throw bad(`json: field "${k}" must be an integer`);
  };
  intField('maxAttempts');
  intField('retentionSeconds');
  intField('maxConsumers');
  if (o['priorityTiers'] !== undefined && o['priorityTiers'] !== null && (!Array.isArray(o['priorityTiers']) || o['priorityTiers'].some((t) => typeof t !== 'number' || !Number.isInteger(t)))) {
    throw bad('json: field "priorityTiers" must be a list of integers');
  }
  if (o['deadLetterTopicRef'] !== undefined && o['deadLetterTopicRef'] !== null && typeof o['deadLetterTopicRef'] !== 'string') throw bad('json: field "deadLetterTopicRef" must be a string');
  return o;
}

/** Validate in upstream's order (first failure wins) and normalise (tiers sorted). */
export function validatePolicy(tenantId: string, topicName: string, o: Record<string, unknown>): TopicPolicy {
  validateTenant(tenantId);
  validateTopicName(topicName);
  const tiers = (o['priorityTiers'] as number[] | undefined) ?? [];
  if (tiers.length < 1 || tiers.length > 10) throw invalid('priorityTiers', 'must have 1 to 10 entries');
  if (tiers.some((t) => t < 0 || t > 10)) throw invalid('priorityTiers', 'entries must be between 0 and 10');
  if (new Set(tiers).size !== tiers.length) throw invalid('priorityTiers', 'entries must be unique');
  const maxAttempts = (o['maxAttempts'] as number | undefined) ?? 0;
  if (maxAttempts < 1 || maxAttempts > 100) throw invalid('maxAttempts', 'must be between 1 and 100');
  const dlq = (o['deadLetterTopicRef'] as string | undefined) ?? '';
  if (!dlq || dlq.length > 63 || !DNS_LABEL.test(dlq)) throw invalid('deadLetterTopicRef', 'must be a DNS label of at most 63 characters');
  if (dlq === topicName) throw invalid('deadLetterTopicRef', 'must differ from topicName');
  const retentionSeconds = (o['retentionSeconds'] as number | undefined) ?? 0;
  if (retentionSeconds < 0 || retentionSeconds > 2147483647) throw invalid('retentionSeconds', 'must be between 0 and 2147483647');
  const maxConsumers = (o['maxConsumers'] as number | undefined) ?? 0;
  if (maxConsumers < 0 || maxConsumers > 10000) throw invalid('maxConsumers', 'must be between 0 and 10000');
  return { priorityTiers: [...tiers].sort((a, b) => a - b), maxAttempts, deadLetterTopicRef: dlq, retentionSeconds, maxConsumers };
}

export function samePolicy(a: TopicPolicy, b: TopicPolicy): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The effective priority under a topic: the highest tier ≤ requested, else the lowest tier (capped at 9). */
export function tierPriority(policy: TopicPolicy, requested: number): number {
  let chosen = policy.priorityTiers[0] ?? requested;
  for (const t of policy.priorityTiers) if (t <= requested) chosen = t;
  return Math.min(9, chosen);
}

export function topicToJson(t: Topic, fmt: (ms: number) => string): Record<string, unknown> {
  const policy: Record<string, unknown> = { priorityTiers: t.policy.priorityTiers, maxAttempts: t.policy.maxAttempts, deadLetterTopicRef: t.policy.deadLetterTopicRef };
  if (t.policy.retentionSeconds) policy['retentionSeconds'] = t.policy.retentionSeconds;
  if (t.policy.maxConsumers) policy['maxConsumers'] = t.policy.maxConsumers;
  return { topicId: t.topicId, tenantId: t.tenantId, topicName: t.topicName, policy, version: t.version, createdAt: fmt(t.createdAtMs), updatedAt: fmt(t.updatedAtMs) };
}

/** Storage port of the catalog: reads come from the engine's memory copy; writes are durable when they resolve. */
export interface TopicStore {
  get(tenantId: string, name: string): Topic | null;
  put(t: Topic): Promise<void>;
  delete(tenantId: string, name: string): Promise<void>;
  all(): Topic[];
}
