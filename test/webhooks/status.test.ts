import { expect } from 'chai';
import { newId } from '../../shared/domain/envelope.js';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';
import { fixture, postWebhook } from './meta.js';

/** A status webhook in Meta's shape for one message. */
function statusBody(wamid: string, status: string, opaque?: string): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
              statuses: [{ id: wamid, status, timestamp: '1749416390', recipient_id: '16505551234', ...(opaque ? { biz_opaque_callback_data: opaque } : {}) }],
            },
          },
        ],
      },
    ],
  });
}

describe('webhooks: statuses update the message status record', function () {
  // The simulator posts signed sent / delivered / read webhooks for every message it accepts.
  const t = useFleet('wh-status', { statusWebhooks: ['sent', 'delivered', 'read'] });

  const record = async (id: string) => (await t.fleet.call('GET', `/v1/messages/${id}`)).body;

  it('follows a sent message to read: GET /v1/messages/:id shows the history and the wamid', async () => {
    const res = await t.fleet.send({ to: '15551230001', text: { body: 'track me' } });
    expect(res.status).to.equal(202);
    const rec = await waitFor(
      async () => {
        const r = await record(res.body.id);
        return r.status === 'read' ? r : null;
      },
      { what: 'status read' },
    );
    expect(rec.id).to.equal(res.body.id);
    expect(rec.history.map((h: { status: string }) => h.status)).to.deep.equal(['accepted', 'sent', 'delivered', 'read']);
    for (const h of rec.history) expect(Date.parse(h.at)).to.be.within(Date.now() - 60_000, Date.now());
    const entry = t.fleet.sim.accepted().find((e) => e.id === res.body.id)!;
    expect(rec.wamid).to.equal(entry.wamid);
    expect(rec).not.to.have.property('error');
  });

  it('finds the record by wamid when biz_opaque_callback_data names no record, and keeps the error of a failed status', async () => {
    const id = newId();
    // What the sender records after the Cloud API's 2xx.
    await t.fleet.ingress.status.record(id, 'accepted');
    await t.fleet.ingress.status.record(id, 'sent', { wamid: 'wamid.OUT2' });
    const r = await postWebhook(t.fleet, fixture('status-failed.json'));
    expect(r.status).to.equal(200);
    const rec = await waitFor(
      async () => {
        const got = await record(id);
        return got.status === 'failed' ? got : null;
      },
      { what: 'status failed' },
    );
    expect(rec.error).to.deep.include({ code: '131047', message: 'Re-engagement message' });
    expect(rec.error.details).to.match(/more than 24 hours/);
  });

  it('ignores a status that arrives after a later one (never moves backwards)', async () => {
    const id = newId();
    await t.fleet.ingress.status.record(id, 'sent', { wamid: 'wamid.LATE1' });
    expect((await postWebhook(t.fleet, statusBody('wamid.LATE1', 'read', id))).status).to.equal(200);
    await waitFor(async () => (await record(id)).status === 'read', { what: 'status read' });
    expect((await postWebhook(t.fleet, statusBody('wamid.LATE1', 'delivered', id))).status).to.equal(200);
    // Flush: a later event on the same user's shard has been handled once its own effect shows.
    const marker = newId();
    await t.fleet.ingress.status.record(marker, 'sent', { wamid: 'wamid.MARK1' });
    await postWebhook(t.fleet, statusBody('wamid.MARK1', 'delivered', marker));
    await waitFor(async () => (await record(marker)).status === 'delivered', { what: 'the marker status' });
    const rec = await record(id);
    expect(rec.status).to.equal('read');
    expect(rec.history.map((h: { status: string }) => h.status)).to.deep.equal(['sent', 'read']);
  });

  it('does not invent records for statuses of messages it never saw', async () => {
    const stranger = newId();
    await postWebhook(t.fleet, statusBody('wamid.STRANGER', 'delivered', stranger));
    const marker = newId();
    await t.fleet.ingress.status.record(marker, 'sent', { wamid: 'wamid.MARK2' });
    await postWebhook(t.fleet, statusBody('wamid.MARK2', 'delivered', marker));
    await waitFor(async () => (await record(marker)).status === 'delivered', { what: 'the marker status' });
    expect((await t.fleet.call('GET', `/v1/messages/${stranger}`)).status).to.equal(404);
  });
});
