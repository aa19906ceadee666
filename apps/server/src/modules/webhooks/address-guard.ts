/**
 * Outgoing webhooks and queue-ready notifications may not reach loopback, link-local, private or
 * other non-public addresses unless the deployment allows it (issue 12 item 12, SSRF). The address
 * is checked on the resolved IP that the connection then uses (the lookup is pinned inside the
 * dispatcher), so a DNS answer cannot change between the check and the connect.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';

const denied = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) denied.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) denied.addSubnet(net, prefix, 'ipv6');

/** True for an address a webhook must not reach by default. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return denied.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return denied.check(mapped[1]!, 'ipv4');
    return denied.check(address, 'ipv6');
  }
  return true; // not an address: refuse
}

export class BlockedAddressError extends Error {
  constructor() {
    super('webhook address not allowed (loopback, link-local or private; set CODEQ_WEBHOOK_ALLOW_PRIVATE=true for internal receivers)');
    this.name = 'BlockedAddressError';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A dns.lookup that fails when any resolved address is non-public (the connect uses what it returns). */
function guardedLookup(hostname: string, options: { all?: boolean } & Record<string, unknown>, cb: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return cb(err, '');
    const list = addresses;
    if (!list.length || list.some((a) => isNonPublicAddress(a.address))) return cb(new BlockedAddressError(), '');
    if (options.all) return cb(null, list);
    cb(null, list[0]!.address, list[0]!.family);
  });
}

/** `fetch` for webhooks: with `allowPrivate` false, only public addresses are reached. */
export function webhookFetch(allowPrivate: boolean): (url: string, init: RequestInit) => Promise<Response> {
  if (allowPrivate) return (url, init) => fetch(url, init);
  const agent = new Agent({ connect: { lookup: guardedLookup as never } });
  return async (url, init) => {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    // IP literals are connected to without a lookup: check them here.
    if (isIP(host) && isNonPublicAddress(host)) throw new BlockedAddressError();
    return await undiciFetch(url, { ...(init as object), dispatcher: agent });
  };
}

/** True when a fetch failure was our refusal (possibly wrapped by fetch as its cause). */
export function isBlocked(e: unknown): boolean {
  for (let c: unknown = e, i = 0; c && i < 5; c = (c as { cause?: unknown }).cause, i++) if (c instanceof BlockedAddressError) return true;
  return false;
}
