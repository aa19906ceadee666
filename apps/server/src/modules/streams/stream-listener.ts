/**
 * Shared plumbing of the two gRPC stream listeners (plain @grpc/grpc-js, docs/adr/0001): bind a
 * server on its own address, track open sessions, and shut them down in order (stop reading,
 * let in-flight handlers answer, end every stream with `UNAVAILABLE "server shutting down"`).
 *
 * A {@link StreamSession} is one open RPC: the Hello handshake (with a timeout), in-flight handler
 * accounting, and back-pressure in both directions — reading pauses while too many events are
 * being handled or while the client does not read what we write (grpc-streams.md §4.9 bounds the
 * outbound queue at 256 events).
 */
import * as grpc from '@grpc/grpc-js';
import { CodeqError, ERRORS } from '@codeq/proto/errors';
import { parseListenAddr } from '../../config/config.js';
import type { Logger } from '../../common/logger.js';

/** gRPC code names as Go prints them, for `ServerError.code` (grpc-streams.md §4.11). */
const CODE_NAMES: Record<number, string> = {
  0: 'OK', 1: 'Canceled', 2: 'Unknown', 3: 'InvalidArgument', 4: 'DeadlineExceeded', 5: 'NotFound',
  6: 'AlreadyExists', 7: 'PermissionDenied', 8: 'ResourceExhausted', 9: 'FailedPrecondition', 10: 'Aborted',
  11: 'OutOfRange', 12: 'Unimplemented', 13: 'Internal', 14: 'Unavailable', 15: 'DataLoss', 16: 'Unauthenticated',
};

/** The Go-style code name of an error thrown by a service (`Internal` for anything unexpected). */
export function grpcCodeName(e: unknown): string {
  return CODE_NAMES[CodeqError.is(e) ? ERRORS[e.code].grpc : grpc.status.INTERNAL] ?? 'Internal';
}

/** `{errorMessage, errorCode}` of an ack for a failed event (upstream's text + our catalogue code). */
export function ackError(e: unknown): { errorMessage: string; errorCode: string } {
  if (CodeqError.is(e)) return { errorMessage: e.message, errorCode: e.code };
  return { errorMessage: e instanceof Error ? e.message : String(e), errorCode: 'INTERNAL' };
}

/** Terminal status of a failed Hello: tenant problems are PERMISSION_DENIED, the rest UNAUTHENTICATED. */
export function authFailure(err: unknown): { code: grpc.status; details: string } {
  if (CodeqError.is(err) && err.code === 'FORBIDDEN') return { code: grpc.status.PERMISSION_DENIED, details: 'invalid tenant claims' };
  if (CodeqError.is(err) && err.code === 'INTERNAL') return { code: grpc.status.INTERNAL, details: err.message };
  return { code: grpc.status.UNAUTHENTICATED, details: `auth failed: ${err instanceof Error ? err.message : String(err)}` };
}

/** Hello must arrive within this time (upstream waits forever; compatibility.md S5). */
export const HELLO_TIMEOUT_MS = 10_000;
/** Most entries in one CreateTaskBatch / ResultBatch (RESOURCE_EXHAUSTED above, issue 12 item 11). */
export const MAX_STREAM_BATCH = 1000;
/** HTTP/2 streams one connection may have open at once. */
export const MAX_CONCURRENT_STREAMS = 256;
/** Outbound events buffered for a client before we stop reading from it (upstream: 256). */
export const OUTBOUND_HIGH_WATER = 256;
/** Units of work (events, batch entries) being handled for one stream before we stop reading. */
export const INFLIGHT_HIGH_WATER = 4096;

type AnyCall = grpc.ServerDuplexStream<any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export abstract class StreamListener {
  private server: grpc.Server | null = null;
  private readonly sessions = new Set<StreamSession<unknown, unknown>>();
  /** Set once shutdown began: new streams are refused, open ones are being ended. */
  closing = false;
  /** Bound port (0 until started). */
  port = 0;
  /** Hello deadline (ms); a field so tests can shorten it. */
  helloTimeoutMs = HELLO_TIMEOUT_MS;

  protected constructor(
    /** `worker stream` / `producer stream`: used in upstream's log and error texts. */
    readonly name: string,
    readonly log: Logger,
  ) {}

  protected abstract register(server: grpc.Server): void;

  /** Listen on `host:port` / `:port` (port 0 = ephemeral); resolves with the bound port. */
  async start(addr: string): Promise<number> {
    const { host, port } = parseListenAddr(addr);
    const server = new grpc.Server({
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      // Streams per HTTP/2 connection (issue 12 item 11): one client cannot open unbounded sessions.
      'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
    });
    this.register(server);
    this.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(new Error(`${this.name} gRPC listen ${addr}: ${err.message}`));
        else resolve(p);
      });
    });
    this.server = server;
    this.closing = false;
    this.log.info({ addr, port: this.port }, `${this.name === 'worker stream' ? 'worker' : 'producer'} streaming gRPC enabled`);
    return this.port;
  }

  /** Open streams (for tests and shutdown). */
  get openSessions(): number {
    return this.sessions.size;
  }

  /** @internal */
  attach(s: StreamSession<unknown, unknown>): boolean {
    if (this.closing) return false;
    this.sessions.add(s);
    return true;
  }

  /** @internal */
  detach(s: StreamSession<unknown, unknown>): void {
    this.sessions.delete(s);
  }

  /**
   * Stop accepting, let in-flight handlers answer, end every open stream with
   * `UNAVAILABLE "server shutting down"`, and close the listener; all within `graceMs`.
   */
  async stop(graceMs: number): Promise<void> {
    this.closing = true;
    const server = this.server;
    this.server = null;
    const deadline = Date.now() + graceMs;
    const stopped = server
      ? new Promise<void>((resolve) => server.tryShutdown(() => resolve()))
      : Promise.resolve();
    await Promise.all([...this.sessions].map((s) => s.shutdown(deadline)));
    if (!server) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
    clearTimeout(timer);
    server.forceShutdown();
    this.port = 0;
  }
}

/** One open stream. Subclasses implement the protocol in {@link onEvent}. */
export abstract class StreamSession<In, Out> {
  /** Set when no more events will be handled (half-close, shutdown, end). */
  protected stopping = false;
  private ended = false;
  private inflight = 0;
  private idle: (() => void)[] = [];
  private helloTimer: NodeJS.Timeout | null = null;
  private readonly pausedBy = new Set<'auth' | 'outbound' | 'inflight' | 'stop'>();

  constructor(
    protected readonly listener: StreamListener,
    protected readonly call: grpc.ServerDuplexStream<In, Out>,
  ) {}

  start(): void {
    if (!this.listener.attach(this)) {
      this.end(grpc.status.UNAVAILABLE, 'server shutting down');
      return;
    }
    const ms = this.listener.helloTimeoutMs;
    this.helloTimer = setTimeout(() => this.end(grpc.status.DEADLINE_EXCEEDED, `no Hello within ${ms % 1000 ? `${ms}ms` : `${ms / 1000}s`}`), ms);
    this.helloTimer.unref();
    const call = this.call as AnyCall;
    call.on('data', (m: In) => {
      if (!this.stopping) this.onEvent(m);
    });
    call.on('end', () => void this.halfClosed());
    // The client cancelled or the transport died: nothing can be sent any more.
    call.on('cancelled', () => this.gone());
    call.on('close', () => this.gone());
    call.on('error', () => this.gone());
  }

  protected abstract onEvent(ev: In): void;

  /** Called once when the stream stops handling events (subclasses cancel waits here). */
  protected onStop(): void {}

  private expiryTimer: NodeJS.Timeout | null = null;

  /**
   * The session's token stops being valid at `atMs` (exp plus skew): the stream ends then with
   * UNAUTHENTICATED and the client reconnects with a fresh token (issue 12 item 11).
   */
  protected expireAt(atMs: number | undefined): void {
    if (atMs === undefined || this.ended) return;
    const delay = Math.min(2 ** 31 - 1, Math.max(0, atMs - Date.now()));
    this.expiryTimer = setTimeout(() => this.end(grpc.status.UNAUTHENTICATED, 'auth failed: token expired'), delay);
  }

  /** The Hello was accepted: no more deadline. */
  protected helloDone(): void {
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
  }

  /** Stop or resume reading from the client for one reason. */
  protected pauseInput(reason: 'auth' | 'outbound' | 'inflight' | 'stop', on: boolean): void {
    const was = this.pausedBy.size > 0;
    if (on) this.pausedBy.add(reason);
    else this.pausedBy.delete(reason);
    const is = this.pausedBy.size > 0;
    if (was === is || this.ended) return;
    if (is) this.call.pause();
    else this.call.resume();
  }

  get alive(): boolean {
    const c = this.call as AnyCall;
    return !this.ended && !c.destroyed && !c.writableEnded;
  }

  /** Write one event; false when the stream can no longer be written. */
  protected send(ev: Out): boolean {
    if (!this.alive) return false;
    const c = this.call as AnyCall;
    c.write(ev);
    if (c.writableLength >= OUTBOUND_HIGH_WATER && !this.pausedBy.has('outbound')) {
      // The client is not reading: stop reading from it until our queue drains.
      this.pauseInput('outbound', true);
      c.once('drain', () => this.pauseInput('outbound', false));
    }
    return true;
  }

  /**
   * Run a handler: the stream does not end (half-close, shutdown) before it settled, reading
   * pauses while more than {@link INFLIGHT_HIGH_WATER} units are being handled, and its outcome
   * goes to `then` (a failure is logged; the stream carries on).
   */
  protected run<T>(p: Promise<T>, weight: number, then?: (v: T) => void): void {
    this.inflight += weight;
    if (this.inflight > INFLIGHT_HIGH_WATER) this.pauseInput('inflight', true);
    // One reaction per event (no extra `.catch` promise): a throwing `then` is caught here.
    p.then(
      (v) => {
        this.settle(weight);
        if (!then) return;
        try {
          then(v);
        } catch (e) {
          this.listener.log.error({ err: e instanceof Error ? e.message : String(e) }, `${this.listener.name}: sending an answer failed`);
        }
      },
      (e: unknown) => {
        this.settle(weight);
        this.listener.log.error({ err: e instanceof Error ? e.message : String(e) }, `${this.listener.name}: event handler failed`);
      },
    );
  }

  private settle(weight: number): void {
    this.inflight -= weight;
    if (this.inflight <= INFLIGHT_HIGH_WATER / 2) this.pauseInput('inflight', false);
    if (this.inflight === 0) for (const f of this.idle.splice(0)) f();
  }

  private settled(deadline: number): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = Number.isFinite(deadline) ? setTimeout(resolve, Math.max(0, deadline - Date.now())) : undefined;
      this.idle.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.helloDone();
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    this.onStop();
  }

  /** Client half-closed: answer what is in flight, then end with OK (grpc-streams.md §4.1). */
  private async halfClosed(): Promise<void> {
    if (this.ended) return;
    this.stop();
    await this.settled(Infinity);
    this.end(grpc.status.OK, 'OK');
  }

  /** Server shutdown: stop reading, let handlers answer until `deadline`, then UNAVAILABLE. */
  async shutdown(deadline: number): Promise<void> {
    if (this.ended) return;
    this.stop();
    this.pauseInput('stop', true);
    await this.settled(deadline);
    this.end(grpc.status.UNAVAILABLE, 'server shutting down');
  }

  private gone(): void {
    if (this.ended) return;
    this.stop();
    this.ended = true;
    this.listener.detach(this);
  }

  /** End the RPC once with a status (OK = normal end). */
  end(code: grpc.status, details: string): void {
    if (this.ended) return;
    this.stop();
    this.ended = true;
    this.listener.detach(this);
    const c = this.call as AnyCall;
    if (c.destroyed || c.writableEnded) return;
    if (code === grpc.status.OK) c.end();
    else c.emit('error', { code, details, metadata: new grpc.Metadata() });
  }
}
