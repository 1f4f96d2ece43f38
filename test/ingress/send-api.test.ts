import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';

const CONTENT: Record<string, Record<string, unknown>> = {
  text: { type: 'text', text: { body: 'hello', preview_url: false } },
  template: {
    type: 'template',
    template: { name: 'order_update', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: '42' }] }] },
  },
  image: { type: 'image', image: { link: 'https://example.com/a.png', caption: 'a' } },
  document: { type: 'document', document: { id: '1234567890', filename: 'invoice.pdf' } },
  button: {
    type: 'interactive',
    interactive: {
      type: 'button',
      body: { text: 'Pick one' },
      action: {
        buttons: [
          { type: 'reply', reply: { id: 'yes', title: 'Yes' } },
          { type: 'reply', reply: { id: 'no', title: 'No' } },
        ],
      },
    },
  },
  list: {
    type: 'interactive',
    interactive: {
      type: 'list',
      body: { text: 'Menu' },
      action: { button: 'Open', sections: [{ title: 'Food', rows: [{ id: 'r1', title: 'Pizza', description: 'hot' }] }] },
    },
  },
  cta: {
    type: 'interactive',
    interactive: { type: 'cta_url', body: { text: 'See it' }, action: { name: 'cta_url', parameters: { display_text: 'Open', url: 'https://example.com' } } },
  },
};

describe('ingress: POST /v1/messages and GET /v1/messages/:id', function () {
  const t = useFleet('send-api');

  for (const [name, content] of Object.entries(CONTENT)) {
    it(`accepts a ${name} message and delivers its content unchanged`, async () => {
      const to = `1555000${String(Object.keys(CONTENT).indexOf(name)).padStart(4, '0')}`;
      const res = await t.fleet.send({ to, ...content });
      expect(res.status).to.equal(202);
      expect(res.body).to.include({ status: 'accepted', lane: 'send', priority: 'normal' });
      const entry = await waitFor(() => t.fleet.sim.accepted().find((e) => e.id === res.body.id), { what: `the ${name} message at the provider` });
      expect(entry.body).to.deep.include({ to, ...content });
    });
  }

  it('puts an urgent message on the urgent lane with its urgency', async () => {
    const res = await t.fleet.send({ to: '+15550009999', text: { body: 'OTP 123456' }, priority: 'urgent', urgency: 9 });
    expect(res.status).to.equal(202);
    expect(res.body).to.include({ lane: 'send.urgent', priority: 'urgent' });
    const entry = await waitFor(() => t.fleet.sim.accepted().find((e) => e.id === res.body.id), { what: 'the urgent message' });
    expect(entry.to).to.equal('15550009999');
  });

  it('answers 400 naming priority for any other priority', async () => {
    for (const priority of ['high', 'URGENT', '', 1, null, ['urgent']]) {
      const res = await t.fleet.send({ to: '15550001111', text: { body: 'x' }, priority });
      expect(res.status, JSON.stringify(priority)).to.equal(400);
      expect(res.body.field).to.equal('priority');
      expect(res.body.message).to.match(/^priority: /);
    }
  });

  it('answers 400 naming the field of a broken interactive message', async () => {
    const res = await t.fleet.send({
      to: '15550001111',
      type: 'interactive',
      interactive: {
        type: 'button',
        body: { text: 'x' },
        action: { buttons: [{ type: 'reply', reply: { id: 'a', title: 'A title far longer than twenty' } }] },
      },
    });
    expect(res.status).to.equal(400);
    expect(res.body.field).to.equal('interactive.action.buttons.0.reply.title');
  });

  it('returns the status record of a message: accepted, then sent (one hop: no dispatched step), with the times', async () => {
    const res = await t.fleet.send({ to: '15550002222', text: { body: 'where are you' } });
    const rec = await waitFor(
      async () => {
        const r = await t.fleet.call('GET', `/v1/messages/${res.body.id}`);
        return r.status === 200 && r.body.history.some((h: { status: string }) => h.status === 'sent') ? r.body : null;
      },
      { what: 'status sent' },
    );
    expect(rec.id).to.equal(res.body.id);
    expect(rec.history.slice(0, 2).map((h: { status: string }) => h.status)).to.deep.equal(['accepted', 'sent']);
    expect(Date.parse(rec.history[1].at)).to.be.at.least(Date.parse(rec.history[0].at));
  });

  it('answers 404 for an unknown id and 401 without the token', async () => {
    expect((await t.fleet.call('GET', '/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV')).status).to.equal(404);
    expect((await t.fleet.call('GET', '/v1/messages/not-an-id')).status).to.equal(404);
    expect((await t.fleet.call('GET', '/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV', { token: null })).status).to.equal(401);
    expect((await t.fleet.call('GET', '/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV', { token: 'wrong' })).status).to.equal(401);
  });
});
