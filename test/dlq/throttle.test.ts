import { expect } from 'chai';
import amqplib from 'amqplib';
import type { Queue } from 'bullmq';
import type { Config } from '../../shared/platform/config.js';
import { H } from '../../shared/domain/envelope.js';
import { names, type Names } from '../../shared/amqp/topology/names.js';
import { shardKey, shardOf } from '../../shared/amqp/topology/shard.js';
import { startReplayer, type Replayer } from '../../services/dlq-replayer/service.js';
import { openReplayQueue, type ReplayJobData, type ReplayProgress, type ReplayResult } from '../../services/dlq-replayer/jobs.js';
import { isolate, queueDepths, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { ids, peekQueue, peekQueues, publishDeadLetters, runCli, type Crafted } from './helpers.js';

const sendShards = (n: Names, shards: number) => Array.from({ length: shards }, (_, i) => n.shardQueue('send', i));

describe('dlq replay yields to live traffic', function () {
  let iso: Isolation;
  let cfg: Config;
  let n: Names;
  let replayer: Replayer;
  let queue: Queue<ReplayJobData, ReplayResult>;
  let dead: Crafted[];

  before(async () => {
    iso = await isolate('dlq-backlog');
    cfg = iso.config({ replayBacklogThreshold: 3 });
    n = names(cfg.topologyPrefix);
    replayer = await startReplayer(cfg);
    queue = openReplayQueue(cfg, iso.redis);
    dead = await publishDeadLetters(iso.amqpUrl, cfg.topologyPrefix, [
      { user: '15553330001', code: '131026' },
      { user: '15553330002', broker: true },
      { user: '15553330003', cls: 'transient', code: 'http-503', replays: 1 },
    ]);
  });
  after(async () => {
    await queue?.close();
    await replayer?.close();
    await iso?.cleanup();
  });

  it('waits while the live lanes hold more than REPLAY_BACKLOG_THRESHOLD ready messages, then replays', async () => {
    const conn = await amqplib.connect(iso.amqpUrl);
    const ch = await conn.createConfirmChannel();
    try {
      for (let i = 0; i < 5; i++) ch.sendToQueue(n.shardQueue('send', 0), Buffer.from('{}'), { persistent: true });
      await ch.waitForConfirms();
      const id: string = (await runCli(cfg, ['replay', '--all', '--yes', '--json'])).json().id;
      const p = await waitFor(
        async () => {
          const progress = (await queue.getJob(id))?.progress as Partial<ReplayProgress> | undefined;
          return progress?.waiting === 'backlog' ? progress : null;
        },
        { timeoutMs: 20_000, what: 'the job to wait for the backlog' },
      );
      expect(p.replayed).to.equal(0);
      await ch.purgeQueue(n.shardQueue('send', 0));
      await waitFor(async () => (await (await queue.getJob(id))?.getState()) === 'completed', { timeoutMs: 20_000, what: 'the job to complete' });
      expect((await queue.getJob(id))!.returnvalue).to.include({ replayed: 3, kept: 0 });
    } finally {
      await ch.close();
      await conn.close();
    }
  });

  it('replays each message afresh: attempt 0, replays + 1, failure headers moved to x-postmaster-history, no x-death', async () => {
    const lanes = await peekQueues(iso.amqpUrl, sendShards(n, cfg.shards));
    expect(lanes.map((m) => m.id).sort()).to.deep.equal(dead.map((d) => d.id).sort());
    for (const m of lanes) {
      const d = dead.find((x) => x.id === m.id)!;
      // To the user's shard: the key every publisher computes for this user.
      expect(m.routingKey).to.equal(shardKey(shardOf(d.user, cfg.shards)));
      expect(m.headers[H.user]).to.equal(d.user);
      expect(m.headers[H.attempt]).to.equal(0);
      expect(m.body.attempt).to.equal(0);
      expect(m.headers[H.lane]).to.equal('send');
      for (const gone of [H.failureClass, H.failureCode, H.lastFailureAt, H.originExchange, 'x-death']) expect(m.headers, gone).not.to.have.property(gone);
      const history = JSON.parse(m.headers['x-postmaster-history']);
      expect(history).to.have.length(1);
      expect(history[0]).to.include({ stage: 'send', lane: 'send' });
    }
    const byUser = (u: string) => lanes.find((m) => m.headers[H.user] === u)!;
    expect(byUser('15553330001').headers[H.replays]).to.equal(1);
    expect(JSON.parse(byUser('15553330001').headers['x-postmaster-history'])[0]).to.include({ class: 'permanent', code: '131026' });
    expect(JSON.parse(byUser('15553330002').headers['x-postmaster-history'])[0]).to.include({ class: 'poison', code: 'delivery-limit' });
    expect(JSON.parse(byUser('15553330002').headers['x-postmaster-history'])[0].deaths[0].reason).to.equal('delivery_limit');
    expect(byUser('15553330003').headers[H.replays]).to.equal(2);
  });
});

describe('dlq automatic replay policy', function () {
  let iso: Isolation;
  let cfg: Config;
  let n: Names;
  let replayer: Replayer | null = null;
  let dead: Crafted[];

  before(async () => {
    iso = await isolate('dlq-auto');
    cfg = iso.config({ dlqAutoReplayCooldownMs: 1000, dlqAutoReplayMax: 2, dlqAutoReplayEveryMs: 1000, replayBacklogThreshold: 0 });
    n = names(cfg.topologyPrefix);
    replayer = await startReplayer(cfg);
    dead = await publishDeadLetters(iso.amqpUrl, cfg.topologyPrefix, [
      { user: '15554440001', cls: 'transient', code: 'http-503' },
      { user: '15554440002', cls: 'transient', code: '131000', replays: 1 },
      { user: '15554440003', cls: 'transient', code: 'http-503', replays: 2 },
      { user: '15554440004', cls: 'permanent', code: '131026' },
    ]);
  });
  after(async () => {
    await replayer?.close();
    await iso?.cleanup();
  });

  it('replays transient dead letters older than the cooldown until they were replayed DLQ_AUTO_REPLAY_MAX times, and leaves the rest', async () => {
    const jobs = (await runCli(cfg, ['jobs', '--json'])).json();
    expect(jobs.autoReplay).to.not.equal(null);
    const shards = sendShards(n, cfg.shards);
    const ready = async () => {
      const d = await queueDepths(iso.amqpUrl, [...shards, n.dlq]);
      return shards.reduce((s, q) => s + d[q], 0) === 2 && d[n.dlq] === 2;
    };
    await waitFor(ready, { timeoutMs: 30_000, what: 'two auto-replayed, two left' });
    await replayer!.close();
    replayer = null;
    const lanes = await peekQueues(iso.amqpUrl, shards);
    expect(lanes.map((m) => [m.id, m.headers[H.replays]]).sort()).to.deep.equal(
      [
        [dead[0].id, 1],
        [dead[1].id, 2],
      ].sort(),
    );
    expect(ids(await peekQueue(iso.amqpUrl, n.dlq))).to.deep.equal([dead[2].id, dead[3].id]);
  });
});
