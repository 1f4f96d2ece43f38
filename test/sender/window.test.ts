import { expect } from 'chai';
import { request } from 'undici';
import { keyspace } from '../../shared/platform/redis.js';
import { WINDOW_MS, windowKey } from '../../shared/domain/window.js';
import { inboundPayload, Windows } from '../../services/simulator/windows.js';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { postWebhook } from '../webhooks/meta.js';

const TEMPLATE = { name: 'order_update', language: { code: 'en_US' } };

/**
 * The 24-hour customer-service window (WHATSAPP_WINDOW_CHECK=enforce): free-form messages go only
 * to users who wrote in the last 24 hours, by the record the dispatcher keeps of inbound messages;
 * outside it a message goes as its fallbackTemplate or fails at once (class window-closed) without
 * a provider call; the Cloud API's 131047 gets the same answer; templates are never held.
 */
describe('sender: the customer-service window', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let fleet: Fleet;
  let n = 0;
  /** A fresh recipient per test. */
  const user = () => `1555123${String(++n).padStart(4, '0')}`;

  before(async () => {
    iso = await isolate('sender-window');
    fleet = await startFleet(iso, { overrides: { whatsappWindowCheck: 'enforce' } });
  });
  after(async () => {
    await fleet?.close();
    await iso?.cleanup();
  });

  const record = async (id: string) => (await fleet.call('GET', `/v1/messages/${id}`)).body;
  const settled = (id: string) =>
    waitFor(
      async () => {
        const rec = await record(id);
        return ['sent', 'dead-lettered'].includes(rec?.status) ? rec : null;
      },
      { what: `message ${id} sent or dead-lettered` },
    );
  const keyOf = (to: string) => windowKey({ keys: keyspace(fleet.cfg.redisKeyPrefix, fleet.cfg.topologyPrefix) }, fleet.cfg.whatsappPhoneNumberId, to);
  /** Postmaster's record says the user last wrote `agoMs` ago. */
  const wroteAgo = (to: string, agoMs: number) => iso.redis.set(keyOf(to), String(Date.now() - agoMs), 'PX', WINDOW_MS);
  const send = async (body: Record<string, unknown>) => {
    const res = await fleet.send(body);
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    return res.body.id as string;
  };

  it('replies free-form to a user who wrote: the inbound webhook opens the window', async () => {
    const to = user();
    const at = Date.now();
    const hook = inboundPayload({ phoneNumberId: fleet.cfg.whatsappPhoneNumberId, from: to, text: 'hi', at, wamid: `wamid.WIN${to}` });
    expect((await postWebhook(fleet, JSON.stringify(hook))).status).to.equal(200);
    const reply = await waitFor(() => fleet.sim.accepted().find((e) => e.to === to), { what: 'the echo reply' });
    expect(reply).to.include({ type: 'text', status: 200 });
    expect(Number(await iso.redis.get(keyOf(to)))).to.equal(Math.floor(at / 1000) * 1000);
    const id = await send({ to, text: { body: 'and one more thing' } });
    expect((await settled(id)).status).to.equal('sent');
  });

  it('fails a free-form send to a user who never wrote at once: window-closed, no provider call, visible in the status API', async () => {
    const to = user();
    const id = await send({ to, text: { body: 'hello?' } });
    const rec = await settled(id);
    expect(rec.status).to.equal('dead-lettered');
    expect(rec.error).to.include({ class: 'window-closed', code: 'window-closed' });
    expect(rec.history.map((h: { status: string }) => h.status)).to.not.include('sent');
    expect(fleet.sim.ledger({ to })).to.have.length(0);
  });

  it('holds a user who wrote 24 hours ago like one who never wrote', async () => {
    const to = user();
    await wroteAgo(to, WINDOW_MS + 1000);
    const rec = await settled(await send({ to, text: { body: 'too late' } }));
    expect(rec).to.deep.include({ status: 'dead-lettered' });
    expect(rec.error.class).to.equal('window-closed');
    expect(fleet.sim.ledger({ to })).to.have.length(0);
  });

  it('sends the fallbackTemplate instead, and the status record says so', async () => {
    const to = user();
    const rec = await settled(await send({ to, text: { body: 'your order shipped' }, fallbackTemplate: TEMPLATE }));
    expect(rec).to.include({ status: 'sent', fallback: 'window-closed' });
    const calls = fleet.sim.ledger({ to });
    expect(calls).to.have.length(1);
    expect(calls[0]).to.include({ type: 'template', status: 200 });
    expect((calls[0].body as { template: unknown }).template).to.deep.equal(TEMPLATE);
  });

  it('rejects a fallbackTemplate that is not a template object at the ingress', async () => {
    const res = await fleet.send({ to: user(), text: { body: 'x' }, fallbackTemplate: { language: { code: 'en_US' } } });
    expect(res.status).to.equal(400);
    expect(JSON.stringify(res.body)).to.match(/fallbackTemplate\.name/);
  });

  it('never holds a template, whatever the window', async () => {
    const to = user();
    const rec = await settled(await send({ to, type: 'template', template: TEMPLATE }));
    expect(rec.status).to.equal('sent');
    expect(fleet.sim.accepted().filter((e) => e.to === to)).to.have.length(1);
  });

  it("gives the Cloud API's 131047 the same class, and answers it with the fallback template when there is one", async () => {
    const [a, b] = [user(), user()];
    // Postmaster believes both windows open; the provider knows better.
    await wroteAgo(a, 1000);
    await wroteAgo(b, 1000);
    fleet.sim.setFaults({
      rules: [
        { to: a, times: 1, status: 400, code: 131047 },
        { to: b, times: 1, status: 400, code: 131047 },
      ],
    });
    const failed = await settled(await send({ to: a, text: { body: 'free-form' } }));
    expect(failed.status).to.equal('dead-lettered');
    expect(failed.error).to.include({ class: 'window-closed', code: '131047' });
    expect(fleet.sim.ledger({ to: a })).to.have.length(1);

    const fell = await settled(await send({ to: b, text: { body: 'free-form' }, fallbackTemplate: TEMPLATE }));
    expect(fell).to.include({ status: 'sent', fallback: '131047' });
    expect(fleet.sim.ledger({ to: b }).map((e) => [e.type, e.status])).to.deep.equal([
      ['text', 400],
      ['template', 200],
    ]);
  });
});

describe('simulator: customer-service windows', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({ phoneNumberId: '100000000000001' });
  });
  after(() => sim?.close());

  const control = async (method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown) => {
    const res = await request(`${sim.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as any };
  };

  it('opens a window on an inbound message and closes it 24 hours later by the simulator clock', async () => {
    expect((await control('PUT', '/_sim/windows', { enforce: true })).body.enforce).to.equal(true);
    const inbound = await control('POST', '/_sim/inbound', { from: '15550001234' });
    expect(inbound.status).to.equal(200);
    const listed = (await control('GET', '/_sim/windows')).body;
    expect(listed.windows).to.deep.equal([{ phoneNumberId: '100000000000001', user: '15550001234', lastInboundAt: inbound.body.at }]);
    const moved = await control('POST', '/_sim/clock', { advanceMs: WINDOW_MS });
    expect(moved.body.now).to.be.at.least(inbound.body.at + WINDOW_MS);
    expect((await control('POST', '/_sim/clock', { advanceMs: -1 })).status).to.equal(400);
  });

  it('refuses free-form messages outside the window with 131047 while enforcing; templates and read receipts pass', () => {
    const w = new Windows();
    const t0 = 1_000_000;
    expect(w.refusal('N', 'U', 'text', t0), 'not enforcing').to.equal(null);
    w.enforce = true;
    expect(w.refusal('N', 'U', 'text', t0)).to.deep.equal({ status: 400, code: 131047 });
    expect(w.refusal('N', 'U', 'template', t0)).to.equal(null);
    expect(w.refusal('N', 'U', 'read', t0), 'a read receipt').to.equal(null);
    w.open('U', t0, 'N');
    expect(w.refusal('N', 'U', 'reaction', t0 + WINDOW_MS - 1)).to.equal(null);
    expect(w.refusal('OTHER', 'U', 'text', t0), 'another number').to.deep.equal({ status: 400, code: 131047 });
    expect(w.refusal('N', 'U', 'text', t0 + WINDOW_MS)).to.deep.equal({ status: 400, code: 131047 });
  });
});
