/**
 * `@codeq/sdk-producer/transport`: the wire layer shared by the producer and worker SDKs and the
 * CLI — the `Transport` interface and its two roles (`ProducerTransport`, `WorkerTransport`), the HTTP and producer-stream (gRPC) implementations, retry/backoff and error helpers.
 */
export * from './types.js';
export * from './transport.js';
export * from './http-transport.js';
export * from './grpc.js';
export * from './stream-connection.js';
export * from './grpc-producer-transport.js';
export * from './retry.js';
export * from './errors.js';
export * from './logger.js';
export { traceContextOf } from '../tracing.js';
