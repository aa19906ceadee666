/**
 * Where the .proto sources of this package live on disk, for loading them at run time with
 * `@grpc/proto-loader` (tests, tools, reflection) instead of the generated stubs.
 *
 * Both `src/` (ts-jest) and `dist/` (published build) sit directly below the package root, next to
 * `proto/`, so one relative URL works for both.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Absolute path of the package's `proto/` directory: the include root of every .proto file. */
export const protoDir: string = fileURLToPath(new URL('../proto/', import.meta.url)).replace(/[\\/]$/, '');

/** Absolute paths of the .proto files, keyed by proto package. */
export const PROTO_FILES = {
  /** `workerpb`: service `WorkerStream`, method `/workerpb.WorkerStream/Stream`. */
  workerpb: join(protoDir, 'workerpb', 'workerpb.proto'),
  /** `producerpb`: service `ProducerStream`, method `/producerpb.ProducerStream/Stream`. */
  producerpb: join(protoDir, 'producerpb', 'producerpb.proto'),
} as const;

/** gRPC method paths of the two streams (what upstream Go clients dial). */
export const STREAM_METHODS = {
  worker: '/workerpb.WorkerStream/Stream',
  producer: '/producerpb.ProducerStream/Stream',
} as const;

/** The subset of `@grpc/proto-loader` options set by {@link PROTO_LOADER_OPTIONS}. */
export interface ProtoLoaderOptions {
  keepCase: boolean;
  longs: StringConstructor;
  enums: StringConstructor;
  bytes: BufferConstructor;
  defaults: boolean;
  arrays: boolean;
  oneofs: boolean;
  includeDirs: string[];
}

/**
 * Options for `protoLoader.loadSync(Object.values(PROTO_FILES), PROTO_LOADER_OPTIONS)` that give
 * value shapes as close to the generated code as proto-loader allows: camelCase keys, 64-bit
 * integers as decimal strings (like `forceLong=string`), bytes as Buffer, defaults filled in, and
 * `google/protobuf/*.proto` imports resolved. (Differences that remain: proto-loader gives unset
 * message fields as `null` and timestamps as `{ seconds, nanos }`, and marks the oneof case with a
 * virtual `event: '<case>'` property; the generated code gives `undefined`, `Date`, and
 * `event: { $case, <case> }`.)
 */
export const PROTO_LOADER_OPTIONS: Readonly<ProtoLoaderOptions> = {
  keepCase: false,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  oneofs: true,
  includeDirs: [protoDir],
};
