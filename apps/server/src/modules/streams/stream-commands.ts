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

const int = (n: number): number | undefined => (n === 0 ? undefined : n);

/** UTF-8 text of decoded bytes, read in place (no copy of the message's buffer). */
function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/** Payload bytes: JSON is normalised like HTTP payloads; other bytes are stored verbatim (S7). */
function payloadOf(bytes: Uint8Array): PayloadField | undefined {
  if (!bytes.length) return undefined;
  const text = utf8(bytes);
  try {
    return { json: JSON.parse(text) as unknown };
  } catch {
    return { text };
  }
}

export function createFromProto(c: producerpb.CreateTask, now: number): CreateTask {
  // Runs once per created task: plain assignments (no closures, no spreads) on the hot path.
  const f: CreateFields = {};
  const command = c.command.trim();
  if (command) f.command = command;
  const payload = payloadOf(c.payload);
  if (payload) f.payload = payload;
  if (c.priority !== 0) f.priority = c.priority;
  if (c.webhook !== '') f.webhook = c.webhook;
  if (c.maxAttempts !== 0) f.maxAttempts = c.maxAttempts;
  if (c.idempotencyKey !== '') f.idempotencyKey = c.idempotencyKey;
  if (c.delaySeconds !== 0) f.delaySeconds = c.delaySeconds;
  if (c.runAt) f.runAtMs = c.runAt.getTime();
  const cmd = validateCreate(f, now, 'grpc');
  // codeQ-TS: trace_parent/trace_state (10/11) are stored when well formed, ignored otherwise.
  if (c.traceParent === '') {
    cmd.traceParent = null;
    cmd.traceState = null;
  } else {
    const t = traceOf(c);
    cmd.traceParent = t.traceParent;
    cmd.traceState = t.traceState;
  }
  return cmd;
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
      v = JSON.parse(utf8(r.resultJson));
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
