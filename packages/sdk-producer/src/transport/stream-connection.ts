/**
 * The session life cycle both gRPC stream transports share (the producer stream here, the worker
 * stream in `@codeq/sdk-worker`): open the stream on first use (Hello → HelloAck, the token in
 * Hello, the channel's credentials and keepalive options), count sessions by epoch so late events
 * of a dropped one are recognised, reopen on the next call after a break (with a fresh channel
 * after a network failure, so grpc-js's own reconnect backoff does not add to the caller's),
 * drop a silent session after an ack timeout, and half-close on `close()`.
 */
import type * as grpc from '@grpc/grpc-js';
import { CodeqError } from '@codeq/proto';
import { toCodeqError } from './errors.js';
import { GrpcSession, decodeServerError, withSignal, type GrpcTransportSettings, type HelloSpec } from './grpc.js';
import { log, type Logger } from './logger.js';

/** One open session: the stream, its epoch and what its HelloAck said. */
export interface StreamConn<In, Out, Info> {
  readonly session: GrpcSession<In, Out>;
  readonly epoch: number;
  readonly info: Info;
}

/** A generated stream client (`workerpb.WorkerStreamClient`, `producerpb.ProducerStreamClient`). */
export interface StreamClient<In, Out> {
  stream(): grpc.ClientDuplexStream<In, Out>;
  close(): void;
}

/** The `event` oneof of a stream's server events (ts-proto: `{ $case, [case]: value }`). */
type EventOf<Out> = Out extends { event?: infer E } ? NonNullable<E> : never;
/** The HelloAck message of a stream's server events. */
export type HelloAckOf<Out> = Extract<EventOf<Out>, { $case: 'helloAck' }> extends { helloAck: infer H } ? H : never;

/** What a transport plugs into its {@link StreamConnection}. */
export interface StreamConnectionSpec<In, Out, Info> {
  /** `worker` or `producer`, for messages. */
  readonly kind: string;
  newClient(address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions): StreamClient<In, Out>;
  /** The Hello event (with the token). */
  readonly hello: In;
  /** The session's identity from its HelloAck. */
  info(ack: HelloAckOf<Out>): Info;
  /** Every server event after the HelloAck of session `epoch`. */
  onEvent(epoch: number, ev: Out): void;
  /** Session `epoch` ended (`current`: it was the open one, not one already dropped). */
  onClose(epoch: number, err: CodeqError, current: boolean): void;
  /** A session was opened. */
  onOpen?(conn: StreamConn<In, Out, Info>): void;
}

/** Opens, tracks, recycles and closes the sessions of one stream transport. */
export class StreamConnection<In, Out, Info> {
  /** The open session, if any. */
  conn: StreamConn<In, Out, Info> | null = null;
  /** `close()` was called: no more sessions. */
  closed = false;
  private client: StreamClient<In, Out> | undefined;
  private connecting: Promise<StreamConn<In, Out, Info>> | null = null;
  private epoch = 0;
  private readonly logger: Logger | undefined;

  private readonly hello: HelloSpec<In, Out, Info>;

  constructor(
    private readonly settings: GrpcTransportSettings<unknown>,
    private readonly spec: StreamConnectionSpec<In, Out, Info>,
  ) {
    this.logger = settings.logger;
    // The reply to Hello: a HelloAck, or a ServerError event (e.g. a bad token).
    this.hello = {
      hello: spec.hello,
      readHello: (ev) => {
        const e = (ev as { event?: { $case: string; helloAck?: unknown; error?: { code: string; message: string } } }).event;
        if (e?.$case === 'helloAck') return spec.info(e.helloAck as HelloAckOf<Out>);
        if (e?.$case === 'error' && e.error) return decodeServerError(e.error.code, `server rejected hello: ${e.error.message}`);
        return undefined;
      },
    };
  }

  /** The open session, or a new one (shared by concurrent callers; `signal` aborts this caller's wait only). */
  open(signal?: AbortSignal): Promise<StreamConn<In, Out, Info>> {
    if (this.closed) return Promise.reject(new CodeqError('UNAVAILABLE', 'transport is closed', { closed: true }));
    if (this.conn) return Promise.resolve(this.conn);
    if (!this.connecting) {
      const s = this.settings;
      const epoch = ++this.epoch;
      this.client ??= this.spec.newClient(s.address, s.credentials, s.channelOptions);
      this.connecting = GrpcSession.open(this.client.stream(), this.hello, { target: s.target, timeoutMs: s.timeoutMs }, { onEvent: (ev) => this.spec.onEvent(epoch, ev), onClose: (err) => this.onClose(epoch, err) }).then(
        ({ session, ack }) => {
          this.connecting = null;
          if (session.ended || this.closed) {
            session.cancel();
            throw new CodeqError('UNAVAILABLE', `the ${this.spec.kind} stream to ${s.target} closed right after Hello`, { network: true });
          }
          const conn = { session, epoch, info: ack };
          this.conn = conn;
          log(this.logger, 'debug', `codeq: ${this.spec.kind} stream open`, { target: s.target, ...ack });
          this.spec.onOpen?.(conn);
          return conn;
        },
        (e: unknown) => {
          this.connecting = null;
          const err = toCodeqError(e, s.target);
          // A fresh channel connects at once on the next attempt; grpc-js would otherwise fail
          // calls until its own reconnect backoff expires, on top of the caller's backoff.
          if (err.details['network'] === true) this.resetChannel();
          throw err;
        },
      );
    }
    return withSignal(this.connecting, signal);
  }

  private onClose(epoch: number, err: CodeqError | undefined): void {
    const current = this.conn?.epoch === epoch;
    if (current) this.conn = null;
    const why = err ?? new CodeqError('UNAVAILABLE', `the server at ${this.settings.target} closed the ${this.spec.kind} stream`, { network: true });
    if (current || !this.closed) log(this.logger, this.closed ? 'debug' : 'info', `codeq: ${this.spec.kind} stream closed`, { target: this.settings.target, code: why.code, error: why.message });
    if (!this.closed && !this.connecting && why.details['network'] === true) this.resetChannel();
    this.spec.onClose(epoch, why, current);
  }

  /**
   * After an ack timeout: drops the session if the server sent nothing at all for `silentMs`
   * (a dead connection nobody told us about), so the next call opens a fresh one. A slow but
   * live server keeps its session.
   */
  recycle(conn: StreamConn<In, Out, Info>, reason: string, silentMs: number): void {
    if (this.conn !== conn || Date.now() - conn.session.lastEventAt < silentMs) return;
    log(this.logger, 'warn', `codeq: ${this.spec.kind} stream unresponsive, reopening`, { target: this.settings.target, reason });
    conn.session.cancel(); // → onClose fails what waits on it
  }

  private resetChannel(): void {
    this.client?.close();
    this.client = undefined;
  }

  /**
   * No more sessions: waits for a connect in progress, runs `beforeEnd` (send what is queued,
   * fail local waiters), half-closes the stream so the server answers what is in flight, waits
   * for the end (at most `timeoutMs`, 5 s cap) and releases the channel.
   */
  async close(beforeEnd?: () => void): Promise<void> {
    this.closed = true;
    await this.connecting?.catch(() => undefined);
    beforeEnd?.();
    const conn = this.conn;
    if (conn) {
      conn.session.end();
      await conn.session.whenEnded(Math.min(this.settings.timeoutMs, 5000));
      conn.session.cancel();
    }
    this.client?.close();
  }
}
