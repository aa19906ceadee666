export * from './errors.js';

/**
 * Generated ts-proto stubs (buf.gen.yaml), one namespace per proto package because both packages
 * define `Hello`, `HelloAck`, `ServerError` and `ServerEvent`.
 *
 * - `workerpb.WorkerStreamService`: grpc-js service definition for `server.addService`;
 *   `workerpb.WorkerStreamServer`: its handler type; `workerpb.WorkerStreamClient`: client class.
 * - `producerpb.ProducerStreamService` / `ProducerStreamServer` / `ProducerStreamClient`: the same
 *   for the producer stream.
 */
export * as workerpb from './gen/workerpb/workerpb.js';
export * as producerpb from './gen/producerpb/producerpb.js';
export { Timestamp } from './gen/google/protobuf/timestamp.js';

export { protoDir, PROTO_FILES, PROTO_LOADER_OPTIONS, STREAM_METHODS, type ProtoLoaderOptions } from './proto-files.js';
export { parseTraceParent, formatTraceParent, cleanTraceState, MAX_TRACE_STATE, type TraceParent } from './trace-context.js';
export { reusingSerializer, MAX_KEPT_WRITER_BYTES, type Encodes } from './serialize.js';
