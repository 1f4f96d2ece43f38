/**
 * Which shard queue a user's messages go to, chosen by the publisher (not by the broker).
 *
 * Every publisher computes `shardOf(user, SHARDS)` and publishes to the stage's direct shard
 * exchange with the shard's key; each shard queue is bound under its own key. The binding table
 * is durable, static topology, so no broker restart, cluster restart or node loss can move a user
 * to another shard (RabbitMQ's x-consistent-hash exchange rebuilds its ring in memory on restart
 * and did: docs/ARCHITECTURE.md, "Shards").
 *
 * The function is Lamping & Veach's jump consistent hash ("A Fast, Minimal Memory, Consistent Hash
 * Algorithm", 2014) of the first 8 bytes (big-endian) of the SHA-1 of the user's UTF-8 bytes:
 * deterministic across processes, versions and languages, evenly spread, and when SHARDS grows
 * from n to n+1 only 1/(n+1) of the users move (changing SHARDS stays a drained operation).
 */
import crypto from 'node:crypto';

const M_HI = 0x27bb2ee6; // 2862933555777941757 = 0x27BB2EE687B0B0FD, the paper's LCG multiplier
const M_LO = 0x87b0b0fd;
const TWO_POW_31 = 2 ** 31;

/** The high 32 bits of the 64-bit product of two uint32 (16-bit limbs: every partial product is exact). */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

/**
 * Jump consistent hash: a bucket in [0, buckets) for the 64-bit key `hi:lo` (two uint32). The
 * paper's 64-bit arithmetic in 32-bit halves: no BigInt on the publish path.
 */
export function jump(hi: number, lo: number, buckets: number): number {
  if (!(Number.isInteger(buckets) && buckets > 0)) throw new RangeError(`buckets must be a positive integer, got ${buckets}`);
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    // key = key * M + 1 (mod 2^64)
    const nextHi = (mulHi32(lo, M_LO) + Math.imul(hi, M_LO) + Math.imul(lo, M_HI)) >>> 0;
    lo = (Math.imul(lo, M_LO) + 1) >>> 0;
    hi = lo === 0 ? (nextHi + 1) >>> 0 : nextHi;
    j = Math.floor((b + 1) * (TWO_POW_31 / ((hi >>> 1) + 1)));
  }
  return b;
}

/** jump() for a BigInt key (the reference implementations' test vectors are 64-bit integers). */
export function jumpHash(key: bigint, buckets: number): number {
  return jump(Number((key >> 32n) & 0xffffffffn), Number(key & 0xffffffffn), buckets);
}

/** The shard (0..shards-1) of a user. */
export function shardOf(user: string, shards: number): number {
  const hex = sha1Hex(user);
  return jump(parseInt(hex.slice(0, 8), 16), parseInt(hex.slice(8, 16), 16), shards);
}

/** crypto.hash (Node ≥ 20.12; a third of createHash's cost: no Hash object), else createHash. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string) => string }).hash;
const sha1Hex: (s: string) => string = oneShot ? (s) => oneShot('sha1', s) : (s) => crypto.createHash('sha1').update(s, 'utf8').digest('hex');

/** The routing key of a shard: its number as the shard queue's name ends (`07`). */
export function shardKey(shard: number): string {
  return String(shard).padStart(2, '0');
}

/**
 * A routing key found on an old message (a dead letter's origin) read as a shard: a shard key
 * names a shard below `shards`; anything else (a user, as before publisher-side sharding) is null.
 */
export function parseShardKey(key: string, shards: number): number | null {
  if (!/^\d{2,}$/.test(key) || (key.length > 2 && key.startsWith('0'))) return null;
  const n = Number(key);
  return n < shards ? n : null;
}
