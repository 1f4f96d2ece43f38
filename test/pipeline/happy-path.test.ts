import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';

describe('pipeline: HTTP → RabbitMQ → provider', function () {
  const t = useFleet('happy');

  it('answers 202 with the envelope id and delivers the message to the provider as the provider contract says', async () => {
    const res = await t.fleet.send({ to: '15551234567', type: 'text', text: { body: 'hi' }, priority: 'normal' });
    expect(res.status).to.equal(202);
    expect(res.body.id).to.match(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    const entry = await waitFor(() => t.fleet.sim.accepted().find((e) => e.id === res.body.id), { what: 'the message at the provider' });
    expect(entry.to).to.equal('15551234567');
    expect(entry.type).to.equal('text');
    expect(entry.body).to.deep.include({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '15551234567',
      type: 'text',
      text: { body: 'hi' },
      biz_opaque_callback_data: res.body.id,
    });
  });

  it("delivers one user's messages in the order they were accepted", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await t.fleet.send({ to: '15550000001', type: 'text', text: { body: `m${i}` } });
      expect(r.status).to.equal(202);
      ids.push(r.body.id);
    }
    const got = await waitFor(
      () => {
        const seen = t.fleet.sim.accepted().filter((e) => e.to === '15550000001');
        return seen.length >= 20 ? seen : null;
      },
      { what: '20 messages at the provider' },
    );
    expect(got.map((e) => e.id)).to.deep.equal(ids);
  });

  it('answers /healthz and /readyz', async () => {
    const ready = await fetch(`${t.fleet.ingress.url}/readyz`);
    expect(ready.status).to.equal(200);
    const health = await fetch(`${t.fleet.ingress.url}/healthz`);
    expect(health.status).to.equal(200);
  });

  it('exposes Prometheus metrics with the postmaster_ prefix on METRICS_PORT', async () => {
    const text = await (await fetch(`http://127.0.0.1:${t.fleet.ingress.metricsPort}/metrics`)).text();
    expect(text).to.match(/postmaster_accepted_total\{[^}]*kind="outbound"[^}]*\} \d+/);
  });
});
