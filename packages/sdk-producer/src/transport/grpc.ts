/**
 * Plumbing shared by the two gRPC stream transports (the producer stream here, the worker stream
 * in `@codeq/sdk-worker`): address parsing, channel options, decoding stream statuses, acks and
 * `ServerError` events onto the error catalogue, and one authenticated stream session
 * (`Hello` → `HelloAck`, grpc-streams.md §4.1 / §5.1).
 */
import * as grpc from '@grpc/grpc-js';
import { CodeqError, ERRORS, GrpcStatus, isErrorCode, type ErrorCode } from '@codeq/proto';
import { abortReason } from './errors.js';
import { HttpTransport } from './http-transport.js';
import type { Logger } from './logger.js';
import type { ProducerTransport, WorkerTransport } from './transport.js';

/** Connection settings of a gRPC stream transport. */
export interface GrpcConnectionOptions {
  /** Stream listener: `host:port`, `grpc://host:port`, or `:port` (= `localhost:port`). */
  address: string;
  /** Bearer token, sent once in `Hello` (not as metadata). */
  token: string;
  /** Channel credentials. @default plaintext HTTP/2 (`grpc.credentials.createInsecure()`), like upstream's listeners */
  credentials?: grpc.ChannelCredentials;
  /** Extra grpc-js channel options (keepalive, message sizes, …), merged over {@link DEFAULT_CHANNEL_OPTIONS}. */
  channelOptions?: grpc.ChannelOptions;
  /** How long the `HelloAck` and every acknowledgement may take. @default 30000 */
  timeoutMs?: number;
  /** Receives debug lines (connects, reconnects, dropped acks). Silent by default. */
  logger?: Logger;
}

/**
 * Channel defaults: reconnect quickly after a server restart (grpc-js otherwise waits 1 s, then
 * up to 120 s, between connection attempts, and fails calls in between). No keepalive pings by
 * default: upstream's grpc-go server answers pings more often than every 5 min with GOAWAY.
 */
export const DEFAULT_CHANNEL_OPTIONS: Readonly<grpc.ChannelOptions> = Object.freeze({
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
});

/** The settings both stream transports derive from their options (with the HTTP transport for the calls the stream lacks). */
export interface GrpcTransportSettings<H = ProducerTransport | WorkerTransport> {
  address: string;
  target: string;
  token: string;
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
  timeoutMs: number;
  logger: Logger | undefined;
  /** Calls the stream does not carry go over HTTP: the given transport, or one built from `baseUrl`. */
  http: H | HttpTransport | undefined;
  /** True when `http` was built here (closed with the stream transport). */
  ownsHttp: boolean;
}

export function grpcTransportSettings<H extends ProducerTransport | WorkerTransport>(opts: GrpcConnectionOptions & { baseUrl?: string; http?: H }): GrpcTransportSettings<H> {
  if (!opts.token) throw new CodeqError('VALIDATION_FAILED', 'token is required');
  const address = normalizeGrpcAddress(opts.address);
  const ownsHttp = !opts.http && opts.baseUrl !== undefined;
  const http =
    opts.http ??
    (opts.baseUrl !== undefined
      ? new HttpTransport({ baseUrl: opts.baseUrl, token: opts.token, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.logger ? { logger: opts.logger } : {}) })
      : undefined);
  return {
    address,
    target: `grpc://${address}`,
    token: opts.token,
    credentials: opts.credentials ?? grpc.credentials.createInsecure(),
    channelOptions: { ...DEFAULT_CHANNEL_OPTIONS, ...opts.channelOptions },
    timeoutMs: opts.timeoutMs ?? 30_000,
    logger: opts.logger,
    http,
    ownsHttp,
  };
}

/** Largest message the server accepts (grpc-streams.md §1: 4 MiB), minus room for the envelope. */
export const MAX_STREAM_MESSAGE_BYTES = 4 * 1024 * 1024 - 64 * 1024;

/** `grpc://h:p` → `h:p`, `:p` → `localhost:p`; rejects values without a port. */
export function normalizeGrpcAddress(address: string): string {
  let a = address.trim().replace(/^grpc:\/\//i, '').replace(/\/+$/, '');
  if (a.startsWith(':')) a = `localhost${a}`;
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}$/.test(a)) {
    throw new CodeqError('VALIDATION_FAILED', `invalid gRPC address ${JSON.stringify(address)} (use host:port, e.g. localhost:9092)`);
  }
  return a;
}

const STATUS_CODES: Partial<Record<number, ErrorCode>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'VALIDATION_FAILED',
  [GrpcStatus.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [GrpcStatus.PERMISSION_DENIED]: 'FORBIDDEN',
  [GrpcStatus.NOT_FOUND]: 'NOT_FOUND',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'RATE_LIMITED',
  // `first event must be Hello`: a client bug, not something to retry.
  [GrpcStatus.FAILED_PRECONDITION]: 'INTERNAL',
  [GrpcStatus.UNIMPLEMENTED]: 'INTERNAL',
};

/** grpc-js reports a dropped connection with these texts (sometimes as INTERNAL or UNKNOWN). */
const TRANSPORT_TEXT = /No connection established|Connection dropped|RST_STREAM|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|GOAWAY|socket|Stream refused|Connection closed|Call cancelled|server shutting down/i;

/** Why a connection failed, in the words the HTTP transport uses. */
function transportReason(details: string): string {
  if (/ECONNREFUSED/.test(details)) return 'connection refused';
  if (/ENOTFOUND|EAI_AGAIN/.test(details)) return 'host not found';
  if (/ECONNRESET|EPIPE|Connection dropped|RST_STREAM/i.test(details)) return 'connection reset';
  return details || 'connection closed';
}

/**
 * A terminal stream status as a CodeqError. The code comes from the `codeq-error-code` trailer
 * when the server sent one, else from the gRPC status (the catalogue's mapping, reversed);
 * transport failures become retryable `UNAVAILABLE` with `details.network === true`, exactly like
 * the HTTP transport's socket errors.
 */
export function decodeGrpcStatus(status: { code: number; details: string; metadata?: grpc.Metadata | undefined }, target: string): CodeqError {
  const trailer = status.metadata?.get('codeq-error-code')[0];
  const details = status.details ?? '';
  const base = { grpcStatus: status.code, target };
  if (isErrorCode(trailer)) return new CodeqError(trailer, details || ERRORS[trailer].summary, base);
  if (status.code === GrpcStatus.RESOURCE_EXHAUSTED && /larger than max|message size/i.test(details)) return new CodeqError('PAYLOAD_TOO_LARGE', details, base);
  const mapped = STATUS_CODES[status.code];
  if (mapped && !(status.code !== GrpcStatus.UNAUTHENTICATED && status.code !== GrpcStatus.PERMISSION_DENIED && TRANSPORT_TEXT.test(details))) {
    return new CodeqError(mapped, details || ERRORS[mapped].summary, base);
  }
  if (status.code === GrpcStatus.OK) return new CodeqError('UNAVAILABLE', `the server at ${target} closed the stream`, { ...base, network: true });
  const network = status.code === GrpcStatus.UNAVAILABLE || TRANSPORT_TEXT.test(details);
  if (network && details !== 'server shutting down') {
    return new CodeqError('UNAVAILABLE', `cannot reach the codeQ server at ${target}: ${transportReason(details)}`, { ...base, network: true });
  }
  // DEADLINE_EXCEEDED (no Hello in time), CANCELLED by the server, UNKNOWN, "server shutting down": try again.
  return new CodeqError('UNAVAILABLE', details || `stream to ${target} ended (gRPC status ${status.code})`, { ...base, network: true });
}

/** Upstream's ack texts (grpc-streams.md §4.5–4.8) for servers that send no `error_code`. */
const ACK_TEXTS: Record<string, ErrorCode> = {
  'not-owner': 'NOT_OWNER',
  'not-in-progress': 'NOT_IN_PROGRESS',
  'task not found': 'TASK_NOT_FOUND',
  'not-found': 'TASK_NOT_FOUND',
  'lease-mismatch': 'LEASE_NOT_HELD',
  'nil result': 'VALIDATION_FAILED',
};

/** An `ok:false` ack as a CodeqError: our `error_code` extension, else upstream's message. */
export function decodeAckError(message: string, code: string, extra: Record<string, unknown> = {}): CodeqError {
  const c: ErrorCode = isErrorCode(code) ? code : (ACK_TEXTS[message] ?? (/^pebble: not leader|storage|database/i.test(message) ? 'UNAVAILABLE' : 'VALIDATION_FAILED'));
  return new CodeqError(c, message || ERRORS[c].summary, { ...extra, grpc: true });
}

const SERVER_ERROR_CODES: Record<string, ErrorCode> = {
  InvalidArgument: 'VALIDATION_FAILED',
  Unauthenticated: 'UNAUTHENTICATED',
  PermissionDenied: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  ResourceExhausted: 'RATE_LIMITED',
  Unavailable: 'UNAVAILABLE',
  FailedPrecondition: 'VALIDATION_FAILED',
  Internal: 'INTERNAL',
};

/** A `ServerError` event (`code` is a Go-style gRPC code name such as `PermissionDenied`). */
export function decodeServerError(code: string, message: string): CodeqError {
  const c = SERVER_ERROR_CODES[code] ?? 'INTERNAL';
  return new CodeqError(c, message || ERRORS[c].summary, { grpc: true, serverError: code });
}

/** An abortable wait on a shared promise: aborting rejects this caller only. */
export function withSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e as Error)),
    );
  });
}

/** What a transport does with the events of one open session. */
export interface SessionHandlers<Out> {
  /** Every server event after the HelloAck. */
  onEvent(ev: Out): void;
  /** Once, when the RPC ended: `err` is undefined for a clean end (status OK). */
  onClose(err: CodeqError | undefined): void;
}

/** How to run the handshake of one stream kind. */
export interface HelloSpec<In, Out, A> {
  hello: In;
  /** The HelloAck's fields; a CodeqError for a `ServerError` reply; undefined for anything else. */
  readHello(ev: Out): A | CodeqError | undefined;
}

/** One authenticated bidirectional stream. Create with {@link GrpcSession.open}. */
export class GrpcSession<In, Out> {
  private endedFlag = false;
  private halfClosedFlag = false;
  private readonly endWaiters: Array<() => void> = [];
  /** When the server last sent anything (ms since epoch); a stream silent for long is suspect. */
  lastEventAt = Date.now();

  private constructor(private readonly call: grpc.ClientDuplexStream<In, Out>) {}

  /**
   * Opens the stream, sends Hello and waits for the HelloAck. Rejects with the decoded terminal
   * status (e.g. `UNAUTHENTICATED "auth failed: invalid token"`), with `UNAVAILABLE` when the
   * server is unreachable or silent for `timeoutMs`, or with the abort reason.
   */
  static open<In, Out, A>(call: grpc.ClientDuplexStream<In, Out>, spec: HelloSpec<In, Out, A>, opts: { target: string; timeoutMs: number; signal?: AbortSignal | undefined }, handlers: SessionHandlers<Out>): Promise<{ session: GrpcSession<In, Out>; ack: A }> {
    const session = new GrpcSession<In, Out>(call);
    return new Promise((resolve, reject) => {
      let phase: 'hello' | 'open' | 'done' = 'hello';
      const fail = (e: Error, cancel: boolean): void => {
        if (phase !== 'hello') return;
        phase = 'done';
        cleanup();
        if (cancel) call.cancel();
        reject(e);
      };
      const timer = setTimeout(() => fail(new CodeqError('UNAVAILABLE', `no answer to Hello from ${opts.target} within ${opts.timeoutMs} ms`, { timeout: true, network: true, target: opts.target }), true), opts.timeoutMs);
      const onAbort = (): void => fail(abortReason(opts.signal!), true);
      const cleanup = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      call.on('data', (ev: Out) => {
        session.lastEventAt = Date.now();
        if (phase === 'open') return handlers.onEvent(ev);
        if (phase !== 'hello') return;
        const r = spec.readHello(ev);
        if (r === undefined) return fail(new CodeqError('INTERNAL', `unexpected reply to Hello from ${opts.target}`), true);
        if (CodeqError.is(r)) return fail(r, true);
        phase = 'open';
        cleanup();
        resolve({ session, ack: r });
      });
      call.on('error', () => undefined); // the 'status' event carries the same information
      call.on('status', (st: grpc.StatusObject) => {
        session.markEnded();
        if (phase === 'hello') return fail(decodeGrpcStatus(st, opts.target), false);
        if (phase === 'open') {
          phase = 'done';
          handlers.onClose(Number(st.code) === GrpcStatus.OK ? undefined : decodeGrpcStatus(st, opts.target));
        }
      });
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      call.write(spec.hello);
    });
  }

  /** True until the RPC ended or we half-closed it. */
  get writable(): boolean {
    return !this.endedFlag && !this.halfClosedFlag;
  }

  get ended(): boolean {
    return this.endedFlag;
  }

  /** Writes one event; false (nothing sent) when the stream is no longer writable. */
  write(ev: In): boolean {
    if (!this.writable) return false;
    this.call.write(ev);
    return true;
  }

  /** Half-close: the server answers what is in flight, then ends the RPC with OK. */
  end(): void {
    if (!this.writable) return;
    this.halfClosedFlag = true;
    this.call.end();
  }

  /** Abort the RPC at once. */
  cancel(): void {
    if (this.endedFlag) return;
    this.halfClosedFlag = true;
    this.call.cancel();
  }

  /** Resolves when the RPC ended, or after `ms`. */
  whenEnded(ms: number): Promise<void> {
    if (this.endedFlag) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.endWaiters.push(() => (clearTimeout(t), resolve()));
    });
  }

  private markEnded(): void {
    this.endedFlag = true;
    for (const f of this.endWaiters.splice(0)) f();
  }
}
