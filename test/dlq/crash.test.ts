import { expect } from 'chai';
import type { Queue } from 'bullmq';
import { names } from '../../shared/amqp/topology/names.js';
import { openReplayQueue, type ReplayJobData, type ReplayProgress, type ReplayResult } from '../../services/dlq-replayer/jobs.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, queueDepths, type Isolation } from '../support/isolation.js';
import { spawnService, type ServiceProcess } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import type { ConsumeMessage } from 'amqplib';
import { keyspace } from '../../shared/platform/redis.js';
import { decodeDeadLetter } from '../../services/dlq-replayer/dead-letter.js';
import { LaneIndex } from '../../services/dlq-replayer/lanes.js';
import { PassState } from '../../services/dlq-replayer/pass-state.js';
import { startReplayer, type Replayer } from '../../services/dlq-replayer/service.js';
import type { Config } from '../../shared/platform/config.js';
import { ids, peekQueue, peekQueues, publishDeadLetters, runCli, type Crafted } from './helpers.js';

const USERS = ['15552220001', '15552220002', '15552220003'];
const PER_USER = 10;

describe('dlq-replayer killed in the middle of a replay', function () {
  let iso: Isolation;
  let fleet: Fleet;
  let queue: Queue<ReplayJobData, ReplayResult>;
  const replayers: ServiceProcess[] = [];
  const sent: Record<string, string[]> = {};
  let dlq: string;

  before(async () => {
    iso = await isolate('dlq-crash');
    fleet = await startFleet(iso);
    dlq = names(fleet.cfg.topologyPrefix).dlq;
    queue = openReplayQueue(fleet.cfg, iso.redis);
    fleet.sim.setFaults({ rules: USERS.map((to) => ({ to, times: -1, status: 400, code: 131026 })) });
    for (let i = 0; i < PER_USER; i++) {
      for (const to of USERS) {
        const r = await fleet.send({ to, type: 'text', text: { body: `${to} #${i}` } });
        (sent[to] ??= []).push(r.body.id);
      }
    }
    await waitFor(async () => (await queueDepths(iso.amqpUrl, [dlq]))[dlq] === USERS.length * PER_USER, { timeoutMs: 30_000, what: '30 dead letters' });
    fleet.sim.setFaults({ rules: [] });
  });
  after(async () => {
    for (const r of replayers) await r.kill();
    await queue?.close();
    await fleet?.close();
    await iso?.cleanup();
  });

  const progress = async (id: string) => ((await queue.getJob(id))?.progress ?? {}) as Partial<ReplayProgress>;

  it('loses nothing and sends nothing twice when stopped or killed: another replayer resumes the job where it stopped', async () => {
    const overrides = { replayLockMs: 1500 };
    replayers.push(await spawnService('dlq-replayer', fleet.cfg, overrides));
    const enqueued = await runCli(fleet.cfg, ['replay', '--all', '--rate', '4', '--yes', '--json']);
    expect(enqueued.code, enqueued.stderr).to.equal(0);
    const id: string = enqueued.json().id;

    const replayed = (at: number) =>
      waitFor(
        async () => {
          const p = await progress(id);
          return (p.replayed ?? 0) >= at ? p : null;
        },
        { timeoutMs: 30_000, what: `${at} replays` },
      );

    // A graceful stop hands the job back at once (not failed, not stalled) ...
    await replayed(4);
    await replayers[0].stop();
    expect(await (await queue.getJob(id))!.getState()).to.be.oneOf(['delayed', 'waiting']);
    replayers.push(await spawnService('dlq-replayer', fleet.cfg, overrides));
    // ... and a killed replayer loses it to the stalled-job check, after REPLAY_LOCK_MS.
    const atKill = await replayed(12);
    await replayers[1].kill();
    expect(atKill.replayed).to.be.below(USERS.length * PER_USER);

    replayers.push(await spawnService('dlq-replayer', fleet.cfg, overrides));
    await waitFor(async () => (await (await queue.getJob(id))?.getState()) === 'completed', { timeoutMs: 60_000, what: 'the job to complete' });
    const job = (await queue.getJob(id))!;
    expect(job.returnvalue).to.include({ outcome: 'completed', replayed: 30, kept: 0 });
    expect(job.returnvalue.duplicates).to.be.at.most(1);

    await waitFor(() => fleet.sim.accepted().length >= 30, { timeoutMs: 30_000, what: '30 sends at the provider' });
    const accepted = fleet.sim.accepted().map((e) => e.id);
    expect(new Set(accepted).size, 'no message reached the provider twice').to.equal(accepted.length);
    for (const to of USERS) {
      expect(
        fleet.sim
          .accepted()
          .filter((e) => e.to === to)
          .map((e) => e.id),
        `order of ${to}`,
      ).to.deep.equal(sent[to]);
    }
    // At most the one replay in flight at the kill (published, confirm or Redis write not done yet) is
    // republished by the resumed pass; the sender's per-id dedup keeps it from the provider.
    const dropped = (await fleet.senders[0].rt.metrics.duplicatesDropped.get()).values.reduce((n, v) => n + v.value, 0);
    expect(dropped, 'republished twice').to.be.at.most(1);
    expect((await queueDepths(iso.amqpUrl, [dlq]))[dlq], 'nothing left in the DLQ, no stray marker').to.equal(0);
  });
});

describe('a resumed pass meets a dead letter it republished just before the crash', function () {
  let iso: Isolation;
  let cfg: Config;
  let replayer: Replayer;

  before(async () => {
    iso = await isolate('dlq-resume');
    cfg = iso.config();
    replayer = await startReplayer(cfg);
  });
  after(async () => {
    await replayer?.close();
    await iso?.cleanup();
  });

  /** The key a pass records for a dead letter, decoded from what was published. */
  function keyOf(c: Crafted): string {
    const msg = { content: c.content, properties: { headers: c.headers, messageId: c.id }, fields: {} } as unknown as ConsumeMessage;
    return decodeDeadLetter(msg, new LaneIndex(names(cfg.topologyPrefix), cfg.shards)).key;
  }

  it('acks it without republishing it (the replayed set is checked before every republish)', async () => {
    const n = names(cfg.topologyPrefix);
    const dead = await publishDeadLetters(iso.amqpUrl, cfg.topologyPrefix, [{ user: '15552230001' }, { user: '15552230002' }, { user: '15552230003' }]);
    // What a replayer killed after the broker confirmed the second republish, before the ack, leaves
    // behind: the key in job 1's replayed set, the dead letter still in the DLQ.
    await new PassState(iso.redis, keyspace(cfg.redisKeyPrefix, cfg.topologyPrefix), '1').commit('done', keyOf(dead[1]), ['matched', 'replayed']);
    const r = await runCli(cfg, ['replay', '--all', '--yes', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const job = r.json();
    expect(job.id).to.equal('1');
    expect(job.progress).to.include({ replayed: 3, duplicates: 1, kept: 0 });
    const lanes = await peekQueues(
      iso.amqpUrl,
      Array.from({ length: cfg.shards }, (_, i) => n.shardQueue('send', i)),
    );
    expect(lanes.map((m) => m.id).sort()).to.deep.equal([dead[0].id, dead[2].id].sort());
    expect(ids(await peekQueue(iso.amqpUrl, n.dlq))).to.deep.equal([]);
  });
});

describe('a job that ended in the middle of its pass', function () {
  let iso: Isolation;
  let cfg: Config;
  let queue: Queue<ReplayJobData, ReplayResult>;
  let child: ServiceProcess | null = null;
  let replayer: Replayer | null = null;

  before(async () => {
    iso = await isolate('dlq-orphan');
    cfg = iso.config({ replayLockMs: 1500 });
    queue = openReplayQueue(cfg, iso.redis);
  });
  after(async () => {
    await child?.kill();
    await replayer?.close();
    await queue?.close();
    await iso?.cleanup();
  });

  it('is finished by the next job, so the DLQ and the replay order come out as if it had completed', async () => {
    const n = names(cfg.topologyPrefix);
    const Y = '15552240009';
    // x1 y1 x2 y2 ... x6 y6: the x are different users (131026), the y one user (131047).
    const specs = Array.from({ length: 6 }, (_, i) => [
      { user: `1555224000${i}`, code: '131026' },
      { user: Y, code: '131047' },
    ]).flat();
    child = await spawnService('dlq-replayer', cfg);
    const dead = await publishDeadLetters(iso.amqpUrl, cfg.topologyPrefix, specs);
    const xs = dead.filter((_, i) => i % 2 === 0).map((d) => d.id);
    const ys = dead.filter((_, i) => i % 2 === 1).map((d) => d.id);
    const first: string = (await runCli(cfg, ['replay', '--code', '131026', '--rate', '1', '--yes', '--json'])).json().id;
    await waitFor(async () => (((await queue.getJob(first))?.progress as Partial<ReplayProgress>)?.replayed ?? 0) >= 2, {
      timeoutMs: 30_000,
      what: 'two replays',
    });
    await child.kill();
    child = null;
    // The job is gone for good (say an operator removed it): its pass is an orphan, half the DLQ moved.
    await waitFor(async () => (await queue.remove(first)) === 1, { what: 'the dead job to be removable' });

    replayer = await startReplayer(cfg);
    const r = await runCli(cfg, ['replay', '--code', '131047', '--yes', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.json().progress).to.include({ replayed: 6 });
    const yShard = (
      await peekQueues(
        iso.amqpUrl,
        Array.from({ length: cfg.shards }, (_, i) => n.shardQueue('send', i)),
      )
    ).filter((m) => m.headers['x-postmaster-user'] === Y);
    expect(
      yShard.map((m) => m.id),
      "y's replay order",
    ).to.deep.equal(ys);
    const left = ids(await peekQueue(iso.amqpUrl, n.dlq));
    expect(left.length).to.be.within(1, 4);
    expect(left, 'the x not replayed, in their order').to.deep.equal(xs.slice(xs.length - left.length));
  });
});
