import { expect } from 'chai';
import amqplib from 'amqplib';
import { newEnvelope } from '../../shared/domain/envelope.js';
import { publishToStage } from '../../shared/amqp/publish.js';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';
import { waitForAll } from '../sender/traffic.js';

/**
 * Nothing is confirmed into the void: every publish is mandatory, so one that reaches no queue (a
 * binding deleted by hand, topology drift) comes back and is refused, at the ingress (503, nothing
 * stored) and in the workers (the delivery is not acked; it is retried until the route is back).
 */
describe('ingress and workers: a deleted binding under load', function () {
  this.timeout(120_000);

  const t = useFleet('unroutable');

  async function setBinding(exchangeAndQueue: string, present: boolean): Promise<void> {
    const conn = await amqplib.connect(t.iso.amqpUrl);
    try {
      const ch = await conn.createChannel();
      if (present) await ch.bindQueue(exchangeAndQueue, exchangeAndQueue, '');
      else await ch.unbindQueue(exchangeAndQueue, exchangeAndQueue, '');
      await ch.close();
    } finally {
      await conn.close();
    }
  }

  it('answers 503 (never 202) while the urgent lane has no binding, and every 202 reaches the provider once', async () => {
    const names = t.fleet.ingress.rt.topology.names;
    const accepted: string[] = [];
    const refused: Array<{ status: number; body: any }> = [];
    let phase: 'before' | 'cut' | 'after' = 'before';
    const refusedWhileCut: number[] = [];
    const send = async (i: number) => {
      const urgent = i % 2 === 0;
      const r = await t.fleet.send({
        to: `1555300${String(i % 5).padStart(4, '0')}`,
        type: 'text',
        text: { body: `m${i}` },
        ...(urgent ? { priority: 'urgent' } : {}),
      });
      if (r.status === 202) accepted.push(r.body.id);
      else {
        refused.push(r);
        if (phase === 'cut' && urgent) refusedWhileCut.push(i);
      }
    };
    let i = 0;
    const burst = async (n: number) => {
      for (const end = i + n; i < end; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => send(i + k)));
    };
    await burst(60);
    // The send urgent lane loses its binding: the ingress's urgent publishes come back to it.
    await setBinding(names.urgent('send'), false);
    phase = 'cut';
    // A worker's publishes come back too: urgent sends found on the dispatch lane (a replayed
    // dispatch-stage dead letter) are forwarded by the dispatcher to send.urgent.
    const forwarded = Array.from({ length: 5 }, (_, k) =>
      newEnvelope({ kind: 'outbound', user: `155530100${k}`, priority: 'urgent', payload: { type: 'text', text: { body: `via dispatch ${k}` } } }),
    );
    for (const env of forwarded) await publishToStage(t.fleet.ingress.rt, 'dispatch', env);
    accepted.push(...forwarded.map((e) => e.id));
    await burst(60);
    phase = 'after';

    expect(refusedWhileCut.length, 'urgent sends refused while their lane had no binding').to.equal(30);
    for (const r of refused) {
      expect(r.status).to.equal(503);
      expect(r.body.message).to.match(/reached no queue/);
    }
    const metrics = (await t.fleet.ingress.rt.metrics.render()).body;
    expect(metrics).to.match(/postmaster_unroutable_total\{exchange="[^"]*send\.urgent"[^}]*\} 30/);

    // The dispatcher's publishes to send.urgent come back too: those messages wait in the retry
    // tiers (never acked into the void) until the binding is back.
    await waitFor(async () => /postmaster_unroutable_total\{exchange="[^"]*send\.urgent"/.test((await t.fleet.dispatchers[0].rt.metrics.render()).body), {
      what: 'the dispatcher counting returned publishes to send.urgent',
    });
    await setBinding(names.urgent('send'), true);
    await burst(60);
    await waitForAll(t.fleet, accepted, 60_000);
    const ids = t.fleet.sim
      .accepted()
      .map((e) => e.id)
      .filter((id): id is string => !!id && accepted.includes(id));
    expect(ids.length, 'each accepted message once').to.equal(accepted.length);
    expect(accepted.length).to.equal(180 - 30 + forwarded.length);
  });
});
