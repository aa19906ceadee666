/**
 * `@codeq/sdk-producer`: submit tasks to a codeQ server (over the gRPC producer stream or HTTP),
 * read them back and wait for results.
 * Transient failures are retried with one idempotency key per task, so retries never duplicate.
 */
export { createProducer, MAX_BATCH } from './producer.js';
export type { BatchingOptions } from './coalescer.js';
export type { Producer, ProducerOptions, ProducerTarget, TransportKind, SubmitOptions, SubmitItem, SubmitItems, SubmitManyResult, WaitOptions } from './producer.js';
export type {
  Commands,
  Register,
  StrictCommands,
  KnownCommand,
  CommandName,
  PayloadOf,
  ResultOf,
  TaskOf,
  AnyResult,
  IsFullEntry,
  PayloadIn,
  ResultIn,
  DeclaredResultIn,
  CommandNameIn,
  TaskIn,
} from './commands.js';
export type { TaskHandle, TaskHandleMethods } from './handle.js';
export { TaskFailedError, TaskCancelledError } from './errors.js';
export type { StandardSchemaV1 } from './standard-schema.js';
export { validatePayload, formatIssues, checkSchemas, type CommandSchemas, type CommandSchemasIn, type SchemaIssue, type ValidationOutcome } from './schemas.js';
export type { ListFilter, ListStatus, TaskPage, CommandOverview, ProducerAdmin, RedriveSelection, RedriveOutcome, ProducerSchedules, Schedule, ScheduleInput } from './operator.js';
export { CodeqError, ERRORS, type ErrorCode } from '@codeq/proto';
export {
  HttpTransport,
  GrpcProducerTransport,
  DEFAULT_RETRY,
  isRetryable,
  isLeaseLost,
  isConnectionError,
  parseTask,
  parseResult,
  type HttpTransportOptions,
  type GrpcProducerTransportOptions,
  type GrpcConnectionOptions,
  type Transport,
  type ProducerTransport,
  type WorkerTransport,
  type CallOptions,
  type RetryPolicy,
  objectFirstLogger,
  type Logger,
  type ObjectFirstLogger,
  type Task,
  type TaskStatus,
  type TaskLogLine,
  type LogsQuery,
  type ResultRecord,
  type TaskResult,
  type QueueStats,
} from './transport/index.js';
