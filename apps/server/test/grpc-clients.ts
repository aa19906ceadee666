/** Small test clients over the generated grpc-js stubs: queue incoming events, await them. */
import * as grpc from '@grpc/grpc-js';
import { producerpb, workerpb } from '@codeq/proto';

export interface StreamClient<In, Out> {
  send(ev: In): void;
  /** Next event matching `pred` (default any), or reject after `ms`. */
  next(pred?: (ev: Out) => boolean, ms?: number): Promise<Out>;
  /** Events received and not yet taken by next(). */
  readonly queued: Out[];
  /** Final status of the RPC. */
  status: Promise<{ code: number; details: string }>;
  /** Stop / resume reading from the server (HTTP/2 flow control pushes back). */
  pause(): void;
  resume(): void;
  end(): void;
  cancel(): void;
  close(): void;
}

function wrap<In, Out>(client: grpc.Client, call: grpc.ClientDuplexStream<In, Out>): StreamClient<In, Out> {
  const queue: Out[] = [];
  let wake: (() => void) | null = null;
  call.on('data', (ev: Out) => {
    queue.push(ev);
    wake?.();
  });
  const status = new Promise<{ code: number; details: string }>((resolve) => {
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
    call.on('error', () => undefined);
  });
  return {
    send: (ev) => void call.write(ev),
    async next(pred = () => true, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = queue.findIndex(pred);
        if (i >= 0) return queue.splice(i, 1)[0]!;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching event within ${ms} ms (have: ${JSON.stringify(queue).slice(0, 300)})`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          wake = () => {
            clearTimeout(t);
            wake = null;
            r();
          };
        });
      }
    },
    queued: queue,
    status,
    pause: () => void call.pause(),
    resume: () => void call.resume(),
    end: () => void call.end(),
    cancel: () => call.cancel(),
    close: () => client.close(),
  };
}

export function workerStream(port: number): StreamClient<workerpb.WorkerEvent, workerpb.ServerEvent> {
  const client = new workerpb.WorkerStreamClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return wrap(client, client.stream());
}

export function producerStream(port: number): StreamClient<producerpb.ProducerEvent, producerpb.ServerEvent> {
  const client = new producerpb.ProducerStreamClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return wrap(client, client.stream());
}

/** Predicate: the event is of this oneof case. */
export const is = <C extends string>(c: C) => (ev: { event?: { $case: string } | undefined }) => ev.event?.$case === c;

/** The payload of an event of a known case (throws otherwise), e.g. `as(ev, 'task').task`. */
export function as<C extends string, E extends { event?: { $case: string } | undefined }>(ev: E, c: C): Extract<NonNullable<E['event']>, { $case: C }> {
  if (ev.event?.$case !== c) throw new Error(`expected ${c}, got ${ev.event?.$case ?? 'nothing'}`);
  return ev.event as Extract<NonNullable<E['event']>, { $case: C }>;
}
