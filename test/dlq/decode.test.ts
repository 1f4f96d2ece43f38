import { expect } from 'chai';
import type { ConsumeMessage } from 'amqplib';
import { H } from '../../shared/domain/envelope.js';
import { names } from '../../shared/amqp/topology/names.js';
import { shardKey, shardOf } from '../../shared/amqp/topology/shard.js';
import { decodeDeadLetter } from '../../services/dlq-replayer/dead-letter.js';
import { describeFilter, formatDuration, matches, parseDuration } from '../../services/dlq-replayer/filter.js';
import { LaneIndex } from '../../services/dlq-replayer/lanes.js';
import { replayMessage } from '../../services/dlq-replayer/replay-message.js';
import { TokenBucket } from '../../services/dlq-replayer/throttle.js';
import { craft } from './helpers.js';

const lanes = new LaneIndex(names('pm'), 16);

function delivery(c: { content: Buffer; headers: Record<string, unknown>; id?: string }): ConsumeMessage {
  return { content: c.content, properties: { headers: c.headers, messageId: c.id }, fields: { routingKey: '' } } as unknown as ConsumeMessage;
}

describe('dead letters, filters and throttles (no broker)', () => {
  it('reads a fleet dead letter from its failure headers', () => {
    const c = craft('pm', { user: '15550001111', code: '131047', cls: 'permanent', stage: 'dispatch' });
    const dl = decodeDeadLetter(delivery(c), lanes);
    expect(dl).to.include({ id: c.id, source: 'fleet', failureClass: 'permanent', code: '131047', stage: 'dispatch', user: '15550001111' });
    // Replayed to the user's shard, as every publisher computes it.
    expect(dl.origin).to.deep.equal({ stage: 'dispatch', lane: 'dispatch', exchange: 'pm.dispatch.shards', routingKey: shardKey(shardOf('15550001111', 16)) });
  });

  it("replays a dead letter from before publisher-side sharding (ring exchange, user as key) to the user's shard", () => {
    const c = craft('pm', { user: '15550002222', stage: 'send' });
    c.headers[H.originExchange] = 'pm.send';
    delete c.headers[H.user];
    const content = Buffer.from('{"not":"an envelope"'); // no user in the body either: only the old routing key says it
    const dl = decodeDeadLetter(delivery({ ...c, content }), lanes);
    expect(dl.origin).to.deep.equal({ stage: 'send', lane: 'send', exchange: 'pm.send.shards', routingKey: shardKey(shardOf('15550002222', 16)) });
    const now = craft('pm', { user: '15550002222', stage: 'send' });
    now.headers[H.originRoutingKey] = '05';
    delete now.headers[H.user];
    expect(decodeDeadLetter(delivery({ ...now, content }), lanes).origin?.routingKey, 'a shard key is kept').to.equal('05');
  });

  it("takes the broker's most recent death in a lane queue over older failure headers", () => {
    const c = craft('pm', { user: '15550001111', code: 'http-503', cls: 'transient' });
    c.headers['x-death'] = [
      {
        count: 5,
        reason: 'delivery_limit',
        queue: 'pm.send.urgent',
        time: { '!': 'timestamp', value: 1_700_000_000 },
        exchange: 'pm.send.urgent',
        'routing-keys': ['15550001111'],
      },
      {
        count: 1,
        reason: 'expired',
        queue: 'pm.retry.1s',
        time: { '!': 'timestamp', value: 1_699_999_000 },
        exchange: 'pm.retry.1s',
        'routing-keys': ['15550001111'],
      },
    ];
    const dl = decodeDeadLetter(delivery(c), lanes);
    expect(dl).to.include({ source: 'broker', failureClass: 'poison', code: 'delivery-limit', lane: 'send.urgent', failedAt: 1_700_000_000_000 });
    expect(dl.origin?.exchange).to.equal('pm.send.urgent');
  });

  it('never replays to an exchange that is not a lane of this topology', () => {
    const c = craft('pm', { user: '15550001111' });
    c.headers[H.originExchange] = 'amq.direct';
    const dl = decodeDeadLetter(delivery(c), lanes);
    expect(dl.origin).to.equal(null);
    expect(() => replayMessage(dl, '1')).to.throw(/names no lane/);
  });

  it('gives the same key to the same dead letter and different keys to different deaths of one envelope', () => {
    const c = craft('pm', { user: '15550001111' });
    const a = decodeDeadLetter(delivery(c), lanes);
    expect(decodeDeadLetter(delivery({ ...c, headers: { ...c.headers, 'x-postmaster-rotated-by': 'x' } }), lanes).key).to.equal(a.key);
    const later = decodeDeadLetter(delivery({ ...c, headers: { ...c.headers, [H.lastFailureAt]: new Date().toISOString() } }), lanes);
    expect(later.key).to.not.equal(a.key);
    expect(later.key.startsWith(`${c.id}:`)).to.equal(true);
  });

  it('parses and prints durations, and filters by every criterion', () => {
    expect(parseDuration('90s')).to.equal(90_000);
    expect(parseDuration('2h')).to.equal(7_200_000);
    expect(parseDuration('1.5m')).to.equal(90_000);
    expect(() => parseDuration('soon')).to.throw(/not a duration/);
    expect(formatDuration(93_784_000)).to.equal('1d2h');
    const dl = decodeDeadLetter(delivery(craft('pm', { user: '15550001111', code: '131026', failedAgoMs: 3_600_000, replays: 2 })), lanes);
    expect(matches({ codes: ['131026', 'x'], stages: ['send'], users: ['15550001111'] }, dl)).to.equal(true);
    expect(matches({ olderThanMs: 1_800_000, newerThanMs: 7_200_000 }, dl)).to.equal(true);
    expect(matches({ newerThanMs: 60_000 }, dl)).to.equal(false);
    expect(matches({ replaysBelow: 2 }, dl)).to.equal(false);
    expect(matches({ stages: ['send.urgent'] }, dl)).to.equal(false);
    expect(describeFilter({ codes: ['131026'], olderThanMs: 600_000, replaysBelow: 3 })).to.equal('code=131026 older-than=10m replays<3');
  });

  it('paces a token bucket at its rate', () => {
    const b = new TokenBucket(4);
    const t0 = Date.now();
    expect(b.take(t0)).to.equal(0);
    expect(b.take(t0)).to.equal(250);
    expect(b.take(t0 + 250)).to.equal(0);
    expect(new TokenBucket(0).take()).to.equal(0);
  });
});
