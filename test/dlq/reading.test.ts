import { expect } from 'chai';
import amqplib from 'amqplib';
import { H, newEnvelope } from '../../shared/domain/envelope.js';
import { names } from '../../shared/amqp/topology/names.js';
import { routingKeyFor } from '../../shared/amqp/publish.js';
import { topologyFromConfig } from '../../shared/amqp/runtime.js';
import { startReplayer, type Replayer } from '../../services/dlq-replayer/service.js';
import type { Config } from '../../shared/platform/config.js';
import { isolate, queueDepths, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { ids, peekQueue, publishDeadLetters, runCli, type Crafted } from './helpers.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

describe('dlq CLI: stats, list and show read the DLQ without changing it', function () {
  let iso: Isolation;
  let cfg: Config;
  let replayer: Replayer;
  let dlq: string;
  let dead: Crafted[];

  before(async () => {
    iso = await isolate('dlq-read');
    cfg = iso.config();
    dlq = names(cfg.topologyPrefix).dlq;
    replayer = await startReplayer(cfg);
    dead = await publishDeadLetters(iso.amqpUrl, cfg.topologyPrefix, [
      { user: '15550000001', code: '131026', failedAgoMs: 5 * MIN },
      { user: '15550000002', code: '131047', failedAgoMs: 30 * MIN },
      { user: '15550000001', code: '131026', failedAgoMs: 2 * HOUR },
      { user: '15550000003', cls: 'transient', code: 'http-503', stage: 'dispatch', failedAgoMs: 48 * HOUR },
      { user: '15550000004', broker: true, failedAgoMs: MIN },
      { user: '15550000005', cls: 'poison', code: 'invalid-envelope', rawBody: 'not json {', failedAgoMs: 10_000 },
    ]);
    await waitFor(async () => (await queueDepths(iso.amqpUrl, [dlq]))[dlq] === 6, { what: '6 dead letters' });
  });
  after(async () => {
    await replayer?.close();
    await iso?.cleanup();
  });

  it('counts the dead letters by class, code, stage and age (stats --json)', async () => {
    const r = await runCli(cfg, ['stats', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^\{\n {2}"total": 6,/);
    const s = r.json();
    expect(s.byClass).to.deep.equal({ permanent: 3, transient: 1, poison: 2 });
    expect(s.byCode).to.deep.equal({ '131026': 2, '131047': 1, 'http-503': 1, 'delivery-limit': 1, 'invalid-envelope': 1 });
    expect(s.byStage).to.deep.equal({ send: 5, dispatch: 1 });
    expect(s.byAge).to.deep.equal({ '<10m': 3, '10m-1h': 1, '1h-6h': 1, '6h-1d': 0, '1d-7d': 1, '>7d': 0 });
    expect(s.unread).to.equal(0);
  });

  it('prints readable tables without --json, and takes filters', async () => {
    const r = await runCli(cfg, ['stats']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`${dlq}: 6 dead letters`);
    expect(r.stdout).to.match(/│ 131026\s+│ 2\s+│/);
    expect(r.stdout).to.match(/│ delivery-limit\s+│ 1\s+│/);
    const f = (await runCli(cfg, ['stats', '--json', '--class', 'permanent', '--older-than', '10m'])).json();
    expect(f.total).to.equal(2);
    expect(f.depth).to.equal(6);
  });

  it('lists the dead letters in DLQ order, a page at a time, filtered', async () => {
    const page1 = (await runCli(cfg, ['list', '--json', '--limit', '2'])).json();
    expect(page1.total).to.equal(6);
    expect(page1.items.map((i: { id: string }) => i.id)).to.deep.equal([dead[0].id, dead[1].id]);
    const page2 = await runCli(cfg, ['list', '--limit', '2', '--offset', '2']);
    expect(page2.stdout).to.contain(dead[2].id).and.contain(dead[3].id).and.not.contain(dead[4].id);
    expect(page2.stdout).to.contain('3-4 of 6 (next page: --offset 4)');
    const list = async (...args: string[]) => (await runCli(cfg, ['list', '--json', ...args])).json().items.map((i: { id: string }) => i.id);
    expect(await list('--code', '131026')).to.deep.equal([dead[0].id, dead[2].id]);
    expect(await list('--older-than', '1h')).to.deep.equal([dead[2].id, dead[3].id]);
    expect(await list('--newer-than', '10m', '--class', 'poison')).to.deep.equal([dead[4].id, dead[5].id]);
    expect(await list('--user', '15550000003', '--stage', 'dispatch')).to.deep.equal([dead[3].id]);
  });

  it('shows one dead letter: headers, x-death history and body; a broker dead letter is poison/delivery-limit bound for its lane', async () => {
    const broker = dead[4];
    const r = await runCli(cfg, ['show', broker.id, '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const v = r.json();
    expect(v).to.include({ id: broker.id, class: 'poison', code: 'delivery-limit', stage: 'send', lane: 'send', source: 'broker' });
    // Bound for the user's shard, recomputed from the user (the crafted death names the user as key).
    expect(v.origin).to.equal(`${cfg.topologyPrefix}.send.shards / ${routingKeyFor(topologyFromConfig(cfg), 'send', '15550000004')}`);
    expect(v.history.deaths[0]).to.include({ reason: 'delivery_limit', queue: `${cfg.topologyPrefix}.send.02` });
    expect(v.body.id).to.equal(broker.id);
    const poison = (await runCli(cfg, ['show', dead[5].id])).stdout;
    expect(poison).to.contain('body (not a valid envelope: body is not JSON');
    expect(poison).to.contain('not json {');
    const missing = await runCli(cfg, ['show', '01ARZ3NDEKTSV4RRFFQ69G5FAV']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.contain('no dead letter with id 01ARZ3NDEKTSV4RRFFQ69G5FAV');
  });

  it('leaves the DLQ as it was, in the same order, after all those reads', async () => {
    const before = ids(await peekQueue(iso.amqpUrl, dlq));
    await runCli(cfg, ['stats', '--json']);
    await runCli(cfg, ['list', '--json', '--limit', '1']);
    await runCli(cfg, ['show', dead[3].id, '--json']);
    const after = await waitFor(
      async () => {
        const now = ids(await peekQueue(iso.amqpUrl, dlq));
        return now.length === 6 ? now : null;
      },
      { what: 'all 6 back in the DLQ' },
    );
    expect(after).to.deep.equal(before);
    expect(after).to.deep.equal(dead.map((d) => d.id));
  });

  it('refuses to read while a job goes over the DLQ, unless --force', async () => {
    const lockKey = `${cfg.redisKeyPrefix}:${cfg.topologyPrefix}:dlq:pass`;
    await iso.redis.set(lockKey, 'job:42');
    try {
      const r = await runCli(cfg, ['stats', '--json']);
      expect(r.code).to.equal(3);
      expect(r.stderr).to.contain('job 42 is going over the DLQ');
      const forced = await runCli(cfg, ['stats', '--json', '--force']);
      expect(forced.json().total).to.equal(6);
    } finally {
      await iso.redis.del(lockKey);
    }
  });

  it('decodes a message the broker dead-lettered at the delivery limit of its shard', async () => {
    const n = names(cfg.topologyPrefix);
    const user = '15550000099';
    const env = newEnvelope({ kind: 'outbound', user, priority: 'normal', payload: { type: 'text', text: { body: 'crash me' } } });
    const conn = await amqplib.connect(iso.amqpUrl);
    try {
      const ch = await conn.createConfirmChannel();
      ch.publish(n.laneExchange('send'), routingKeyFor(topologyFromConfig(cfg), 'send', user), Buffer.from(JSON.stringify(env)), {
        persistent: true,
        messageId: env.id,
        headers: { [H.lane]: 'send', [H.stage]: 'send', [H.attempt]: 0 },
      });
      await ch.waitForConfirms();
      const shards = Array.from({ length: cfg.shards }, (_, i) => n.shardQueue('send', i));
      const depths = await queueDepths(iso.amqpUrl, shards);
      const shard = shards.find((q) => depths[q] === 1)!;
      // A consumer that keeps crashing: every delivery is requeued until the delivery limit dead-letters it.
      await ch.consume(shard, (m) => m && ch.nack(m, false, true));
      await waitFor(async () => (await queueDepths(iso.amqpUrl, [dlq]))[dlq] === 7, { what: 'the broker to dead-letter it' });
      await ch.close();
    } finally {
      await conn.close();
    }
    const v = (await runCli(cfg, ['show', env.id, '--json'])).json();
    expect(v).to.include({ class: 'poison', code: 'delivery-limit', stage: 'send', lane: 'send', source: 'broker', user });
    expect(v.origin).to.equal(`${n.laneExchange('send')} / ${routingKeyFor(topologyFromConfig(cfg), 'send', user)}`);
    expect(v.history.deaths[0].reason).to.equal('delivery_limit');
  });
});
