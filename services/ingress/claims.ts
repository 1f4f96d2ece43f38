/**
 * Claims on Redis keys that say "this has been accepted", used for idempotency keys of the send API
 * and for Meta's webhook retries. A claim is *pending* (`p:<owner>:<ms>`) while its message is being
 * published, *done* (the final value: the first message id, or "d") once the broker confirmed it,
 * and gone again if the publish failed, so a retry is never mistaken for a duplicate of something
 * that never got in. A repeat that finds a claim pending must not drop its message (the first
 * publish may still fail): it waits or asks its client to come back. A claim left pending longer
 * than any publish can take lost its holder between publish and confirm (a crash, or Redis failing
 * the confirm write) and is taken over: at-least-once, never lost.
 */
import type { Redis } from 'ioredis';

const PENDING = 'p:';

export type ClaimResult =
  | { kind: 'claimed'; token: string }
  | { kind: 'done'; value: string }
  | { kind: 'busy' };

// KEYS[1]; ARGV: token, ttlS, nowMs, staleMs. Returns {1, token} claimed, {0, value} done, {2} busy.
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 2) == 'p:' then
  local since = tonumber(string.match(v, ':(%d+)$') or '0')
  if tonumber(ARGV[3]) - since <= tonumber(ARGV[4]) then return {2} end
  v = false
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, v}`;

// KEYS[1]; ARGV: token, value. Pending → done, keeping the TTL; only if the claim is still ours.
const CONFIRM = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0`;

// KEYS[1]; ARGV: token. Drops a pending claim, only if it is still ours.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class Claims {
  constructor(
    private readonly redis: Redis,
    private readonly ttlS: number,
    /** Longer than a publish can take (PUBLISH_TIMEOUT_MS plus margin). */
    readonly staleMs: number,
  ) {}

  /** One round trip for all keys. Redis errors propagate. */
  async tryClaim(keys: string[], owner: string): Promise<ClaimResult[]> {
    if (keys.length === 0) return [];
    const now = Date.now();
    const token = `${PENDING}${owner}:${now}`;
    const pipe = this.redis.pipeline();
    for (const k of keys) pipe.eval(CLAIM, 1, k, token, this.ttlS, now, this.staleMs);
    const replies = (await pipe.exec()) ?? [];
    return keys.map((_, i) => {
      const [err, res] = replies[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      const [code, value] = res as [number, string?];
      if (code === 1) return { kind: 'claimed', token: String(value) };
      if (code === 0) return { kind: 'done', value: String(value) };
      return { kind: 'busy' };
    });
  }

  /**
   * Claims one key, waiting while another request holds it pending (at most `staleMs`, after which
   * the claim is taken over).
   */
  async claim(key: string, owner: string, pollMs = 25): Promise<Exclude<ClaimResult, { kind: 'busy' }>> {
    for (;;) {
      const [r] = await this.tryClaim([key], owner);
      if (r.kind !== 'busy') return r;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /** The message is in the broker: from now on repeats find `value`. */
  async confirm(entries: Array<{ key: string; token: string; value: string }>): Promise<void> {
    if (entries.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const e of entries) pipe.eval(CONFIRM, 1, e.key, e.token, e.value);
    await execAll(pipe);
  }

  /** The publish failed: the keys are free for the retry. */
  async release(entries: Array<{ key: string; token: string }>): Promise<void> {
    if (entries.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const e of entries) pipe.eval(RELEASE, 1, e.key, e.token);
    await execAll(pipe);
  }
}

async function execAll(pipe: ReturnType<Redis['pipeline']>): Promise<void> {
  const replies = (await pipe.exec()) ?? [];
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0];
}
