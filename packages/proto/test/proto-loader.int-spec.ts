/**
 * (b) The .proto files load at run time with @grpc/proto-loader, expose the upstream method paths,
 *     and agree with the generated code on the wire in both directions.
 * (c) Every message's field names, numbers and types match grpc-streams.md (upstream) plus the
 *     documented codeQ-TS additions, read from proto-loader's descriptors.
 * Also: a peer that only knows the upstream schema (the .proto minus our additions) still
 *     exchanges every event kind with the generated code.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_FILES, PROTO_LOADER_OPTIONS, STREAM_METHODS, protoDir, producerpb, workerpb } from '../src/index.js';
import { producerEvents, producerServerEvents, workerEvents, workerServerEvents } from './fixtures/events.js';

type Json = any; // proto-loader's decoded objects are untyped

const load = (files: string[], opts: Partial<protoLoader.Options> = {}) =>
  protoLoader.loadSync(files, { ...PROTO_LOADER_OPTIONS, ...opts });

const defs = load(Object.values(PROTO_FILES));
const method = (service: string): protoLoader.MethodDefinition<object, object> => {
  const svc = defs[service] as protoLoader.ServiceDefinition;
  return svc['Stream']!;
};

/**
 * The generated (ts-proto) value in proto-loader's shape: `{$case, x}` unions become `x` plus the
 * virtual `event: '<case>'`, Date becomes `{seconds, nanos}`, unset messages become null.
 */
function toLoaderShape(v: unknown): Json {
  if (v === undefined || v === null) return null;
  if (v instanceof Date) {
    const ms = v.getTime();
    return { seconds: String(Math.floor(ms / 1000)), nanos: (((ms % 1000) + 1000) % 1000) * 1_000_000 };
  }
  if (Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) return v.map(toLoaderShape);
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x && typeof x === 'object' && '$case' in x) {
        const c = (x as { $case: string }).$case;
        out[k] = c;
        out[c] = toLoaderShape((x as Record<string, unknown>)[c]);
      } else {
        out[k] = toLoaderShape(x);
      }
    }
    return out;
  }
  return v;
}

/**
 * Whether `key` of `obj` (found under `parentKey`) is a codeQ-TS addition (camelCase names). The
 * trace fields are additions on `workerpb.Task` (the object with a `leaseId`) only: on
 * `producerpb.CreateTask` they are upstream's fields 10/11.
 */
const isAddition = (parentKey: string, key: string, obj: object): boolean =>
  key === 'leaseId' || key === 'errorCode' || (parentKey === 'heartbeatAck' && key === 'leaseUntil') || ((key === 'traceParent' || key === 'traceState') && 'leaseId' in obj) || isMessageAddition(parentKey, key);

/** Additions that are messages (their default is "unset", not ''): `CreateAck.task`. */
const isMessageAddition = (parentKey: string, key: string): boolean => key === 'task' && (parentKey === 'createAck' || parentKey === 'acks');

/**
 * Deep copy with the codeQ-TS additions removed (`mode: 'drop'`: what an upstream-only peer
 * decodes) or set to their proto3 default (`mode: 'default'`: what we decode from such a peer).
 */
function additions(v: Json, mode: 'drop' | 'default', parentKey = ''): Json {
  if (Array.isArray(v)) return v.map((x) => additions(x, mode, parentKey));
  if (v && typeof v === 'object' && !Buffer.isBuffer(v) && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (!isAddition(parentKey, k, v)) out[k] = additions(x, mode, k);
      else if (mode === 'default') out[k] = isMessageAddition(parentKey, k) ? null : '';
    }
    return out;
  }
  return v;
}

// --------------------------------------------------------------------------------------------
// Field tables. Upstream rows come straight from grpc-streams.md §2.1 / §3 (name:number:type);
// rows marked `// +` are codeQ-TS additions and must also appear in README.md's table.
// --------------------------------------------------------------------------------------------
const TS = 'msg:google.protobuf.Timestamp';
const FIELDS: Record<string, string[]> = {
  'workerpb.Task': [
    'id:1:string', 'command:2:string', 'payload:3:bytes', 'priority:4:int32', 'webhook:5:string',
    'max_attempts:6:int32', 'status:7:string', 'worker_id:8:string', 'lease_until:9:string',
    'attempts:10:int32', 'tenant_id:11:string', `created_at:12:${TS}`, `updated_at:13:${TS}`,
    'lease_id:100:string', 'trace_parent:101:string', 'trace_state:102:string', // +
  ],
  'workerpb.Hello': ['token:1:string', 'worker_id:2:string'],
  'workerpb.Ready': ['commands:1:string[]', 'lease_seconds:2:int32', 'count:3:int32'],
  'workerpb.Result': ['task_id:1:string', 'status:2:string', 'result_json:3:bytes', 'error:4:string', 'lease_id:100:string' /* + */],
  'workerpb.Nack': ['task_id:1:string', 'delay_seconds:2:int32', 'reason:3:string', 'lease_id:100:string' /* + */],
  'workerpb.Heartbeat': ['task_id:1:string', 'extend_seconds:2:int32', 'lease_id:100:string' /* + */],
  'workerpb.Abandon': ['task_id:1:string', 'lease_id:100:string' /* + */],
  'workerpb.ResultBatch': ['results:1:msg:Result[]'],
  'workerpb.WorkerEvent': [
    'hello:1:msg:Hello', 'ready:2:msg:Ready', 'result:3:msg:Result', 'nack:4:msg:Nack',
    'heartbeat:5:msg:Heartbeat', 'abandon:6:msg:Abandon', 'result_batch:7:msg:ResultBatch',
    'progress:100:msg:TaskProgress', 'logs:101:msg:TaskLogs', // +
  ],
  // codeQ-TS messages (issue 17): new messages number their own fields from 1.
  'workerpb.TaskProgress': ['task_id:1:string', 'lease_id:2:string', 'progress_json:3:bytes'],
  'workerpb.TaskLogLine': ['level:1:string', 'message:2:string', `at:3:${TS}`],
  'workerpb.TaskLogs': ['task_id:1:string', 'lease_id:2:string', 'lines:3:msg:TaskLogLine[]'],
  'workerpb.NoteAck': ['task_id:1:string', 'kind:2:string', 'ok:3:bool', 'error_message:4:string', 'error_code:5:string'],
  'workerpb.HelloAck': ['worker_id:1:string', 'tenant_id:2:string'],
  'workerpb.TaskAssignment': ['task:1:msg:Task'],
  'workerpb.TaskBatch': ['tasks:1:msg:Task[]'],
  'workerpb.ResultAck': ['task_id:1:string', 'ok:2:bool', 'error_message:3:string', 'error_code:101:string' /* + */],
  'workerpb.ResultAckBatch': ['acks:1:msg:ResultAck[]'],
  'workerpb.HeartbeatAck': [
    'task_id:1:string', 'ok:2:bool', 'error_message:3:string',
    'error_code:101:string', 'lease_until:102:string', // +
  ],
  'workerpb.NackAck': [
    'task_id:1:string', 'ok:2:bool', 'error_message:3:string', 'applied_delay_seconds:4:int32', 'dlq:5:bool',
    'error_code:101:string', // +
  ],
  'workerpb.AbandonAck': ['task_id:1:string', 'ok:2:bool', 'error_message:3:string', 'error_code:101:string' /* + */],
  'workerpb.ServerError': ['message:1:string', 'code:2:string'],
  'workerpb.ServerEvent': [
    'hello_ack:1:msg:HelloAck', 'task:2:msg:TaskAssignment', 'result_ack:3:msg:ResultAck',
    'heartbeat_ack:4:msg:HeartbeatAck', 'nack_ack:5:msg:NackAck', 'abandon_ack:6:msg:AbandonAck',
    'error:7:msg:ServerError', 'task_batch:8:msg:TaskBatch', 'result_ack_batch:9:msg:ResultAckBatch',
    'note_ack:100:msg:NoteAck', // +
  ],
  'producerpb.Hello': ['token:1:string'],
  'producerpb.CreateTask': [
    'seq:1:uint64', 'command:2:string', 'payload:3:bytes', 'priority:4:int32', 'webhook:5:string',
    'max_attempts:6:int32', 'idempotency_key:7:string', `run_at:8:${TS}`, 'delay_seconds:9:int32',
    'trace_parent:10:string', 'trace_state:11:string',
  ],
  'producerpb.CreateTaskBatch': ['tasks:1:msg:CreateTask[]'],
  'producerpb.ProducerEvent': ['hello:1:msg:Hello', 'create:2:msg:CreateTask', 'create_batch:3:msg:CreateTaskBatch'],
  'producerpb.HelloAck': ['tenant_id:1:string', 'subject:2:string'],
  'producerpb.CreateAck': ['seq:1:uint64', 'ok:2:bool', 'task_id:3:string', 'error_message:4:string', 'error_code:101:string', 'task:102:msg:StoredTask' /* + */],
  // + (a codeQ-TS message, sent only in CreateAck.task)
  'producerpb.StoredTask': [
    'id:1:string', 'command:2:string', 'payload:3:bytes', 'priority:4:int32', 'webhook:5:string',
    'max_attempts:6:int32', 'status:7:string', 'last_known_location:8:string', 'attempts:9:int32',
    'tenant_id:10:string', 'created_at:11:string', 'updated_at:12:string', 'worker_id:13:string',
    'lease_until:14:string', 'lease_id:15:string', 'error:16:string', 'result_key:17:string',
    'cancel_requested:18:bool',
  ],
  'producerpb.ServerError': ['code:1:string', 'message:2:string'],
  'producerpb.CreateAckBatch': ['acks:1:msg:CreateAck[]'],
  'producerpb.ServerEvent': [
    'hello_ack:1:msg:HelloAck', 'create_ack:2:msg:CreateAck', 'error:3:msg:ServerError',
    'create_ack_batch:4:msg:CreateAckBatch',
  ],
};
const ONEOF_MESSAGES = ['workerpb.WorkerEvent', 'workerpb.ServerEvent', 'producerpb.ProducerEvent', 'producerpb.ServerEvent'];

describe('proto-loader view of proto/', () => {
  it('PROTO_FILES are absolute paths inside protoDir', () => {
    for (const f of Object.values(PROTO_FILES)) {
      expect(f.startsWith(protoDir)).toBe(true);
      expect(readFileSync(f, 'utf8')).toMatch(/^syntax = "proto3";$/m);
    }
  });

  it.each([
    ['workerpb.WorkerStream', STREAM_METHODS.worker, 'WorkerEvent', 'ServerEvent'],
    ['producerpb.ProducerStream', STREAM_METHODS.producer, 'ProducerEvent', 'ServerEvent'],
  ])('%s/Stream is a bidi stream at %s', (service, path, req, res) => {
    const m = method(service);
    expect(m.path).toBe(path);
    expect(m.requestStream).toBe(true);
    expect(m.responseStream).toBe(true);
    expect((m.requestType.type as Json).name).toBe(req);
    expect((m.responseType.type as Json).name).toBe(res);
    expect(Object.keys(defs[service] as object)).toEqual(['Stream']);
  });

  it('the generated service definitions use the same paths', () => {
    expect(workerpb.WorkerStreamService.stream.path).toBe(method('workerpb.WorkerStream').path);
    expect(producerpb.ProducerStreamService.stream.path).toBe(method('producerpb.ProducerStream').path);
  });

  describe('field names, numbers and types (keepCase descriptors)', () => {
    const raw = load(Object.values(PROTO_FILES), { keepCase: true });
    const messages = Object.keys(raw).filter((k) => /^(workerpb|producerpb)\./.test(k) && 'format' in (raw[k] as object));

    it('declares exactly the messages of the spec', () => {
      expect(messages.sort()).toEqual(Object.keys(FIELDS).sort());
    });

    it.each(Object.keys(FIELDS))('%s', (name) => {
      const type = (raw[name] as protoLoader.MessageTypeDefinition<object, object>).type as Json;
      const fields = (type.field as Json[]).map((f) => {
        const t = f.type === 'TYPE_MESSAGE' ? `msg:${f.typeName}` : String(f.type).replace('TYPE_', '').toLowerCase();
        return `${f.name}:${f.number}:${t}${f.label === 'LABEL_REPEATED' ? '[]' : ''}`;
      });
      expect(fields).toEqual(FIELDS[name]);
      const oneofs = (type.oneofDecl as Json[]).map((o) => o.name);
      expect(oneofs).toEqual(ONEOF_MESSAGES.includes(name) ? ['event'] : []);
    });

    it('every field numbered >= 100 is commented as a codeQ-TS addition, and only those', () => {
      for (const file of Object.values(PROTO_FILES)) {
        const lines = readFileSync(file, 'utf8').split('\n');
        lines.forEach((line, i) => {
          const m = /^\s*(?:repeated\s+)?[\w.]+\s+\w+\s*=\s*(\d+)\s*;/.exec(line);
          if (!m) return;
          const comment = [];
          for (let j = i - 1; j >= 0 && /^\s*\/\//.test(lines[j]!); j--) comment.unshift(lines[j]);
          const marked = comment.join(' ').includes('codeQ-TS addition');
          expect({ line: line.trim(), marked }).toEqual({ line: line.trim(), marked: Number(m[1]) >= 100 });
        });
      }
    });
  });
});

// --------------------------------------------------------------------------------------------
// Cross-encoding: generated code <-> proto-loader, for every event kind.
// --------------------------------------------------------------------------------------------
interface Codec<T> {
  encode(m: T): { finish(): Uint8Array };
  decode(b: Uint8Array): T;
}
type Direction = 'request' | 'response';
const CASES: Array<[string, Direction, Codec<any>, Record<string, object>]> = [
  ['workerpb.WorkerStream', 'request', workerpb.WorkerEvent, workerEvents],
  ['workerpb.WorkerStream', 'response', workerpb.ServerEvent, workerServerEvents],
  ['producerpb.ProducerStream', 'request', producerpb.ProducerEvent, producerEvents],
  ['producerpb.ProducerStream', 'response', producerpb.ServerEvent, producerServerEvents],
];

const serdes = (m: protoLoader.MethodDefinition<object, object>, dir: Direction) =>
  dir === 'request'
    ? { ser: m.requestSerialize, de: m.requestDeserialize }
    : { ser: m.responseSerialize, de: m.responseDeserialize };

describe.each(CASES)('%s %s events: generated code <-> proto-loader', (service, dir, codec, samples) => {
  const { ser, de } = serdes(method(service), dir);

  it.each(Object.keys(samples))('%s encoded by ts-proto decodes identically via proto-loader', (kind) => {
    const sample = samples[kind]!;
    const decoded = de(Buffer.from(codec.encode(sample).finish()));
    expect(decoded).toEqual(toLoaderShape(sample));
    expect((decoded as Json).event).toBe(kind); // proto-loader's oneof marker names the same case
  });

  it.each(Object.keys(samples))('%s encoded by proto-loader decodes identically via ts-proto', (kind) => {
    const sample = samples[kind]!;
    expect(codec.decode(ser(toLoaderShape(sample)))).toEqual(sample);
  });
});

// --------------------------------------------------------------------------------------------
// An upstream-only peer: the same .proto files with every codeQ-TS addition removed.
// --------------------------------------------------------------------------------------------
/** Oneof cases that are codeQ-TS additions (issue 17): unknown to an upstream peer as a whole. */
const ADDED_CASES: readonly string[] = ['progress', 'logs', 'noteAck'];

describe('compatibility with a peer that only knows the upstream schema', () => {
  let dir: string;
  let upstream: protoLoader.PackageDefinition;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'codeq-upstream-proto-'));
    const files = Object.values(PROTO_FILES).map((f) => {
      const out = join(dir, relative(protoDir, f));
      mkdirSync(dirname(out), { recursive: true });
      const stripped = readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => !/=\s*1\d\d\s*;/.test(l))
        .join('\n');
      writeFileSync(out, stripped);
      return out;
    });
    upstream = load(files, { includeDirs: [dir] });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the stripped schema has no field numbered >= 100', () => {
    const t = (upstream['workerpb.Task'] as protoLoader.MessageTypeDefinition<object, object>).type as Json;
    expect(Math.max(...(t.field as Json[]).map((f) => f.number))).toBe(13);
  });

  it.each(CASES.flatMap(([s, d, c, samples]) => Object.keys(samples).map((k) => [s, d, k, c, samples[k]!] as const)))(
    '%s %s %s crosses both ways, additions dropped/defaulted',
    (service, dir, kind, codec, sample) => {
      const m = (upstream[service] as protoLoader.ServiceDefinition)['Stream']!;
      const { ser, de } = serdes(m, dir);
      if (ADDED_CASES.includes(kind)) {
        // A whole event case is our addition: an upstream peer skips it (an event with no case).
        expect(de(Buffer.from(codec.encode(sample).finish()))).toEqual({});
        return;
      }
      // ours -> upstream: upstream sees every upstream field, skips our additions
      expect(de(Buffer.from(codec.encode(sample).finish()))).toEqual(additions(toLoaderShape(sample), 'drop'));
      // upstream -> ours: additions read as their defaults ('' = "not given")
      const fromUpstream = codec.decode(ser(additions(toLoaderShape(sample), 'drop')));
      expect(toLoaderShape(fromUpstream)).toEqual(additions(toLoaderShape(sample), 'default'));
    },
  );
});
