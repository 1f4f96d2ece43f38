/**
 * Every Cloud API message type through the send API: each valid form is accepted and reaches the
 * provider unchanged; each typical invalid form is a 400 naming its field; multi-byte text and Meta's
 * length limits at and one past the limit. Then the simulator's side: the same types taken with
 * Meta's validation (131008/131009 for bad values inside a type) and recorded as received.
 */
import { expect } from 'chai';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';
import { PHONE_NUMBER_ID, send } from '../simulator/client.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { contentOf, delivered } from './delivered.js';

type Obj = Record<string, unknown>;
const WAMID = 'wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQUZCMTY0RDQ2NjM4RTRBNjIyNgA=';
const LINK = 'https://example.com/media/file';
const reply = (id: string, title = id) => ({ type: 'reply', reply: { id, title } });
const buttons = (extra: Obj = {}, action: Obj = { buttons: [reply('a')] }): Obj => ({
  type: 'interactive',
  interactive: { type: 'button', body: { text: 'Pick' }, action, ...extra },
});
const list = (sections: unknown[], extra: Obj = {}): Obj => ({
  type: 'interactive',
  interactive: { type: 'list', body: { text: 'Menu' }, action: { button: 'Open', sections }, ...extra },
});
const row = (id: string, extra: Obj = {}) => ({ id, title: id, ...extra });
const flowParams = (p: Obj = {}): Obj => ({ flow_message_version: '3', flow_id: '1197715005513101', flow_cta: 'Book', ...p });
const flow = (parameters: Obj, action: Obj = { name: 'flow', parameters }): Obj => ({
  type: 'interactive',
  interactive: { type: 'flow', body: { text: 'Book a slot' }, action },
});
const contact = (c: Obj = {}) => ({ name: { formatted_name: 'Ann Lee', first_name: 'Ann' }, ...c });

/** Valid forms of every type beyond docs/API.md's examples. */
const VALID: Array<[string, Obj]> = [
  ['text without a type', { text: { body: 'hi' } }],
  ['an image by id with a caption', { type: 'image', image: { id: '1234567890', caption: 'Receipt' } }],
  ['an audio by link', { type: 'audio', audio: { link: `${LINK}.ogg` } }],
  ['a video by link', { type: 'video', video: { link: `${LINK}.mp4` } }],
  ['a document by id, no file name', { type: 'document', document: { id: '987654321' } }],
  ['a sticker by link', { type: 'sticker', sticker: { link: `${LINK}.webp` } }],
  ['a location with numeric strings', { type: 'location', location: { latitude: '-33.8688', longitude: '151.2093' } }],
  ['a location at the edges', { type: 'location', location: { latitude: 90, longitude: -180, name: 'Pole' } }],
  ['the least contact Meta takes', { type: 'contacts', contacts: [contact()] }],
  [
    'two contacts with a birthday',
    {
      type: 'contacts',
      contacts: [contact({ birthday: '1990-02-28' }), { name: { formatted_name: 'Bo', last_name: 'Bo' }, phones: [{ phone: '+1 555 0100' }] }],
    },
  ],
  ['a reaction with a skin tone', { type: 'reaction', reaction: { message_id: WAMID, emoji: '👍🏽' } }],
  ['a reaction with a flag', { type: 'reaction', reaction: { message_id: WAMID, emoji: '🇩🇪' } }],
  ['a reaction with a joined family', { type: 'reaction', reaction: { message_id: WAMID, emoji: '👨‍👩‍👧' } }],
  ['a reaction removed', { type: 'reaction', reaction: { message_id: WAMID, emoji: '' } }],
  ['a template with name and language only', { type: 'template', template: { name: 'hello_world', language: { code: 'en_US' } } }],
  [
    'buttons with a text header and footer',
    buttons({ header: { type: 'text', text: 'Order 42' }, footer: { text: 'Reply below' } }, { buttons: [reply('a'), reply('b'), reply('c')] }),
  ],
  ['buttons with a document header by id', buttons({ header: { type: 'document', document: { id: '55' } } })],
  [
    'a list of two titled sections',
    list([
      { title: 'A', rows: [row('a1'), row('a2', { description: 'second' })] },
      { title: 'B', rows: [row('b1')] },
    ]),
  ],
  ['a flow by name, data_exchange', flow({ flow_message_version: '3', flow_name: 'booking', flow_cta: 'Book', flow_action: 'data_exchange', mode: 'draft' })],
  ['a flow navigating without data', flow(flowParams({ flow_action: 'navigate', flow_action_payload: { screen: 'START' } }))],
  [
    'a product message, passed as given',
    { type: 'interactive', interactive: { type: 'product', body: { text: 'This one' }, action: { catalog_id: '1', product_retailer_id: 'sku-1' } } },
  ],
  ['a reply to a message (context on an image)', { type: 'image', image: { link: `${LINK}.png` }, context: { message_id: WAMID } }],
];

/** Typical invalid forms, and the field the 400 must name. */
const INVALID: Array<[string, Obj, string]> = [
  ['an empty text body', { text: { body: '' } }, 'text.body'],
  ['preview_url as a string', { text: { body: 'x', preview_url: 'yes' } }, 'text.preview_url'],
  ['media with neither link nor id', { type: 'image', image: { caption: 'c' } }, 'image'],
  ['an ftp link', { type: 'video', video: { link: 'ftp://example.com/a.mp4' } }, 'video.link'],
  ['a caption on audio', { type: 'audio', audio: { id: '1', caption: 'c' } }, 'audio.caption'],
  ['a caption on a sticker', { type: 'sticker', sticker: { id: '1', caption: 'c' } }, 'sticker.caption'],
  ['a file name on an image', { type: 'image', image: { id: '1', filename: 'a.png' } }, 'image.filename'],
  ['an empty file name', { type: 'document', document: { id: '1', filename: '' } }, 'document.filename'],
  ['a location without latitude', { type: 'location', location: { longitude: 13.4 } }, 'location.latitude'],
  ['a latitude of 91', { type: 'location', location: { latitude: 91, longitude: 13.4 } }, 'location.latitude'],
  ['a longitude in words', { type: 'location', location: { latitude: 52.5, longitude: 'east' } }, 'location.longitude'],
  ['an unknown location field', { type: 'location', location: { latitude: 1, longitude: 2, zoom: 3 } }, 'location.zoom'],
  ['a location type without location', { type: 'location' }, 'location'],
  ['no contacts', { type: 'contacts', contacts: [] }, 'contacts'],
  ['contacts as an object', { type: 'contacts', contacts: contact() }, 'contacts'],
  ['a contact without a name', { type: 'contacts', contacts: [{ phones: [{ phone: '1' }] }] }, 'contacts.0.name'],
  ['a contact without formatted_name', { type: 'contacts', contacts: [{ name: { first_name: 'Ann' } }] }, 'contacts.0.name.formatted_name'],
  ['a contact with formatted_name only', { type: 'contacts', contacts: [{ name: { formatted_name: 'Ann' } }] }, 'contacts.0.name'],
  ['a birthday with slashes', { type: 'contacts', contacts: [contact({ birthday: '1990/02/28' })] }, 'contacts.0.birthday'],
  ['an email without its address', { type: 'contacts', contacts: [contact(), contact({ emails: [{ type: 'WORK' }] })] }, 'contacts.1.emails.0.email'],
  ['a reaction without message_id', { type: 'reaction', reaction: { emoji: '👍' } }, 'reaction.message_id'],
  ['a reaction without emoji', { type: 'reaction', reaction: { message_id: WAMID } }, 'reaction.emoji'],
  ['a reaction in words', { type: 'reaction', reaction: { message_id: WAMID, emoji: 'ok' } }, 'reaction.emoji'],
  ['a reaction of two emoji', { type: 'reaction', reaction: { message_id: WAMID, emoji: '👍👍' } }, 'reaction.emoji'],
  ['an empty context', { text: { body: 'x' }, context: {} }, 'context.message_id'],
  ['a context that is a string', { text: { body: 'x' }, context: WAMID }, 'context'],
  ['a context with a quote', { text: { body: 'x' }, context: { message_id: WAMID, quote: 'x' } }, 'context.quote'],
  ['a flow without its version', flow({ flow_id: '1', flow_cta: 'Go' }), 'interactive.action.parameters.flow_message_version'],
  ['a flow by id and by name', flow(flowParams({ flow_name: 'n' })), 'interactive.action.parameters.flow_id'],
  ['a flow by neither id nor name', flow({ flow_message_version: '3', flow_cta: 'Go' }), 'interactive.action.parameters.flow_id'],
  [
    'a data_exchange flow with a payload',
    flow(flowParams({ flow_action: 'data_exchange', flow_action_payload: { screen: 'S' } })),
    'interactive.action.parameters.flow_action_payload',
  ],
  ['a navigate flow without a payload', flow(flowParams({ flow_action: 'navigate' })), 'interactive.action.parameters.flow_action_payload'],
  ['a flow with empty data', flow(flowParams({ flow_action_payload: { screen: 'S', data: {} } })), 'interactive.action.parameters.flow_action_payload.data'],
  ['a flow action by another name', flow({}, { name: 'flows', parameters: flowParams() }), 'interactive.action.name'],
  ['a list with an image header', list([{ rows: [row('a')] }], { header: { type: 'image', image: { link: `${LINK}.png` } } }), 'interactive.header.type'],
  ['a media header with neither link nor id', buttons({ header: { type: 'video', video: {} } }), 'interactive.header.video'],
  [
    'eleven rows in all',
    list([
      { title: 'A', rows: Array.from({ length: 6 }, (_, i) => row(`a${i}`)) },
      { title: 'B', rows: Array.from({ length: 5 }, (_, i) => row(`b${i}`)) },
    ]),
    'interactive.action.sections',
  ],
  ['four buttons', buttons({}, { buttons: [reply('a'), reply('b'), reply('c'), reply('d')] }), 'interactive.action.buttons'],
  ['a read receipt with another status', { status: 'delivered', message_id: WAMID }, 'status'],
  ['a read receipt without message_id', { status: 'read' }, 'message_id'],
  ['a read receipt with a type', { type: 'text', text: { body: 'x' }, status: 'read', message_id: WAMID }, 'status'],
  ['a read receipt with another indicator', { status: 'read', message_id: WAMID, typing_indicator: { type: 'audio' } }, 'typing_indicator.type'],
  ['a read receipt with a text', { status: 'read', message_id: WAMID, text: { body: 'x' } }, 'text'],
];

/** A field with a length limit: the request with a value of `n` characters of `char`. */
const LIMITS: Array<[string, number, (s: string) => Obj]> = [
  ['text.body', 4096, (s) => ({ text: { body: s } })],
  ['image.caption', 1024, (s) => ({ type: 'image', image: { link: `${LINK}.png`, caption: s } })],
  ['video.caption', 1024, (s) => ({ type: 'video', video: { id: '1', caption: s } })],
  ['document.caption', 1024, (s) => ({ type: 'document', document: { id: '1', caption: s } })],
  ['document.filename', 240, (s) => ({ type: 'document', document: { id: '1', filename: s } })],
  ['interactive.body.text', 1024, (s) => buttons({ body: { text: s } })],
  ['interactive.footer.text', 60, (s) => buttons({ footer: { text: s } })],
  ['interactive.header.text', 60, (s) => buttons({ header: { type: 'text', text: s } })],
  ['interactive.action.buttons.0.reply.title', 20, (s) => buttons({}, { buttons: [reply('a', s)] })],
  ['interactive.action.buttons.0.reply.id', 256, (s) => buttons({}, { buttons: [reply(s, 'A')] })],
  [
    'interactive.action.button',
    20,
    (s) => ({ type: 'interactive', interactive: { type: 'list', body: { text: 'x' }, action: { button: s, sections: [{ rows: [row('a')] }] } } }),
  ],
  ['interactive.action.sections.0.title', 24, (s) => list([{ title: s, rows: [row('a')] }])],
  ['interactive.action.sections.0.rows.0.title', 24, (s) => list([{ rows: [{ id: 'a', title: s }] }])],
  ['interactive.action.sections.0.rows.0.description', 72, (s) => list([{ rows: [row('a', { description: s })] }])],
  [
    'interactive.action.parameters.display_text',
    20,
    (s) => ({
      type: 'interactive',
      interactive: { type: 'cta_url', body: { text: 'x' }, action: { name: 'cta_url', parameters: { display_text: s, url: LINK } } },
    }),
  ],
  ['interactive.action.parameters.flow_cta', 20, (s) => flow(flowParams({ flow_cta: s }))],
];

describe('ingress: every message type, validated and delivered unchanged', function () {
  let iso: Isolation;
  let fleet: Fleet;
  let n = 0;
  /** A new recipient per send: no test waits behind another's messages in a user's lane. */
  const post = (body: Obj) => fleet.send({ to: `1555300${String(n++).padStart(4, '0')}`, ...body });

  before(async () => {
    iso = await isolate('message-types');
    fleet = await startFleet(iso);
  });
  after(async () => {
    await fleet?.close();
    await iso?.cleanup();
  });

  for (const [what, body] of VALID) {
    it(`accepts ${what} and the provider receives it unchanged`, async () => {
      const res = await post(body);
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      expect(await delivered(fleet, res.body.id, what)).to.deep.equal(contentOf(body));
    });
  }

  for (const [what, body, field] of INVALID) {
    it(`refuses ${what}, naming ${field}`, async () => {
      const res = await post(body);
      expect(res.status, JSON.stringify(res.body)).to.equal(400);
      expect(res.body.field, res.body.message).to.equal(field);
      expect(res.body.message.startsWith(`${field}: `), res.body.message).to.equal(true);
    });
  }

  it('names the item and field of a bad message in a batch of every type', async () => {
    const messages = [...VALID.map(([, b]) => b), INVALID[0][1]].map((b, i) => ({ to: `1555310${String(i).padStart(4, '0')}`, ...b }));
    const res = await fleet.call('POST', '/v1/messages/batch', { body: { messages } });
    expect(res.status).to.equal(207);
    expect(res.body).to.include({ accepted: VALID.length, rejected: 1 });
    expect(res.body.results[VALID.length]).to.include({ status: 400, field: `messages.${VALID.length}.${INVALID[0][2]}` });
  });

  for (const [field, max, build] of LIMITS) {
    it(`takes ${field} of ${max} three-byte characters and refuses ${max + 1}`, async () => {
      const at = await post(build('€'.repeat(max)));
      expect(at.status, JSON.stringify(at.body)).to.equal(202);
      const over = await post(build('€'.repeat(max + 1)));
      expect(over.status).to.equal(400);
      expect(over.body.field).to.equal(field);
    });
  }

  it('counts characters as code points: a caption of 1,024 emoji outside the BMP is taken, 1,025 refused', async () => {
    const image = (caption: string) => ({ type: 'image', image: { id: '1', caption } });
    const at = await post(image('😀'.repeat(1024)));
    expect(at.status, JSON.stringify(at.body)).to.equal(202);
    expect(await delivered(fleet, at.body.id, 'the 1,024-emoji caption')).to.deep.equal(contentOf(image('😀'.repeat(1024))));
    expect((await post(image('😀'.repeat(1025)))).body.field).to.equal('image.caption');
  });

  it('delivers multi-byte captions, names and addresses unchanged, combining marks and emoji included', async () => {
    const bodies: Obj[] = [
      { type: 'image', image: { link: `${LINK}.png`, caption: '日本語のキャプション 🎉 e\u0301' } },
      { type: 'document', document: { id: '1', filename: 'счёт-№42.pdf', caption: 'فاتورة' } },
      { type: 'location', location: { latitude: 35.6895, longitude: 139.6917, name: '東京駅', address: '東京都千代田区丸の内一丁目' } },
      { type: 'contacts', contacts: [contact({ name: { formatted_name: 'Zoë 🦊 Müller', first_name: 'Zoë' }, org: { company: 'Ñandú S.A.' } })] },
      { text: { body: '𝒳'.repeat(2048) } },
    ];
    for (const body of bodies) {
      const res = await post(body);
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      expect(await delivered(fleet, res.body.id, 'a multi-byte message')).to.deep.equal(contentOf(body));
    }
  });
});

describe('simulator: every message type with Meta validation', function () {
  let sim: Simulator;
  const meta = (body: Obj): Obj => ({ messaging_product: 'whatsapp', recipient_type: 'individual', to: '15551234567', type: 'text', ...body });

  before(async () => {
    sim = await startSimulator({ accessToken: 'test-token', phoneNumberId: PHONE_NUMBER_ID });
  });
  afterEach(() => sim.reset());
  after(() => sim.close());

  it('accepts every valid form and records its body as received', async () => {
    for (const [what, body] of VALID) {
      const res = await send(sim.url, meta(body));
      expect(res.status, `${what}: ${JSON.stringify(res.body)}`).to.equal(200);
      expect(sim.accepted().at(-1)!.body).to.deep.equal(meta(body));
    }
  });

  it('takes a read receipt: {"success": true}, recorded as type read', async () => {
    const body = { messaging_product: 'whatsapp', status: 'read', message_id: WAMID, typing_indicator: { type: 'text' } };
    const res = await send(sim.url, body);
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ success: true });
    expect(sim.accepted()[0]).to.include({ type: 'read', status: 200 });
    expect(sim.accepted()[0].body).to.deep.equal(body);
  });

  it("refuses a read receipt that carries a message's fields, with code 100", async () => {
    const res = await send(sim.url, { messaging_product: 'whatsapp', to: '15551234567', status: 'read', message_id: WAMID });
    expect(res.status).to.equal(400);
    expect(res.body.error.code).to.equal(100);
    expect(res.body.error.message).to.match(/Unexpected key "to"/);
  });

  const REFUSED: Array<[string, Obj, number, RegExp]> = [
    ['a button title of 21 characters', buttons({}, { buttons: [reply('a', 'x'.repeat(21))] }), 131009, /\['title'\] length invalid/],
    ['repeated button ids', buttons({}, { buttons: [reply('a'), reply('a')] }), 131009, /must be unique/],
    ['eleven list rows', list([{ rows: Array.from({ length: 11 }, (_, i) => row(`r${i}`)) }]), 131009, /sections/],
    ['a contact without formatted_name', { type: 'contacts', contacts: [{ name: { first_name: 'Ann' } }] }, 131008, /formatted_name/],
    ['a contact with formatted_name only', { type: 'contacts', contacts: [{ name: { formatted_name: 'Ann' } }] }, 131009, /needs at least one of/],
    ['a reaction in words', { type: 'reaction', reaction: { message_id: WAMID, emoji: 'ok' } }, 131009, /emoji/],
    ['a caption on audio', { type: 'audio', audio: { id: '1', caption: 'c' } }, 131009, /caption/],
    ['a caption of 1,025 characters', { type: 'image', image: { id: '1', caption: 'c'.repeat(1025) } }, 131009, /caption/],
    ['a latitude of 91', { type: 'location', location: { latitude: 91, longitude: 0 } }, 131009, /latitude/],
    ['a flow of another version', flow(flowParams({ flow_message_version: '2' })), 131009, /flow_message_version/],
    ['buttons without a body', { type: 'interactive', interactive: { type: 'button', action: { buttons: [reply('a')] } } }, 131008, /\['body'\]/],
  ];
  for (const [what, body, code, details] of REFUSED) {
    it(`refuses ${what} with ${code} in Meta's error shape, the field in the details`, async () => {
      const res = await send(sim.url, meta(body));
      expect(res.status).to.equal(400);
      expect(res.body.error).to.include({ code, type: 'OAuthException' });
      expect(res.body.error.message).to.match(new RegExp(`^\\(#${code}\\) `));
      expect(res.body.error.error_data.details).to.match(details);
      expect(sim.ledger()[0]).to.include({ status: 400, code });
    });
  }
});
