/**
 * `@codeq/sdk-worker`: claim tasks from a codeQ server (gRPC worker stream or HTTP), renew their
 * leases while a handler runs, record results, and drain on shutdown.
 */
export { createWorker, toResultObject } from './worker.js';
export type {
  Commands,
  CommandName,
  PayloadOf,
  ResultOf,
  TaskOf,
  Handler,
  HandlerContext,
  HandlerMap,
  HandlerReturn,
  MapHandler,
  TaskContext,
  TaskLogger,
  TransportKind,
  Worker,
  WorkerEvent,
  WorkerEventMap,
  WorkerEventName,
  WorkerListener,
  WorkerHandlers,
  WorkerOptions,
  WorkerSettings,
  WorkerTarget,
  StopOptions,
} from './worker.js';
export type { Register, StandardSchemaV1, CommandSchemas } from '@codeq/sdk-producer';
export { GrpcWorkerTransport, taskFromProto, type GrpcWorkerTransportOptions, type WorkerSessionInfo } from './grpc-worker-transport.js';
export { PermanentFailure, RetryTask, LeaseLostError, TaskCancelledError, WorkerStoppedError, HandlerTimeoutError } from './errors.js';
export { CodeqError, ERRORS, type ErrorCode } from '@codeq/proto';
export { objectFirstLogger } from '@codeq/sdk-producer/transport';
export type { Task, TaskStatus, TaskLogLine, Logger, ObjectFirstLogger, Transport, WorkerTransport } from '@codeq/sdk-producer/transport';
