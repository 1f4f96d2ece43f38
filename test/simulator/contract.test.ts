import { expect } from 'chai';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';
import { PHONE_NUMBER_ID, call, send, textMessage } from './client.js';

const VALID: Record<string, Record<string, unknown>> = {
  text: { text: { body: 'hi' } },
  template: { template: { name: 'order_update', language: { code: 'en_US' } } },
  image: { image: { link: 'https://example.com/a.png' } },
  audio: { audio: { id: 'media-1' } },
  document: { document: { link: 'https://example.com/a.pdf', filename: 'a.pdf' } },
  video: { video: { id: 'media-2' } },
  sticker: { sticker: { id: 'media-3' } },
  interactive: { interactive: { type: 'button', body: { text: 'Pick' }, action: { buttons: [{ type: 'reply', reply: { id: 'a', title: 'A' } }] } } },
  location: { location: { latitude: 52.52, longitude: '13.40' } },
  contacts: { contacts: [{ name: { formatted_name: 'Ann Lee', first_name: 'Ann' } }] },
  reaction: { reaction: { message_id: 'wamid.X', emoji: '👍' } },
};

const INVALID: Array<[string, Record<string, unknown>, RegExp]> = [
  ['no messaging_product', { to: '1555', text: { body: 'x' } }, /messaging_product is required/],
  ['wrong messaging_product', { messaging_product: 'sms', to: '1555', text: { body: 'x' } }, /messaging_product must be/],
  ['no to', { messaging_product: 'whatsapp', text: { body: 'x' } }, /parameter to is required/],
  ['unknown type', { messaging_product: 'whatsapp', to: '1555', type: 'fax', fax: {} }, /Param type must be one of/],
  ['text without body', { messaging_product: 'whatsapp', to: '1555', type: 'text', text: {} }, /text\['body'\] is required/],
  ['type object missing', { messaging_product: 'whatsapp', to: '1555', type: 'image' }, /parameter image is required/],
  ['media without link or id', { messaging_product: 'whatsapp', to: '1555', type: 'video', video: { caption: 'c' } }, /'link' or 'id'/],
  ['template without language', { messaging_product: 'whatsapp', to: '1555', type: 'template', template: { name: 'n' } }, /language/],
  ['interactive without action', { messaging_product: 'whatsapp', to: '1555', type: 'interactive', interactive: { type: 'list' } }, /action/],
  ['text that is a string', { messaging_product: 'whatsapp', to: '1555', type: 'text', text: 'hi' }, /must be a JSON object/],
  ['non-string callback data', { ...textMessage('1555'), biz_opaque_callback_data: 7 }, /biz_opaque_callback_data/],
];

describe('simulator: Cloud API contract', () => {
  let sim: Simulator;

  before(async () => {
    sim = await startSimulator({ accessToken: 'test-token', phoneNumberId: PHONE_NUMBER_ID });
  });
  afterEach(() => sim.reset());
  after(() => sim.close());

  for (const [type, object] of Object.entries(VALID)) {
    it(`accepts a valid ${type} message with Meta's success shape`, async () => {
      const res = await send(sim.url, { messaging_product: 'whatsapp', recipient_type: 'individual', to: '15551234567', type, ...object });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.messaging_product).to.equal('whatsapp');
      expect(res.body.contacts).to.deep.equal([{ input: '15551234567', wa_id: '15551234567' }]);
      expect(res.body.messages).to.have.length(1);
      expect(res.body.messages[0].id).to.match(/^wamid\.\S+$/);
      expect(sim.accepted()[0]).to.include({ to: '15551234567', type, status: 200, code: null, wamid: res.body.messages[0].id });
    });
  }

  it('treats a body without type as text', async () => {
    const res = await send(sim.url, { messaging_product: 'whatsapp', to: '1555', text: { body: 'hi' } });
    expect(res.status).to.equal(200);
    expect(sim.accepted()[0].type).to.equal('text');
  });

  for (const [name, body, message] of INVALID) {
    it(`rejects ${name} with 400 and code 100 in Meta's error shape`, async () => {
      const res = await send(sim.url, body);
      expect(res.status).to.equal(400);
      expect(res.body.error).to.include({ type: 'OAuthException', code: 100 });
      expect(res.body.error.message)
        .to.match(/^\(#100\) /)
        .and.to.match(message);
      expect(res.body.error.error_subcode).to.be.a('number');
      expect(res.body.error.fbtrace_id).to.be.a('string').that.is.not.empty;
      expect(sim.accepted()).to.be.empty;
      expect(sim.ledger()[0]).to.include({ status: 400, code: 100, wamid: null });
    });
  }

  it('rejects a body that is not JSON', async () => {
    const res = await send(sim.url, undefined, { raw: '{"messaging_product":' });
    expect(res.status).to.equal(400);
    expect(res.body.error.code).to.equal(100);
  });

  it('answers 401 with code 190 when the bearer token is missing or wrong, and records it', async () => {
    const missing = await send(sim.url, textMessage('1555'), { token: null });
    const wrong = await send(sim.url, textMessage('1555'), { token: 'nope' });
    for (const res of [missing, wrong]) {
      expect(res.status).to.equal(401);
      expect(res.body.error).to.include({ code: 190, type: 'OAuthException' });
    }
    expect(sim.ledger().map((e) => [e.status, e.code])).to.deep.equal([
      [401, 190],
      [401, 190],
    ]);
  });

  it('checks the token before the body', async () => {
    const res = await send(sim.url, { nonsense: true }, { token: 'nope' });
    expect(res.status).to.equal(401);
  });

  it('answers 400 code 100 subcode 33 for another phone number id', async () => {
    const res = await send(sim.url, textMessage('1555'), { phoneNumberId: '999' });
    expect(res.status).to.equal(400);
    expect(res.body.error).to.include({ code: 100, error_subcode: 33 });
    expect(res.body.error.message).to.contain("'999' does not exist");
  });

  it('accepts any Graph API version in the path and 404s other paths', async () => {
    expect((await send(sim.url, textMessage('1555'), { version: 'v19.0' })).status).to.equal(200);
    expect((await send(sim.url, textMessage('1555'), { version: 'v22' })).status).to.equal(200);
    const other = await call(sim.url, 'POST', `/v21.0/${PHONE_NUMBER_ID}/media`, {});
    expect(other.status).to.equal(404);
    expect(other.body.error.code).to.equal(100);
  });

  it('gives every accepted message a different wamid', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) ids.add((await send(sim.url, textMessage('1555', `E${i}`))).body.messages[0].id);
    expect(ids.size).to.equal(20);
  });

  it('keeps connections alive between answers', async () => {
    const res = await fetch(`${sim.url}/healthz`);
    expect(res.headers.get('connection')).to.equal('keep-alive');
    expect(await res.json()).to.deep.equal({ status: 'ok', down: false });
  });
});
