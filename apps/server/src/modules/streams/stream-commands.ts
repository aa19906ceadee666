/**
 * The gRPC adapter of the input layer: stream events → the typed commands of `domain/commands.ts`,
 * through the same validator as the HTTP routes (issue 11 item 3). proto3 cannot tell an unset
 * scalar from its zero value, so `0` and `""` mean *unset* here (grpc-streams §4.4–4.7, §5.3).
 */
import type { producerpb, workerpb } from '@codeq/proto';
import {
  traceOf,
  validateAbandon,
  validateClaim,
  validateCreate,
  validateHeartbeat,
  validateNack,
  validateResult,
  type Abandon,
  type Claim,
  type CreateFields,
  type CreateTask,
  type Heartbeat,
  type Nack,
  type PayloadField,
  type ResultFields,
  type SubmitResult,
} from '../../domain/commands.js';

const str = (s: string): string | undefined => (s === '' ? undefined : s);
const int = (n: number): number | undefined => (n === 0 ? undefined : n);

/** Payload bytes: JSON is normalised like HTTP payloads; other bytes are stored verbatim (S7). */
function payloadOf(bytes: Uint8Array): PayloadField | undefined {
  if (!bytes.length) return undefined;
  const text = Buffer.from(bytes).toString('utf8');
  try {
    return { json: JSON.parse(text) as unknown };
  } catch {
    return { text };
  }
}

export function createFromProto(c: producerpb.CreateTask, now: number): CreateTask {
  const f: CreateFields = {};
  const command = c.command.trim();
  if (command) f.command = command;
  const payload = payloadOf(c.payload);
  if (payload) f.payload = payload;
  const set = <K extends keyof CreateFields>(k: K, v: CreateFields[K] | undefined) => {
    if (v !== undefined) f[k] = v;
  };
  set('priority', int(c.priority));
  set('webhook', str(c.webhook));
  set('maxAttempts', int(c.maxAttempts));
  set('idempotencyKey', str(c.idempotencyKey));
  set('delaySeconds', int(c.delaySeconds));
  if (c.runAt) set('runAtMs', c.runAt.getTime());
  // codeQ-TS: trace_parent/trace_state (10/11) are stored when well formed, ignored otherwise.
  return { ...validateCreate(f, now, 'grpc'), ...traceOf(c) };
}

export function claimFromProto(r: workerpb.Ready, defaultLeaseSeconds: number): Claim {
  const leaseSeconds = int(r.leaseSeconds);
  const count = int(r.count);
  return validateClaim(
    { commands: r.commands, ...(leaseSeconds !== undefined ? { leaseSeconds } : {}), ...(count !== undefined ? { count } : {}) },
    defaultLeaseSeconds,
    'ready',
  );
}

export function resultFromProto(r: workerpb.Result): SubmitResult {
  const f: ResultFields = { status: r.status, error: r.error };
  if (r.leaseId) f.leaseId = r.leaseId;
  if (r.resultJson.length) {
    let v: unknown;
    try {
      v = JSON.parse(Buffer.from(r.resultJson).toString('utf8'));
    } catch {
      v = undefined;
    }
    // `null` parses to "no result"; anything but a JSON object (or null) is undecodable.
    if (v === undefined || (v !== null && (typeof v !== 'object' || Array.isArray(v)))) f.resultUndecodable = 'invalid result_json';
    else f.result = v;
  }
  return validateResult(r.taskId, f, 'grpc');
}

export function nackFromProto(n: workerpb.Nack): Nack {
  const delaySeconds = int(n.delaySeconds);
  return validateNack(n.taskId, { reason: n.reason, ...(delaySeconds !== undefined ? { delaySeconds } : {}), ...(n.leaseId ? { leaseId: n.leaseId } : {}) });
}

export function heartbeatFromProto(h: workerpb.Heartbeat, defaultLeaseSeconds: number): Heartbeat {
  const extendSeconds = int(h.extendSeconds);
  return validateHeartbeat(h.taskId, { ...(extendSeconds !== undefined ? { extendSeconds } : {}), ...(h.leaseId ? { leaseId: h.leaseId } : {}) }, defaultLeaseSeconds);
}

export function abandonFromProto(a: workerpb.Abandon): Abandon {
  return validateAbandon(a.taskId, a.leaseId ? { leaseId: a.leaseId } : {});
}
