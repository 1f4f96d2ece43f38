import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { capShards, sendQueues, peek, totalDepth } from './lanes.js';

describe('ingress: POST /v1/messages/batch', function () {
  const t = useFleet('batch', { dispatchers: 0, senders: 0 });

  const batch = (messages: unknown[]) => t.fleet.call('POST', '/v1/messages/batch', { body: { messages } });
  const text = (to: string, body = 'hi') => ({ to, text: { body } });

  it('answers 202 when every message got in, with one result per message in order', async () => {
    const messages = Array.from({ length: 500 }, (_, i) => text(`1555100${String(i).padStart(4, '0')}`, `m${i}`));
    const r = await batch(messages);
    expect(r.status).to.equal(202);
    expect(r.body).to.include({ accepted: 500, duplicates: 0, rejected: 0, failed: 0 });
    expect(r.body.results.map((x: { index: number }) => x.index)).to.deep.equal(messages.map((_, i) => i));
    expect(await totalDepth(t.fleet)).to.equal(500);
    const ids = new Set(r.body.results.map((x: { id: string }) => x.id));
    expect((await peek(t.fleet.cfg.amqpUrl, sendQueues(t.fleet))).filter((m) => ids.has(m.env.id))).to.have.length(500);
  });

  it('answers 207 with the bad messages rejected by field and the good ones accepted', async () => {
    const before = await totalDepth(t.fleet);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const r = await batch([
      text('15552000001'),
      { to: '15552000002', text: { body: '' } },
      { to: '15552000003', text: { body: 'later' }, sendAt: future },
      { to: 'nobody', text: { body: 'x' } },
      { to: '15552000005', text: { body: 'urgent' }, priority: 'urgent' },
      { to: '15552000006', text: { body: 'x' }, priority: 'high' },
    ]);
    expect(r.status).to.equal(207);
    expect(r.body).to.include({ accepted: 3, duplicates: 0, rejected: 3, failed: 0 });
    const [a, b, c, d, e, f] = r.body.results;
    expect(a).to.include({ index: 0, status: 202, state: 'accepted' });
    expect(b).to.include({ index: 1, status: 400, field: 'messages.1.text.body' });
    expect(c).to.include({ index: 2, status: 202, state: 'scheduled', sendAt: future });
    expect(d).to.include({ index: 3, status: 400, field: 'messages.3.to' });
    expect(e).to.include({ index: 4, status: 202, state: 'accepted' });
    expect(f).to.include({ index: 5, status: 400, field: 'messages.5.priority' });
    expect(b.error).to.match(/^messages\.1\.text\.body: /);
    // Two published now (ordered + urgent lane), one waiting in the scheduled-send queue.
    expect(await totalDepth(t.fleet)).to.equal(before + 2);
    expect(await t.fleet.ingress.schedule.queue.getJob(c.id)).to.have.property('id', c.id);
  });

  it('answers 503 for exactly the messages the broker did not confirm, in one confirm round', async () => {
    const before = await totalDepth(t.fleet);
    // The emptiest shard takes one more message; the broker nacks everything else.
    const held = Object.values(
      await queueDepths(
        t.fleet.cfg.amqpUrl,
        sendQueues(t.fleet).filter((q) => !q.endsWith('.urgent')),
      ),
    );
    await capShards(t.iso, t.fleet, Math.min(...held) + 1);
    try {
      const messages = Array.from({ length: 60 }, (_, i) => text(`1555300${String(i).padStart(4, '0')}`));
      const r = await batch(messages);
      expect(r.status).to.equal(207);
      expect(r.headers['retry-after']).to.equal(String(t.fleet.cfg.ingressRetryAfterS));
      const ok = r.body.results.filter((x: { status: number }) => x.status === 202);
      const failed = r.body.results.filter((x: { status: number }) => x.status === 503);
      expect(ok.length + failed.length).to.equal(60);
      expect(failed.length).to.be.greaterThan(0);
      expect(ok.length).to.be.greaterThan(0);
      for (const x of failed) expect(x).not.to.have.property('id');
      // Every 202 is in the broker and nothing else is.
      expect(await totalDepth(t.fleet)).to.equal(before + ok.length);
      const inLanes = new Set((await peek(t.fleet.cfg.amqpUrl, sendQueues(t.fleet))).map((m) => m.env.id));
      for (const x of ok) expect(inLanes.has(x.id)).to.equal(true);
    } finally {
      await capShards(t.iso, t.fleet, 100_000);
    }
  });
});
