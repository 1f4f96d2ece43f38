import { expect } from 'chai';
import type { Queue } from 'bullmq';
import type { Config } from '../../shared/platform/config.js';
import { names, type Names } from '../../shared/amqp/topology/names.js';
import { openReplayQueue, type ReplayJobData, type ReplayProgress, type ReplayResult } from '../../services/dlq-replayer/jobs.js';
import { startReplayer, type Replayer } from '../../services/dlq-replayer/service.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { ids, peekQueue, peekQueues, publishDeadLetters, runCli, type Crafted } from './helpers.js';

describe('dlq jobs cancel', function () {
  let iso: Isolation;
  let cfg: Config;
  let n: Names;
  let replayer: Replayer;
  let queue: Queue<ReplayJobData, ReplayResult>;
  let dead: Crafted[];

  before(async () => {
    iso = await isolate('dlq-cancel');
    cfg = iso.config();
    n = names(cfg.topologyPrefix);
    replayer = await startReplayer(cfg);
    queue = openReplayQueue(cfg, iso.redis);
    dead = await publishDeadLetters(
      iso.amqpUrl,
      cfg.topologyPrefix,
      Array.from({ length: 20 }, (_, i) => ({ user: `155555500${String(i).padStart(2, '0')}`, code: i % 2 ? '131026' : '131047' })),
    );
  });
  after(async () => {
    await queue?.close();
    await replayer?.close();
    await iso?.cleanup();
  });

  it('stops a running replay; what it did not replay stays in the DLQ in its old order', async () => {
    const id: string = (await runCli(cfg, ['replay', '--code', '131026', '--rate', '1', '--yes', '--json'])).json().id;
    await waitFor(async () => (((await queue.getJob(id))?.progress as Partial<ReplayProgress>)?.replayed ?? 0) >= 1, {
      timeoutMs: 20_000,
      what: 'a first replay',
    });
    const cancel = await runCli(cfg, ['jobs', 'cancel', id, '--json']);
    expect(cancel.json()).to.deep.equal({ id, result: 'cancelling' });
    await waitFor(async () => (await (await queue.getJob(id))?.getState()) === 'failed', { timeoutMs: 20_000, what: 'the job to end as cancelled' });
    const job = (await queue.getJob(id))!;
    expect(job.failedReason).to.match(/^cancelled by an operator after \d dead letters/);
    expect(job.attemptsMade, 'a cancelled job is not retried').to.equal(1);
    const replayed = (
      await peekQueues(
        iso.amqpUrl,
        Array.from({ length: cfg.shards }, (_, i) => n.shardQueue('send', i)),
      )
    ).map((m) => m.id);
    expect(replayed.length).to.be.within(1, 9);
    const left = ids(await peekQueue(iso.amqpUrl, n.dlq));
    expect(left).to.deep.equal(dead.map((d) => d.id).filter((x) => !replayed.includes(x)));
    const status = await runCli(cfg, ['jobs', 'status', id]);
    expect(status.stdout).to.contain('cancelled by an operator');
  });

  it('removes a job that has not started', async () => {
    await replayer.close();
    const before = ids(await peekQueue(iso.amqpUrl, n.dlq));
    const id: string = (await runCli(cfg, ['purge', '--all', '--yes', '--json'])).json().id;
    const cancel = await runCli(cfg, ['jobs', 'cancel', id]);
    expect(cancel.stdout).to.contain(`job ${id} had not started; removed`);
    expect(await queue.getJob(id)).to.equal(undefined);
    expect(ids(await peekQueue(iso.amqpUrl, n.dlq))).to.deep.equal(before);
  });
});
