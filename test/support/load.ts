/**
 * Load for ordering tests: many users, each sending its messages one after the other (so the
 * order the ingress accepted them in is well defined), and the audit against the provider ledger.
 */
import type { Fleet } from './fleet.js';
import { waitFor } from './wait.js';

/** user → envelope ids in the order the ingress accepted them. */
export type Accepted = Map<string, string[]>;

export async function sendAsUsers(
  fleet: Pick<Fleet, 'send'>,
  users: string[],
  perUser: number,
  opts: { concurrency?: number; onProgress?: (accepted: number) => void; body?: (user: string, i: number) => Record<string, unknown> } = {},
): Promise<Accepted> {
  const accepted: Accepted = new Map();
  let count = 0;
  let next = 0;
  const lane = async () => {
    while (next < users.length) {
      const user = users[next++];
      const ids: string[] = [];
      accepted.set(user, ids);
      for (let i = 0; i < perUser; i++) {
        const body = opts.body?.(user, i) ?? { to: user, type: 'text', text: { body: `${user} #${i}` } };
        for (;;) {
          const r = await fleet.send(body);
          if (r.status === 202) {
            ids.push(r.body.id);
            break;
          }
          if (r.status !== 503) throw new Error(`unexpected ${r.status}: ${JSON.stringify(r.body)}`);
          await new Promise((res) => setTimeout(res, 100)); // as told by Retry-After, shortened
        }
        opts.onProgress?.(++count);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 20 }, lane));
  return accepted;
}

export interface DeliveryReport {
  expected: number;
  delivered: number;
  missing: number;
  duplicates: number;
  misordered: string[];
}

/** Waits until every accepted id reached the provider (or the deadline), then audits. */
export async function checkDelivery(
  fleet: Pick<Fleet, 'sim'>,
  accepted: Accepted,
  opts: { timeoutMs?: number; deadLettered?: Set<string> } = {},
): Promise<DeliveryReport> {
  const expectedIds = new Set([...accepted.values()].flat());
  const dead = opts.deadLettered ?? new Set<string>();
  const want = [...expectedIds].filter((id) => !dead.has(id)).length;
  await waitFor(
    () => {
      const got = new Set(
        fleet.sim
          .accepted()
          .map((e) => e.id)
          .filter((id) => id && expectedIds.has(id)),
      );
      return got.size >= want;
    },
    { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 200, what: `${want} messages at the provider` },
  ).catch(() => undefined);
  return audit(fleet.sim.accepted(), accepted, dead);
}

export function audit(entries: Array<{ id: string | null; to: string }>, accepted: Accepted, dead = new Set<string>()): DeliveryReport {
  const expectedIds = new Set([...accepted.values()].flat());
  const seen = new Map<string, number>();
  const byUser = new Map<string, string[]>();
  for (const e of entries) {
    if (!e.id || !expectedIds.has(e.id)) continue;
    seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
    if (seen.get(e.id)! > 1) continue;
    const list = byUser.get(e.to) ?? [];
    list.push(e.id);
    byUser.set(e.to, list);
  }
  const misordered: string[] = [];
  for (const [user, ids] of accepted) {
    const want = ids.filter((id) => !dead.has(id));
    const got = byUser.get(user) ?? [];
    if (got.join() !== want.filter((id) => seen.has(id)).join()) misordered.push(user);
  }
  const want = [...expectedIds].filter((id) => !dead.has(id));
  return {
    expected: want.length,
    delivered: want.filter((id) => seen.has(id)).length,
    missing: want.filter((id) => !seen.has(id)).length,
    duplicates: [...seen.values()].reduce((n, c) => n + (c - 1), 0),
    misordered,
  };
}
