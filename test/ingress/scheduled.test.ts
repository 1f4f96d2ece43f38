import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';

describe('ingress: scheduled sends (sendAt)', function () {
  const t = useFleet('sched');

  const at = (ms: number) => new Date(Date.now() + ms).toISOString();
  const delivered = (id: string) =>
    waitFor(() => t.fleet.sim.accepted().find((e) => e.id === id), { what: `message ${id} at the provider`, timeoutMs: 15_000 });

  it('holds a future message and delivers it within 1 s of its sendAt, not before', async () => {
    const sendAt = at(1500);
    const res = await t.fleet.send({ to: '15556660001', text: { body: 'later' }, sendAt });
    expect(res.status).to.equal(202);
    expect(res.body).to.deep.equal({ id: res.body.id, status: 'scheduled', sendAt, priority: 'normal' });
    const rec = (await t.fleet.call('GET', `/v1/messages/${res.body.id}`)).body;
    expect(rec).to.include({ status: 'scheduled', sendAt });
    const entry = await delivered(res.body.id);
    const late = entry.receivedAt - Date.parse(sendAt);
    expect(late, 'ms after sendAt').to.be.within(0, 1000);
    const after = await waitFor(
      async () => {
        const r = (await t.fleet.call('GET', `/v1/messages/${res.body.id}`)).body;
        return r.history.some((h: { status: string }) => h.status === 'sent') ? r : null;
      },
      { what: 'status sent' },
    );
    expect(after.history.slice(0, 2).map((h: { status: string }) => h.status)).to.deep.equal(['scheduled', 'sent']);
  });

  it('delivers on time when the dispatcher is restarted before sendAt', async () => {
    const sendAt = at(3000);
    const res = await t.fleet.send({ to: '15556660002', text: { body: 'survives a restart' }, sendAt, priority: 'urgent' });
    expect(res.status).to.equal(202);
    await t.fleet.restartDispatcher(0);
    expect(Date.now(), 'restarted before sendAt').to.be.below(Date.parse(sendAt));
    const entry = await delivered(res.body.id);
    expect(entry.receivedAt - Date.parse(sendAt), 'ms after sendAt').to.be.within(0, 1000);
  });

  it('delivers a message due while no dispatcher ran as soon as one is back', async () => {
    await t.fleet.dispatchers[0].close();
    const sendAt = at(300);
    const res = await t.fleet.send({ to: '15556660003', text: { body: 'waited for a dispatcher' }, sendAt });
    expect(res.status).to.equal(202);
    await waitFor(() => Date.now() > Date.parse(sendAt) + 200, { what: 'sendAt to pass' });
    expect(t.fleet.sim.accepted().find((e) => e.id === res.body.id)).to.equal(undefined);
    const restarted = Date.now();
    await t.fleet.restartDispatcher(0);
    const entry = await delivered(res.body.id);
    expect(entry.receivedAt - restarted).to.be.below(3000);
  });

  it('sends at once when sendAt is now or past', async () => {
    const res = await t.fleet.send({ to: '15556660004', text: { body: 'overdue' }, sendAt: at(-60_000).replace('Z', '+00:00') });
    expect(res.status).to.equal(202);
    expect(res.body).to.include({ status: 'accepted', lane: 'send' });
    await delivered(res.body.id);
  });

  it('answers a repeat of a scheduled message with its id, scheduling nothing more', async () => {
    const body = { to: '15556660005', text: { body: 'once' }, sendAt: at(600_000), idempotencyKey: 'sched-1' };
    const first = await t.fleet.send(body);
    const again = await t.fleet.send(body);
    expect(first.status).to.equal(202);
    expect(again.status).to.equal(200);
    expect(again.body).to.deep.equal({ id: first.body.id, status: 'scheduled', duplicate: true });
    const counts = await t.fleet.ingress.schedule.queue.getJobCounts('delayed');
    expect(counts.delayed).to.equal(1);
  });

  it('answers 400 naming sendAt without a time zone offset or too far ahead', async () => {
    for (const sendAt of ['2030-01-01T10:00:00', '2030-01-01', 'soon', at(31 * 86_400_000)]) {
      const res = await t.fleet.send({ to: '15556660006', text: { body: 'x' }, sendAt });
      expect(res.status, sendAt).to.equal(400);
      expect(res.body.field).to.equal('sendAt');
    }
  });
});
