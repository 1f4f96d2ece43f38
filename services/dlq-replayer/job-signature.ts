/**
 * Replay and purge jobs are accepted only from the CLI's identity: the CLI signs a job's data with
 * REPLAY_JOB_KEY (HMAC-SHA256 over its canonical JSON), and the replayer checks the signature before
 * it touches the DLQ. Whoever can write to Redis can still enqueue a job, but without the key it is
 * failed at once with the reason, and nothing else happens.
 *
 * REPLAY_JOB_KEY may list several keys, comma-separated, for rotation: the first signs, any
 * verifies. A signed operator job also carries a nonce, claimed in Redis by the first job that runs
 * with it, so a copy of a signed job (same data, another BullMQ id) is refused too.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../shared/platform/logger.js';
import type { Keyspace } from '../../shared/platform/redis.js';
import type { ReplayJobData } from './jobs.js';

const SCHEME = 'v1';
/** How long a nonce stays claimed, and the oldest `requestedAt` a signed operator job may carry. */
export const NONCE_TTL_MS = 30 * 24 * 3600 * 1000;

/** A job the replayer will not run: unsigned, forged, copied or stale. Fails the job without retries. */
export class JobRefusedError extends UnrecoverableError {
  constructor(reason: string) {
    super(`refused: ${reason}; nothing was done`);
    this.name = 'JobRefusedError';
  }
}

export function jobKeys(spec: string): string[] {
  return spec
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
}

/** JSON with object keys sorted at every depth, so both sides hash the same bytes. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

function mac(data: ReplayJobData, key: string): string {
  const { signature: _signature, ...signed } = data;
  return `${SCHEME}=${createHmac('sha256', key).update(canonical(signed)).digest('hex')}`;
}

/** The data with a nonce (operator jobs) and a signature; unchanged when no key is configured. */
export function signJobData(data: ReplayJobData, keySpec: string): ReplayJobData {
  const [key] = jobKeys(keySpec);
  if (!key) return data;
  const withNonce = data.auto ? data : { ...data, nonce: data.nonce ?? randomBytes(12).toString('hex') };
  return { ...withNonce, signature: mac(withNonce, key) };
}

/** Throws JobRefusedError unless one of the keys signed exactly this data. */
export function verifyJobData(data: ReplayJobData, keys: string[], now = Date.now()): void {
  if (typeof data?.signature !== 'string' || data.signature === '') {
    throw new JobRefusedError('the job is unsigned (jobs must come from postmaster-dlq holding REPLAY_JOB_KEY)');
  }
  const given = Buffer.from(data.signature);
  const ok = keys.some((k) => {
    const wanted = Buffer.from(mac(data, k));
    return wanted.length === given.length && timingSafeEqual(wanted, given);
  });
  if (!ok) throw new JobRefusedError("the job's signature does not match its data (forged or altered; or signed with a key this replayer does not hold)");
  if (data.auto) return;
  const at = Date.parse(data.requestedAt);
  if (!data.nonce || !Number.isFinite(at) || now - at > NONCE_TTL_MS) throw new JobRefusedError('the job has no nonce or was requested more than 30 days ago');
}

/**
 * The replayer's gate: verifies the signature (when keys are configured), then claims the nonce for
 * this job id. With no key (development only: the replayer refuses to start without one in
 * production) every job is accepted, with a warning.
 */
export async function admitJob(job: Job<ReplayJobData, unknown>, keys: string[], redis: Redis, k: Keyspace, log: Logger): Promise<void> {
  if (keys.length === 0) {
    log.warn({ job: job.id, requestedBy: job.data?.requestedBy }, 'REPLAY_JOB_KEY is unset: running the job without checking who enqueued it');
    return;
  }
  verifyJobData(job.data, keys);
  if (job.data.auto) return;
  const key = k('replay-nonce', job.data.nonce!);
  const claimed = await redis.set(key, String(job.id), 'PX', NONCE_TTL_MS, 'NX');
  if (claimed === null) {
    const owner = await redis.get(key);
    if (owner !== String(job.id)) throw new JobRefusedError(`the job copies job ${owner}'s signed data (its nonce was used already)`);
  }
}
