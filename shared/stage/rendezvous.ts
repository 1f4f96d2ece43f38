/**
 * Which replica should own which shard: rendezvous (highest-random-weight) hashing with bounded
 * loads. Every replica computes the same answer from the same member list, with no coordinator:
 * each shard goes to the first replica in its rendezvous order that still has room (at most
 * ceil(shards / replicas)), so shards spread evenly and a membership change moves few of them.
 */
import { createHash } from 'node:crypto';

function weight(member: string, shard: number): bigint {
  return createHash('sha256').update(`${member}\u0000${shard}`).digest().readBigUInt64BE(0);
}

/** @returns shard → member, for shards 0..shards-1; empty when there are no members. */
export function assignShards(members: string[], shards: number): Map<number, string> {
  const out = new Map<number, string>();
  if (members.length === 0) return out;
  const sorted = [...new Set(members)].sort();
  const cap = Math.ceil(shards / sorted.length);
  const load = new Map(sorted.map((m) => [m, 0]));
  for (let s = 0; s < shards; s++) {
    const order = sorted.map((m) => ({ m, w: weight(m, s) })).sort((a, b) => (a.w === b.w ? (a.m < b.m ? -1 : 1) : a.w > b.w ? -1 : 1));
    const pick = order.find((o) => (load.get(o.m) ?? 0) < cap) ?? order[0];
    out.set(s, pick.m);
    load.set(pick.m, (load.get(pick.m) ?? 0) + 1);
  }
  return out;
}
