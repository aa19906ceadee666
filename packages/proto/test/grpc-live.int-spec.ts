/**
 * Both streams over a real HTTP/2 connection on 127.0.0.1, mixing the generated stubs with a
 * proto-loader peer built from the .proto files (what any other-language client would do):
 *   - worker:   generated WorkerStreamService on the server, proto-loader client;
 *   - producer: proto-loader service on the server, generated ProducerStreamClient.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_FILES, PROTO_LOADER_OPTIONS, producerpb, workerpb } from '../src/index.js';
import { MAX_UINT64 } from './fixtures/events.js';

type Json = any;

const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(Object.values(PROTO_FILES), PROTO_LOADER_OPTIONS)) as Json;

async function listen(server: grpc.Server): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return `127.0.0.1:${port}`;
}

/** Collects every message of a readable duplex until it ends. */
function collect<T>(call: NodeJS.ReadableStream): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = [];
    call.on('data', (m: T) => got.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(got));
  });
}

describe('live gRPC streams', () => {
  let server: grpc.Server;
  afterEach(() => server?.forceShutdown());

  it('worker: generated service answers a proto-loader client at /workerpb.WorkerStream/Stream', async () => {
    server = new grpc.Server();
    const impl: workerpb.WorkerStreamServer = {
      stream(call) {
        call.on('data', (ev: workerpb.WorkerEvent) => {
          const e = ev.event;
          if (e?.$case === 'hello') {
            call.write({ event: { $case: 'helloAck', helloAck: { workerId: e.hello.workerId, tenantId: 'tenant-a' } } });
          } else if (e?.$case === 'heartbeat') {
            const ok = e.heartbeat.leaseId === 'lease-1';
            call.write(
              workerpb.ServerEvent.fromPartial({
                event: {
                  $case: 'heartbeatAck',
                  heartbeatAck: {
                    taskId: e.heartbeat.taskId,
                    ok,
                    errorMessage: ok ? '' : 'lease-mismatch',
                    errorCode: ok ? '' : 'LEASE_NOT_HELD',
                    leaseUntil: ok ? '2030-01-01T00:00:30Z' : '',
                  },
                },
              }),
            );
          } else {
            call.write({ event: { $case: 'error', error: { message: 'unknown-event', code: 'InvalidArgument' } } });
          }
        });
        call.on('end', () => call.end());
      },
    };
    server.addService(workerpb.WorkerStreamService, impl);
    const addr = await listen(server);

    const client = new loaded.workerpb.WorkerStream(addr, grpc.credentials.createInsecure());
    const call = client.Stream();
    const done = collect<Json>(call);
    call.write({ hello: { token: 't', workerId: 'w-9' } });
    call.write({ heartbeat: { taskId: 'x', extendSeconds: 30, leaseId: 'lease-1' } });
    call.write({ heartbeat: { taskId: 'y', extendSeconds: 30, leaseId: 'stale' } });
    call.write({});
    call.end();
    const got = await done;
    client.close();

    expect(got.map((m) => m.event)).toEqual(['helloAck', 'heartbeatAck', 'heartbeatAck', 'error']);
    expect(got[0].helloAck).toEqual({ workerId: 'w-9', tenantId: 'tenant-a' });
    expect(got[1].heartbeatAck).toMatchObject({ taskId: 'x', ok: true, leaseUntil: '2030-01-01T00:00:30Z' });
    expect(got[2].heartbeatAck).toMatchObject({ taskId: 'y', ok: false, errorCode: 'LEASE_NOT_HELD' });
    expect(got[3].error).toEqual({ message: 'unknown-event', code: 'InvalidArgument' });
  });

  it('producer: generated client talks to a proto-loader service at /producerpb.ProducerStream/Stream', async () => {
    server = new grpc.Server();
    server.addService(loaded.producerpb.ProducerStream.service, {
      Stream(call: grpc.ServerDuplexStream<Json, Json>) {
        call.on('data', (ev: Json) => {
          if (ev.event === 'hello') call.write({ helloAck: { tenantId: 'tenant-a', subject: ev.hello.token } });
          if (ev.event === 'create') call.write({ createAck: { seq: ev.create.seq, ok: true, taskId: `task-${ev.create.command}` } });
        });
        call.on('end', () => call.end());
      },
    });
    const addr = await listen(server);

    const client = new producerpb.ProducerStreamClient(addr, grpc.credentials.createInsecure());
    const call = client.stream();
    const done = collect<producerpb.ServerEvent>(call);
    call.write(producerpb.ProducerEvent.fromPartial({ event: { $case: 'hello', hello: { token: 'svc-1' } } }));
    call.write(producerpb.ProducerEvent.fromPartial({ event: { $case: 'create', create: { seq: MAX_UINT64, command: 'c' } } }));
    call.end();
    const got = await done;
    client.close();

    expect(got).toEqual([
      producerpb.ServerEvent.fromPartial({ event: { $case: 'helloAck', helloAck: { tenantId: 'tenant-a', subject: 'svc-1' } } }),
      producerpb.ServerEvent.fromPartial({
        event: { $case: 'createAck', createAck: { seq: MAX_UINT64, ok: true, taskId: 'task-c' } },
      }),
    ]);
  });
});
