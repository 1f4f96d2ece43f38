/**
 * Replay and purge jobs are accepted only from the CLI's identity (REPLAY_JOB_KEY signatures,
 * services/dlq-replayer/job-signature.ts): a job enqueued straight into Redis — unsigned, signed
 * with another key, or a copy of a signed one — fails with the reason and leaves the DLQ untouched.
 */
import { expect } from 'chai';
import type { Job } from 'bullmq';
import { checkJobKey, startReplayer, type Replayer } from '../../services/dlq-replayer/service.js';
import { autoReplayData } from '../../services/dlq-replayer/auto-policy.js';
import { signJobData, verifyJobData } from '../../services/dlq-replayer/job-signature.js';
import { enqueue, findJob, type ReplayJobData, type ReplayResult } from '../../services/dlq-replayer/jobs.js';
import type { Config } from '../../shared/platform/config.js';
import { names } from '../../shared/amqp/topology/names.js';
import { isolate, queueDepths, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { ids, peekQueue, publishDeadLetters, runCli } from '../dlq/helpers.js';
import { loadRedisAcl } from './redis-acl.js';

const KEY = 'replay-signing-test-key-0123456789abcdef';

function purgeAll(): ReplayJobData {
  return { action: 'purge', filter: {}, ratePerSecond: null, limit: null, requestedBy: 'mallory@redis', requestedAt: new Date().toISOString() };
}

describe('replay and purge jobs only from the CLI (signed with REPLAY_JOB_KEY)', function () {
  this.timeout(120_000);
  let iso: Isolation;
  let cfg: Config;
  let replayer: Replayer;
  let dlq: string;
  let before: Array<string | undefined>;

  const depth = async () => (await queueDepths(iso.amqpUrl, [dlq]))[dlq];
  /** Enqueues `data` as-is, as any Redis client could, and waits for the replayer's verdict. */
  async function settled(data: ReplayJobData): Promise<Job<ReplayJobData, ReplayResult>> {
    const id = await enqueue(replayer.queue, data);
    await waitFor(
      async () => {
        const state = await (await findJob(replayer.queue, id))?.getState();
        return state === 'failed' || state === 'completed';
      },
      { what: `job ${id} to end`, timeoutMs: 30_000, intervalMs: 50 },
    );
    // Loaded once it ended: a job read while active has no failedReason yet.
    return (await findJob(replayer.queue, id))!;
  }

  beforeEach(async () => {
    iso = await isolate('replay-signing');
    cfg = iso.config({ replayJobKey: KEY });
    replayer = await startReplayer(cfg);
    dlq = names(cfg.topologyPrefix).dlq;
    await publishDeadLetters(iso.amqpUrl, cfg.topologyPrefix, [{ user: '15550000001' }, { user: '15550000002' }, { user: '15550000003' }]);
    before = ids(await peekQueue(iso.amqpUrl, dlq));
  });
  afterEach(async () => {
    await replayer?.close();
    await iso?.cleanup();
  });

  it('fails an unsigned purge job with the reason and leaves the DLQ untouched', async () => {
    const job = await settled(purgeAll());
    expect(await job.getState()).to.equal('failed');
    expect(job.failedReason).to.match(/refused: the job is unsigned.*nothing was done/);
    expect(job.attemptsMade).to.be.at.most(1);
    expect(ids(await peekQueue(iso.amqpUrl, dlq))).to.deep.equal(before);
  });

  it('fails a forged purge job (right shape, signed with another key) and leaves the DLQ untouched', async () => {
    const job = await settled(signJobData(purgeAll(), 'not-the-replayers-key-but-just-as-long-0000'));
    expect(await job.getState()).to.equal('failed');
    expect(job.failedReason).to.match(/refused: the job's signature does not match/);
    expect(ids(await peekQueue(iso.amqpUrl, dlq))).to.deep.equal(before);
  });

  it('fails a signed job whose data was altered after signing (a limit lifted)', async () => {
    const signed = signJobData({ ...purgeAll(), limit: 1 }, KEY);
    const job = await settled({ ...signed, limit: null });
    expect(job.failedReason).to.match(/signature does not match/);
    expect(await depth()).to.equal(3);
  });

  it('runs a job the CLI made, and refuses a copy of its signed data (both as their Redis ACL users)', async () => {
    const acl = await loadRedisAcl(iso.redis, `${iso.redisKeyPrefix}:${cfg.topologyPrefix}`);
    try {
      await replayer.close();
      replayer = await startReplayer({ ...cfg, redisUrl: acl.urlOf('postmaster-dlq-replayer') });
      const r = await runCli({ ...cfg, redisUrl: acl.urlOf('postmaster-dlq-cli') }, ['purge', '--all', '--limit', '1', '--yes', '--wait', '--json']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.json().state).to.equal('completed');
      expect(await depth()).to.equal(2);
      // Someone with Redis access replays the CLI's signed job data under a new job id.
      const original = (await findJob(replayer.queue, r.json().id))!.data;
      const copy = await settled(original);
      expect(copy.failedReason).to.match(/copies job .*nonce was used already/);
      expect(await depth()).to.equal(2);
    } finally {
      await replayer.close();
      await acl.drop();
    }
  });

  it('refuses to start in production without a signing key of at least 32 characters', () => {
    expect(() => checkJobKey({ env: 'production', replayJobKey: '' })).to.throw(/REPLAY_JOB_KEY must be set in production/);
    expect(() => checkJobKey({ env: 'production', replayJobKey: 'short' })).to.throw(/at least 32 characters/);
    expect(() => checkJobKey({ env: 'production', replayJobKey: KEY })).not.to.throw();
    expect(() => checkJobKey({ env: 'development', replayJobKey: '' })).not.to.throw();
  });

  it("signs the automatic policy's scheduled jobs with the replayer's own key (no nonce: the scheduler repeats them)", () => {
    const data = signJobData(autoReplayData(cfg), KEY);
    expect(data.nonce).to.equal(undefined);
    expect(() => verifyJobData(data, [KEY])).not.to.throw();
    expect(() => verifyJobData({ ...data, filter: {} }, [KEY])).to.throw(/signature does not match/);
  });

  it('accepts the previous key during a rotation (REPLAY_JOB_KEY="new,old": the first signs, any verifies)', async () => {
    await replayer.close();
    replayer = await startReplayer({ ...cfg, replayJobKey: `new-key-0123456789abcdef0123456789,${KEY}` });
    const job = await settled(signJobData({ ...purgeAll(), limit: 1 }, KEY));
    expect(await job.getState(), job.failedReason).to.equal('completed');
    expect(await depth()).to.equal(2);
  });
});
