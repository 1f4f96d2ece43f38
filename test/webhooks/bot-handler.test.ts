import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { fixture, postWebhook } from './meta.js';

interface Seen {
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A bot: answers by the text it gets ("fail-503-once", "fail-400", anything else: two replies). */
async function startBot(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const failedOnce = new Set<string>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw);
      seen.push({ headers: req.headers, body });
      const text: string = body.message?.text?.body ?? '';
      if (text === 'fail-503-once' && !failedOnce.has(body.id)) {
        failedOnce.add(body.id);
        return res.writeHead(503).end();
      }
      if (text === 'fail-400') return res.writeHead(400).end('{"error":"no"}');
      if (text === 'every-type' || text === 'bad-reply') {
        const replies =
          text === 'bad-reply'
            ? [
                { type: 'text', text: { body: 'fine' } },
                { type: 'location', location: { latitude: 200, longitude: 13.4 } },
              ]
            : [
                { status: 'read', message_id: body.wamid },
                { type: 'reaction', reaction: { message_id: body.wamid, emoji: '👍' } },
                { type: 'location', location: { latitude: 52.52, longitude: 13.405, name: 'Office' } },
                { type: 'text', text: { body: 'quoted' }, context: { message_id: body.wamid } },
              ];
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ replies }));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          replies: [
            { type: 'text', text: { body: `Hi ${body.contact?.name ?? 'there'}, you said: ${text}` } },
            {
              type: 'interactive',
              interactive: { type: 'button', body: { text: 'More?' }, action: { buttons: [{ type: 'reply', reply: { id: 'more', title: 'More' } }] } },
            },
          ],
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bot`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const inbound = (wamid: string, text: string) =>
  fixture('inbound-text.json')
    .toString('utf8')
    .replace(/wamid\.[A-Za-z0-9=]+/, wamid)
    .replace('Does it come in another color?', text);

describe('dispatcher: the HTTP bot handler contract (docs/BOT_HANDLER.md)', function () {
  let bot: Awaited<ReturnType<typeof startBot>>;

  const t = useFleet('bot', async () => {
    bot = await startBot();
    t.defer('close the bot', () => bot.close());
    return { overrides: { botHandlerUrl: bot.url, botHandlerToken: 'bot-token', botHandlerTimeoutMs: 2000 } };
  });

  const repliesTo = (user: string) => t.fleet.sim.accepted().filter((e) => e.to === user);

  it('posts the event with its contact and metadata, and sends the replies in order', async () => {
    expect((await postWebhook(t.fleet, inbound('wamid.BOT1', 'red?'))).status).to.equal(200);
    const got = await waitFor(() => (repliesTo('16505551234').length >= 2 ? repliesTo('16505551234') : null), { what: 'two replies' });
    expect(got.map((e) => e.type)).to.deep.equal(['text', 'interactive']);
    expect((got[0].body as any).text.body).to.equal('Hi Sheena Nelson, you said: red?');
    const call = bot.seen.find((s) => s.body.wamid === 'wamid.BOT1')!;
    expect(call.headers.authorization).to.equal('Bearer bot-token');
    expect(call.headers['x-postmaster-message-id']).to.equal(call.body.id);
    expect(call.body).to.include({ user: '16505551234', wamid: 'wamid.BOT1', attempt: 0 });
    expect(call.body.contact).to.deep.equal({ wa_id: '16505551234', name: 'Sheena Nelson' });
    expect(call.body.metadata).to.include({ phone_number_id: '106540352242922' });
    expect(call.body.message).to.deep.include({ from: '16505551234', id: 'wamid.BOT1', type: 'text' });
    expect(call.body.message).not.to.have.property('contact');
    const rec = (await t.fleet.call('GET', `/v1/messages/${call.body.id}`)).body;
    expect(rec.history.map((h: { status: string }) => h.status)).to.deep.equal(['accepted', 'dispatched']);
  });

  it('retries after a 5xx and calls again with the same id', async () => {
    const before = repliesTo('16505551234').length;
    await postWebhook(t.fleet, inbound('wamid.BOT2', 'fail-503-once'));
    await waitFor(() => repliesTo('16505551234').length >= before + 2, { what: 'the replies after the retry' });
    const calls = bot.seen.filter((s) => s.body.wamid === 'wamid.BOT2');
    expect(calls).to.have.length(2);
    expect(calls[1].body.id).to.equal(calls[0].body.id);
    expect(calls[1].body.attempt).to.equal(1);
  });

  it('dead-letters the event at once on a 4xx, sending nothing', async () => {
    const before = repliesTo('16505551234').length;
    const dlq = t.fleet.ingress.rt.topology.names.dlq;
    const depth0 = (await queueDepths(t.fleet.cfg.amqpUrl, [dlq]))[dlq];
    await postWebhook(t.fleet, inbound('wamid.BOT3', 'fail-400'));
    await waitFor(async () => (await queueDepths(t.fleet.cfg.amqpUrl, [dlq]))[dlq] === depth0 + 1, { what: 'the event in the DLQ' });
    expect(bot.seen.filter((s) => s.body.wamid === 'wamid.BOT3')).to.have.length(1);
    expect(repliesTo('16505551234').length).to.equal(before);
  });

  it('sends replies of any message type the send API takes: a read receipt, a reaction, a location, a quoted reply', async () => {
    const user = '16505551234';
    const before = repliesTo(user).length;
    await postWebhook(t.fleet, inbound('wamid.BOT4', 'every-type'));
    // A read receipt names the inbound message, not the user: it is found by its message_id.
    const read = await waitFor(() => t.fleet.sim.accepted().find((e) => e.type === 'read' && (e.body as any).message_id === 'wamid.BOT4'), {
      what: 'the read receipt',
    });
    expect(read.body).to.deep.include({ messaging_product: 'whatsapp', status: 'read', message_id: 'wamid.BOT4' });
    const got = await waitFor(() => (repliesTo(user).length >= before + 3 ? repliesTo(user).slice(before) : null), { what: 'three replies' });
    expect(got.map((e) => e.type)).to.deep.equal(['reaction', 'location', 'text']);
    expect((got[0].body as any).reaction).to.deep.equal({ message_id: 'wamid.BOT4', emoji: '👍' });
    expect((got[1].body as any).location).to.deep.equal({ latitude: 52.52, longitude: 13.405, name: 'Office' });
    expect((got[2].body as any).context).to.deep.equal({ message_id: 'wamid.BOT4' });
  });

  it('dead-letters an answer with one invalid reply as poison, naming the field, and sends none of its replies', async () => {
    const before = repliesTo('16505551234').length;
    const dlq = t.fleet.ingress.rt.topology.names.dlq;
    const depth0 = (await queueDepths(t.fleet.cfg.amqpUrl, [dlq]))[dlq];
    await postWebhook(t.fleet, inbound('wamid.BOT5', 'bad-reply'));
    await waitFor(async () => (await queueDepths(t.fleet.cfg.amqpUrl, [dlq]))[dlq] === depth0 + 1, { what: 'the event in the DLQ' });
    const call = bot.seen.find((s) => s.body.wamid === 'wamid.BOT5')!;
    const rec = (await t.fleet.call('GET', `/v1/messages/${call.body.id}`)).body;
    expect(rec.error).to.include({ class: 'poison', code: 'handler-invalid-answer' });
    expect(rec.error.message).to.match(/replies\.1\.location\.latitude/);
    expect(repliesTo('16505551234').length).to.equal(before);
  });
});
