/** Claim order across commands, shared by the engines (ADR 0007). */

/**
 * Round-robin across commands: of the commands in `ready`, the first one after the command served
 * last in the cyclic command `order`; the first ready one in `order` when there is no such.
 * O(order.length).
 */
export function nextCommand(ready: { has(key: string): boolean }, last: string | undefined, order: readonly string[]): string | undefined {
  const n = order.length;
  const at = last === undefined ? -1 : order.indexOf(last);
  for (let i = 1; i <= n; i++) {
    const k = order[(at + i + n) % n]!;
    if (ready.has(k)) return k;
  }
  return undefined;
}
