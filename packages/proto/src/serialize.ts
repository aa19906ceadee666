/**
 * Serialisers that reuse one protobuf writer (issue 13, the server's cost per task). The generated
 * `responseSerialize` builds every message in a fresh `BinaryWriter` (its buffer grows by copying,
 * from 1 KiB) and then copies the bytes twice (`finish()`, then `Buffer.from`). A stream answer
 * carries up to 1,000 tasks, so the server encodes through one long-lived writer instead: its
 * buffer is already large, and the bytes are copied once. Output is byte-identical.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';

/** A writer whose buffer grew past this is dropped after use (memory stays bounded). */
export const MAX_KEPT_WRITER_BYTES = 1 << 20;

/** `encode` of a generated message type (`workerpb.ServerEvent`, `producerpb.ServerEvent`, …). */
export interface Encodes<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
}

/**
 * `(message) => Buffer` equal to the generated `Buffer.from(Type.encode(message).finish())`, encoding
 * through one reused writer. Each returned Buffer owns its bytes (later calls do not touch it).
 * Synchronous, so one writer per serialiser is enough on a single thread.
 */
export function reusingSerializer<T>(type: Encodes<T>): (message: T) => Buffer {
  let writer = new BinaryWriter();
  return (message: T): Buffer => {
    let bytes: Uint8Array;
    try {
      bytes = type.encode(message, writer).finish(); // finish() copies the bytes out and resets the writer
    } catch (e) {
      writer = new BinaryWriter(); // a failed encode leaves forks open: start over
      throw e;
    }
    if (bytes.byteLength > MAX_KEPT_WRITER_BYTES) writer = new BinaryWriter();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}
