/** Shared plumbing of the two gRPC stream listeners: bind, track open calls, end them, stop. */
import * as grpc from '@grpc/grpc-js';
import { CodeqError, ERRORS } from '@codeq/proto/errors';
import { parseListenAddr } from '../../config/config.js';
import type { Logger } from '../../common/logger.js';

/** gRPC code names as Go prints them (grpc-streams.md §4.11). */
const CODE_NAMES: Record<number, string> = {
  0: 'OK', 1: 'Canceled', 2: 'Unknown', 3: 'InvalidArgument', 4: 'DeadlineExceeded', 5: 'NotFound',
  6: 'AlreadyExists', 7: 'PermissionDenied', 8: 'ResourceExhausted', 9: 'FailedPrecondition', 10: 'Aborted',
  11: 'OutOfRange', 12: 'Unimplemented', 13: 'Internal', 14: 'Unavailable', 15: 'DataLoss', 16: 'Unauthenticated',
};

export function grpcCodeName(e: unknown): string {
  return CODE_NAMES[CodeqError.is(e) ? ERRORS[e.code].grpc : grpc.status.INTERNAL] ?? 'Internal';
}

/** Terminal status for a failed Hello: tenant problems are PERMISSION_DENIED, the rest UNAUTHENTICATED. */
export function authFailure(err: unknown): { code: grpc.status; details: string } {
  if (CodeqError.is(err) && err.code === 'FORBIDDEN' && err.message === 'invalid tenant claims') return { code: grpc.status.PERMISSION_DENIED, details: 'invalid tenant claims' };
  if (CodeqError.is(err) && err.code === 'INTERNAL') return { code: grpc.status.INTERNAL, details: err.message };
  return { code: grpc.status.UNAUTHENTICATED, details: `auth failed: ${err instanceof Error ? err.message : String(err)}` };
}

interface Tracked {
  end(code: grpc.status, details: string): void;
}

export abstract class GrpcListener {
  private server: grpc.Server | null = null;
  private readonly calls = new Set<Tracked>();
  protected closing = false;
  /** The bound port (after start). */
  port = 0;

  protected constructor(private readonly name: string, protected readonly log: Logger) {}

  protected abstract register(server: grpc.Server): void;

  /** Listen on `host:port` / `:port` (port 0 = ephemeral). */
  async start(addr: string): Promise<number> {
    const { host, port } = parseListenAddr(addr);
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
    this.register(server);
    this.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(new Error(`${this.name} gRPC listen ${addr}: ${err.message}`));
        else resolve(p);
      });
    });
    this.server = server;
    this.log.info({ addr, port: this.port }, `${this.name} gRPC enabled`);
    return this.port;
  }

  /** Track a call; the returned function ends it once with a status (and aborts `life`). */
  protected track(call: grpc.ServerDuplexStream<unknown, unknown>, life: AbortController): (code: grpc.status, details: string) => void {
    let done = false;
    const entry: Tracked = {
      end: (code, details) => {
        if (done) return;
        done = true;
        this.calls.delete(entry);
        life.abort();
        if (call.destroyed || call.writableEnded) return;
        if (code === grpc.status.OK) call.end();
        else call.emit('error', { code, details, metadata: new grpc.Metadata() });
      },
    };
    this.calls.add(entry);
    call.on('cancelled', () => entry.end(grpc.status.CANCELLED, 'cancelled'));
    call.on('error', () => {
      if (!done) {
        done = true;
        this.calls.delete(entry);
        life.abort();
      }
    });
    call.on('close', () => {
      if (!done) {
        done = true;
        this.calls.delete(entry);
        life.abort();
      }
    });
    return (code, details) => entry.end(code, details);
  }

  /** End every open stream with UNAVAILABLE and stop listening (bounded by `graceMs`). */
  async stop(graceMs: number): Promise<void> {
    this.closing = true;
    const server = this.server;
    this.server = null;
    for (const c of [...this.calls]) c.end(grpc.status.UNAVAILABLE, 'server shutting down');
    if (!server) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
