/** Claim order across commands, shared by the engines (ADR 0007). */

/**
 * Round-robin across commands (ADR 0007): of the queues in `ready`, the first one after the
 * command served last in the cyclic command `order`; the first ready one when there is no such.
 */
export function roundRobin<Q extends { commandKey: string }>(ready: readonly Q[], last: string | undefined, order: readonly string[]): Q {
  if (last === undefined || ready.length === 1) return ready[0]!;
  const at = order.indexOf(last);
  if (at < 0) return ready[0]!;
  for (let i = 1; i <= order.length; i++) {
    const k = order[(at + i) % order.length];
    const q = ready.find((r) => r.commandKey === k);
    if (q) return q;
  }
  return ready[0]!;
}
