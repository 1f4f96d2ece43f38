import { expect } from 'chai';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';
import { PHONE_NUMBER_ID, WebhookReceiver, call, send, textMessage } from './client.js';

const APP_SECRET = 'app-secret-for-tests';

function verified(raw: string, header: string | string[] | undefined): boolean {
  const expected = Buffer.from('sha256=' + createHmac('sha256', APP_SECRET).update(raw).digest('hex'));
  const given = Buffer.from(String(header));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface StatusValue {
  id: string;
  status: string;
  timestamp: string;
  recipient_id: string;
  biz_opaque_callback_data?: string;
  errors?: Array<{ code: number; title: string }>;
}

function statusOf(raw: string): { status: StatusValue; phoneNumberId: string; object: string; field: string } {
  const body = JSON.parse(raw);
  const change = body.entry[0].changes[0];
  return { status: change.value.statuses[0], phoneNumberId: change.value.metadata.phone_number_id, object: body.object, field: change.field };
}

describe('simulator: status webhooks', () => {
  let receiver: WebhookReceiver;
  let sim: Simulator;

  beforeEach(async () => {
    receiver = new WebhookReceiver();
    const url = await receiver.start();
    sim = await startSimulator({ webhook: { url, appSecret: APP_SECRET, statuses: ['sent', 'delivered', 'read'] } });
  });
  afterEach(async () => {
    await sim.close();
    await receiver.close();
  });

  it('posts sent, delivered and read for an accepted message, in order, signed with the app secret', async () => {
    const res = await send(sim.url, textMessage('15551234567', 'ENV-1'));
    const wamid = res.body.messages[0].id;
    await receiver.waitFor(3);

    const posts = receiver.received.map((r) => ({ ...statusOf(r.raw), signed: verified(r.raw, r.headers['x-hub-signature-256']) }));
    expect(posts.map((p) => p.status.status)).to.deep.equal(['sent', 'delivered', 'read']);
    for (const post of posts) {
      expect(post.signed, 'X-Hub-Signature-256 verifies against the raw body').to.equal(true);
      expect(post).to.include({ object: 'whatsapp_business_account', field: 'messages', phoneNumberId: PHONE_NUMBER_ID });
      expect(post.status).to.include({ id: wamid, recipient_id: '15551234567', biz_opaque_callback_data: 'ENV-1' });
      expect(post.status.timestamp).to.match(/^\d{10}$/);
    }
    expect(receiver.received[0].headers['content-type']).to.equal('application/json');
  });

  it('signs with the secret it was given, so a receiver with another secret rejects it', async () => {
    await send(sim.url, textMessage('1555', 'E'));
    await receiver.waitFor(1);
    const { raw, headers } = receiver.received[0];
    const other = 'sha256=' + createHmac('sha256', 'another-secret').update(raw).digest('hex');
    expect(headers['x-hub-signature-256']).to.not.equal(other);
    expect(verified(raw + ' ', headers['x-hub-signature-256']), 'a changed body no longer verifies').to.equal(false);
  });

  it('posts nothing for rejected sends', async () => {
    sim.setFaults({ rules: [{ to: 'blocked', times: 1, status: 400, code: 131026 }] });
    await send(sim.url, textMessage('blocked', 'E1'));
    await send(sim.url, textMessage('ok', 'E2'));
    await receiver.waitFor(3);
    expect(receiver.received.map((r) => statusOf(r.raw).status.biz_opaque_callback_data)).to.deep.equal(['E2', 'E2', 'E2']);
  });

  it('accepts an async rule with 200 and reports the failure as a failed status', async () => {
    sim.setFaults({ rules: [{ id: 'LATE', times: 1, status: 400, code: 131047, async: true }] });
    const res = await send(sim.url, textMessage('1555', 'LATE'));
    expect(res.status).to.equal(200);
    await receiver.waitFor(1);
    const { status } = statusOf(receiver.received[0].raw);
    expect(status).to.include({ status: 'failed', id: res.body.messages[0].id, biz_opaque_callback_data: 'LATE' });
    expect(status.errors?.[0]).to.include({ code: 131047, title: 'Re-engagement message' });
    expect(sim.accepted()[0]).to.include({ status: 200, code: 131047 });
  });

  it('counts webhook posts the receiver refuses, and stops that message there', async () => {
    receiver.status = 500;
    await send(sim.url, textMessage('1555', 'E'));
    await receiver.waitFor(1);
    const stats = async () => (await call(sim.url, 'GET', '/_sim/stats')).body.webhooks;
    // The failure is counted right after the receiver answers; poll the counter with a deadline.
    const deadline = Date.now() + 5000;
    while ((await stats()).failed === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(await stats()).to.include({ posted: 0, failed: 1 });
    expect(receiver.received).to.have.length(1);
  });
});
