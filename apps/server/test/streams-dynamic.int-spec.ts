/**
 * A dynamic client built from the .proto files at run time (@grpc/proto-loader), not from our
 * generated code, completes a full cycle: the wire is what the .proto says.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_FILES } from '@codeq/proto';
import { startServer, T } from './harness.js';

type Dyn = grpc.Client & { Stream(): grpc.ClientDuplexStream<Record<string, unknown>, Record<string, any>> };

function load(file: string, pkg: string, service: string): new (addr: string, creds: grpc.ChannelCredentials) => Dyn {
  const def = protoLoader.loadSync(file, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [] });
  const root = grpc.loadPackageDefinition(def) as Record<string, any>;
  return root[pkg][service];
}

function collect(call: grpc.ClientDuplexStream<Record<string, unknown>, Record<string, any>>) {
  const queue: Record<string, any>[] = [];
  call.on('data', (m: Record<string, any>) => queue.push(m));
  call.on('error', () => undefined);
  return async (key: string, ms = 5000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const i = queue.findIndex((m) => m[key] !== undefined && m[key] !== null);
      if (i >= 0) return queue.splice(i, 1)[0]![key];
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no ${key}`);
  };
}

describe('dynamic proto client', () => {
  it('completes a cycle on both streams using only the .proto files', async () => {
    const s = await startServer({ workerStreamAddr: '127.0.0.1:0', producerStreamAddr: '127.0.0.1:0' });
    const Producer = load(PROTO_FILES.producerpb, 'producerpb', 'ProducerStream');
    const Worker = load(PROTO_FILES.workerpb, 'workerpb', 'WorkerStream');
    const pc = new Producer(`127.0.0.1:${s.app.streams.producerPort}`, grpc.credentials.createInsecure());
    const wc = new Worker(`127.0.0.1:${s.app.streams.workerPort}`, grpc.credentials.createInsecure());
    try {
      const p = pc.Stream();
      const pNext = collect(p);
      p.write({ hello: { token: T.producer } });
      expect(await pNext('hello_ack')).toEqual({ tenant_id: 'acme', subject: 'acme-producer' });
      p.write({ create: { seq: '42', command: 'DYN', payload: Buffer.from('{"n":1}'), priority: 3 } });
      const ack = await pNext('create_ack');
      expect(ack).toMatchObject({ seq: '42', ok: true });

      const w = wc.Stream();
      const wNext = collect(w);
      w.write({ hello: { token: T.worker, worker_id: '' } });
      expect(await wNext('hello_ack')).toEqual({ worker_id: 'worker-1', tenant_id: 'acme' });
      w.write({ ready: { commands: ['DYN'], lease_seconds: 30, count: 1 } });
      const assignment = await wNext('task');
      expect(assignment.task).toMatchObject({ id: ack.task_id, command: 'DYN', priority: 3, status: 'IN_PROGRESS', attempts: 1, tenant_id: 'acme' });
      expect(assignment.task.payload.toString()).toBe('{"n":1}');
      w.write({ result: { task_id: ack.task_id, status: 'COMPLETED', result_json: Buffer.from('{"done":true}') } });
      expect(await wNext('result_ack')).toMatchObject({ task_id: ack.task_id, ok: true });
      p.end();
      w.end();
    } finally {
      pc.close();
      wc.close();
      await s.stop();
    }
  }, 10_000);
});
