import { expect } from 'chai';
import { startDispatcher, type Dispatcher } from '../../services/dispatcher/service.js';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';
import { routingKeyFor } from '../../shared/amqp/publish.js';
import { capShards, dispatchQueues, peek, totalDepth } from '../ingress/lanes.js';
import { fixture, postWebhook } from './meta.js';

describe('webhooks: inbound messages and statuses into the dispatch lanes', function () {
  // No dispatcher at first: what the ingress published stays in the lanes to be looked at.
  const t = useFleet('wh-in', { dispatchers: 0 });

  it('splits a batch into inbound and status events keyed by wa_id, with the wamid, contact and metadata', async () => {
    const r = await postWebhook(t.fleet, fixture('inbound-batch.json'));
    expect(r.status).to.equal(200);
    expect(r.body).to.include({ received: 4, published: 4, duplicates: 0, skipped: 0 });
    const got = await peek(t.fleet.cfg.amqpUrl, dispatchQueues(t.fleet));
    expect(got).to.have.length(4);
    const inbound = got.filter((m) => m.env.kind === 'inbound');
    const status = got.filter((m) => m.env.kind === 'status');
    expect(inbound.map((m) => m.env.payload.id).sort()).to.deep.equal(['wamid.A1', 'wamid.A2', 'wamid.B1']);
    // Keyed by the shard of the user (wa_id), as every publisher computes it.
    for (const m of got) expect(m.routingKey).to.equal(routingKeyFor(t.fleet.ingress.rt.topology, 'dispatch', m.env.user));
    const a1 = inbound.find((m) => m.env.payload.id === 'wamid.A1')!;
    expect(a1.env.user).to.equal('16505551234');
    expect(a1.env.id).to.match(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a1.env.payload).to.deep.include({ from: '16505551234', type: 'text', text: { body: 'hi' } });
    expect(a1.env.payload.contact).to.deep.equal({ wa_id: '16505551234', name: 'Sheena Nelson' });
    expect(a1.env.payload.metadata).to.deep.equal({ display_phone_number: '15550783881', phone_number_id: '106540352242922' });
    expect(inbound.find((m) => m.env.payload.id === 'wamid.B1')!.env.user).to.equal('919876543210');
    expect(status).to.have.length(1);
    expect(status[0].env.user).to.equal('16505551234');
    expect(status[0].env.payload).to.deep.include({ id: 'wamid.OUT1', status: 'delivered' });
    // One user's messages share a shard, in the order Meta listed them.
    const a = got.filter((m) => m.env.kind === 'inbound' && m.env.user === '16505551234');
    expect(new Set(a.map((m) => m.queue)).size).to.equal(1);
    expect(a.map((m) => m.env.payload.id)).to.deep.equal(['wamid.A1', 'wamid.A2']);
  });

  it("drops Meta's retries of the same delivery (same wamid, same status id + status)", async () => {
    const before = await totalDepth(t.fleet);
    const r = await postWebhook(t.fleet, fixture('inbound-batch.json'));
    expect(r.status).to.equal(200);
    expect(r.body).to.include({ received: 4, published: 0, duplicates: 4 });
    // The same status id with a new status is news, not a retry.
    const read = fixture('inbound-batch.json').toString('utf8').replace('"status":"delivered"', '"status":"read"');
    const r2 = await postWebhook(t.fleet, read);
    expect(r2.body).to.include({ published: 1, duplicates: 3 });
    expect(await totalDepth(t.fleet)).to.equal(before + 1);
  });

  it("answers 503 when the broker refuses, and publishes everything on Meta's retry", async () => {
    const body = fixture('inbound-text.json').toString('utf8').replace('wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=', 'wamid.RETRY1');
    const before = await totalDepth(t.fleet);
    await capShards(t.iso, t.fleet, 0, 'dispatch');
    const refused = await postWebhook(t.fleet, body);
    expect(refused.status).to.equal(503);
    expect(refused.headers['retry-after']).to.equal(String(t.fleet.cfg.ingressRetryAfterS));
    expect(await totalDepth(t.fleet)).to.equal(before);
    // Lift the limit by raising it (see confirm-failure.test.ts), then Meta retries until a 200.
    await capShards(t.iso, t.fleet, 100_000, 'dispatch');
    const ok = await waitFor(
      async () => {
        const r = await postWebhook(t.fleet, body);
        return r.status === 200 ? r : null;
      },
      { what: 'a 200 once the broker takes messages again', intervalMs: 200 },
    );
    expect(ok.body).to.include({ published: 1, duplicates: 0 });
    expect(await totalDepth(t.fleet)).to.equal(before + 1);
  });

  it('hands every inbound message to the bot handler; the echo replies reach the user in order', async () => {
    const d: Dispatcher = await startDispatcher({ ...t.fleet.cfg, replicaId: 'late-dispatcher' });
    t.fleet.dispatchers.push(d);
    const replies = await waitFor(
      () => {
        const got = t.fleet.sim.accepted().filter((e) => e.to === '16505551234');
        return got.length >= 3 ? got : null;
      },
      { what: 'the echo replies to 16505551234' },
    );
    expect(replies.map((e) => (e.body as any).text.body)).to.deep.equal(['echo: hi', 'echo: where is my order?', 'echo: Does it come in another color?']);
    await waitFor(async () => (await totalDepth(t.fleet)) === 0, { what: 'empty dispatch lanes' });
    // The interactive button reply gets no echo; nothing else went to its sender.
    expect(t.fleet.sim.accepted().filter((e) => e.to === '919876543210')).to.have.length(0);
  });
});
