/**
 * TypeORM entities of the embedded engine. They define the schema (with the migrations in
 * ./migrations); the hot path uses prepared statements on the same connection for speed.
 * Times are epoch milliseconds.
 */
import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'tasks' })
@Index('tasks_idempotency', ['tenantId', 'idempotencyKey'], { unique: true, where: 'idempotency_key IS NOT NULL' })
@Index('tasks_terminal', ['terminalAt'], { where: 'terminal_at IS NOT NULL' })
@Index('tasks_live', ['seq'], { where: 'terminal_at IS NULL' })
@Index('tasks_list_status', ['tenantId', 'status', 'createdAt', 'id'])
@Index('tasks_list_command', ['tenantId', 'commandKey', 'status', 'createdAt', 'id'])
@Index('tasks_dlq', ['tenantId', 'createdAt', 'id'], { where: "location = 'DLQ_SET'" })
@Index('tasks_dlq_command', ['tenantId', 'commandKey', 'createdAt', 'id'], { where: "location = 'DLQ_SET'" })
export class TaskEntity {
  @PrimaryColumn({ type: 'text' }) id!: string;
  @Column({ name: 'tenant_id', type: 'text' }) tenantId!: string;
  @Column({ type: 'text' }) command!: string;
  @Column({ name: 'command_key', type: 'text' }) commandKey!: string;
  @Column({ type: 'text' }) payload!: string;
  @Column({ type: 'integer' }) priority!: number;
  @Column({ type: 'text', nullable: true }) webhook!: string | null;
  @Column({ type: 'text' }) status!: string;
  @Column({ type: 'text' }) location!: string;
  @Column({ name: 'worker_id', type: 'text', nullable: true }) workerId!: string | null;
  @Column({ name: 'lease_id', type: 'text', nullable: true }) leaseId!: string | null;
  @Column({ name: 'lease_until', type: 'integer', nullable: true }) leaseUntil!: number | null;
  @Column({ type: 'integer' }) attempts!: number;
  @Column({ name: 'max_attempts', type: 'integer' }) maxAttempts!: number;
  @Column({ type: 'text', nullable: true }) error!: string | null;
  @Column({ name: 'result_key', type: 'text', nullable: true }) resultKey!: string | null;
  @Column({ name: 'idempotency_key', type: 'text', nullable: true }) idempotencyKey!: string | null;
  @Column({ name: 'visible_at', type: 'integer', nullable: true }) visibleAt!: number | null;
  @Column({ type: 'integer' }) seq!: number;
  @Column({ name: 'created_at', type: 'integer' }) createdAt!: number;
  @Column({ name: 'updated_at', type: 'integer' }) updatedAt!: number;
  @Column({ name: 'terminal_at', type: 'integer', nullable: true }) terminalAt!: number | null;
  @Column({ name: 'last_error', type: 'text', nullable: true }) lastError!: string | null;
  @Column({ name: 'cancel_requested', type: 'integer', default: 0 }) cancelRequested!: number;
  @Column({ name: 'trace_parent', type: 'text', nullable: true }) traceParent!: string | null;
  @Column({ name: 'trace_state', type: 'text', nullable: true }) traceState!: string | null;
}

@Entity({ name: 'results' })
export class ResultEntity {
  @PrimaryColumn({ name: 'task_id', type: 'text' }) taskId!: string;
  @Column({ name: 'tenant_id', type: 'text' }) tenantId!: string;
  @Column({ type: 'text' }) status!: string;
  @Column({ type: 'text', nullable: true }) result!: string | null;
  @Column({ type: 'text', nullable: true }) error!: string | null;
  @Column({ type: 'text', nullable: true }) artifacts!: string | null;
  @Column({ name: 'completed_at', type: 'integer' }) completedAt!: number;
  @Column({ name: 'lease_id', type: 'text', nullable: true }) leaseId!: string | null;
  @Column({ name: 'worker_id', type: 'text', nullable: true }) workerId!: string | null;
}

@Entity({ name: 'meta' })
export class MetaEntity {
  @PrimaryColumn({ type: 'text' }) key!: string;
  @Column({ type: 'text' }) value!: string;
}

@Entity({ name: 'topics' })
export class TopicEntity {
  @PrimaryColumn({ name: 'topic_id', type: 'text' }) topicId!: string;
  @Column({ name: 'tenant_id', type: 'text' }) tenantId!: string;
  @Column({ name: 'topic_name', type: 'text' }) topicName!: string;
  /** JSON of the normalised policy. */
  @Column({ type: 'text' }) policy!: string;
  @Column({ type: 'integer' }) version!: number;
  @Column({ name: 'created_at', type: 'integer' }) createdAt!: number;
  @Column({ name: 'updated_at', type: 'integer' }) updatedAt!: number;
}

@Entity({ name: 'paused_commands' })
export class PausedCommandEntity {
  @PrimaryColumn({ name: 'tenant_id', type: 'text' }) tenantId!: string;
  @PrimaryColumn({ name: 'command_key', type: 'text' }) commandKey!: string;
  @Column({ type: 'text' }) command!: string;
  @Column({ name: 'paused_at', type: 'integer' }) pausedAt!: number;
}
