/**
 * One thing at a time goes over the DLQ. A pass (replay or purge) and a read (stats, list, show,
 * dry-run) both need the whole queue in order: two consumers on it would each get part of it, and a
 * read that hands its share back puts it at the head, ahead of what the pass already moved on.
 *
 * The lock is one Redis key. A job holds it for its whole pass, across replayer crashes and
 * restarts (no TTL: the pass is the job's, not the process's); it is released when the pass ends.
 * A reader holds it with a TTL that it renews while reading, so a killed CLI frees it soon.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { luaScript, type LuaFn } from '../../shared/platform/lua-scripts.js';
import type { Keyspace } from '../../shared/platform/redis.js';

const JOB = 'job:';
const READER = 'reader:';
const READER_TTL_MS = 30_000;

const lua = (name: string): URL => new URL(`./lua/${name}.lua`, import.meta.url);
const ACQUIRE = luaScript({ name: 'postmasterDlqLockAcquire', file: lua('lock-acquire'), keys: ['lock'], args: ['owner'] });
const SWAP = luaScript({ name: 'postmasterDlqLockSwap', file: lua('lock-swap'), keys: ['lock'], args: ['expected', 'next'] });
const OWN = luaScript({ name: 'postmasterDlqLockOwn', file: lua('lock-own'), keys: ['lock'], args: ['owner', 'ttlMs'] });

export type JobLock = { kind: 'owned' } | { kind: 'adopt'; orphan: string } | { kind: 'busy'; holder: string };

export interface Holder {
  kind: 'job' | 'reader';
  /** The job id, or the reader's random id. */
  id: string;
}

export function describeHolder(value: string): Holder {
  return value.startsWith(JOB) ? { kind: 'job', id: value.slice(JOB.length) } : { kind: 'reader', id: value.slice(READER.length) };
}

export class DlqLock {
  private readonly acquire: LuaFn<typeof ACQUIRE>;
  private readonly swap: LuaFn<typeof SWAP>;
  private readonly own: LuaFn<typeof OWN>;

  constructor(
    private readonly redis: Redis,
    readonly key: string,
  ) {
    this.acquire = ACQUIRE.bind(redis);
    this.swap = SWAP.bind(redis);
    this.own = OWN.bind(redis);
  }

  /** Renews our own lock for `ttlMs`, or with 0 releases it. */
  private ownLock(owner: string, ttlMs: number): Promise<unknown> {
    return this.own({ keys: { lock: this.key }, args: { owner, ttlMs } });
  }

  async holder(): Promise<Holder | null> {
    const v = await this.redis.get(this.key);
    return v ? describeHolder(v) : null;
  }

  /**
   * For a job: owned (fresh or resumed), or taken over from a job that ended without finishing its
   * pass (`adopt`: the caller must finish that pass first), or busy (held by a reader or by a job
   * that will run again).
   */
  async acquireForJob(jobId: string, isFinished: (jobId: string) => Promise<boolean>): Promise<JobLock> {
    const me = JOB + jobId;
    const cur = (await this.acquire({ keys: { lock: this.key }, args: { owner: me } })) as string;
    if (cur === '') return { kind: 'owned' };
    const holder = describeHolder(cur);
    if (holder.kind === 'reader' || !(await isFinished(holder.id))) return { kind: 'busy', holder: cur };
    const swapped = Number(await this.swap({ keys: { lock: this.key }, args: { expected: cur, next: me } })) === 1;
    return swapped ? { kind: 'adopt', orphan: holder.id } : { kind: 'busy', holder: cur };
  }

  async releaseJob(jobId: string): Promise<void> {
    await this.ownLock(JOB + jobId, 0);
  }

  /**
   * For a read: resolves to a release function, or to the holder when someone else has the lock.
   * The TTL is renewed while the read runs.
   */
  async acquireForReader(): Promise<{ release: () => Promise<void> } | { holder: Holder }> {
    const me = READER + randomBytes(6).toString('hex');
    const ok = await this.redis.set(this.key, me, 'PX', READER_TTL_MS, 'NX');
    if (ok !== 'OK') {
      const v = await this.redis.get(this.key);
      if (v) return { holder: describeHolder(v) };
      return this.acquireForReader();
    }
    const renew = setInterval(() => void this.ownLock(me, READER_TTL_MS).catch(() => {}), READER_TTL_MS / 3);
    renew.unref();
    return {
      release: async () => {
        clearInterval(renew);
        await this.ownLock(me, 0);
      },
    };
  }
}

/** The fleet's one DLQ lock (the replayer's jobs and the CLI's reads share it). */
export function dlqLock(redis: Redis, keys: Keyspace): DlqLock {
  return new DlqLock(redis, keys('dlq', 'pass'));
}
