import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { laneQueues, totalDepth } from './lanes.js';

describe('ingress: bad input is rejected with the field named, and nothing is published', function () {
  const t = useFleet('bad-input', { dispatchers: 0, senders: 0 });
  before(() =>
    t.defer('check that nothing was published', async () => {
      expect(await totalDepth(t.fleet, laneQueues(t.fleet))).to.equal(0);
    }),
  );

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    t.fleet.call('POST', '/v1/messages', { body, headers: { 'content-type': 'application/json', ...headers } });

  const CASES: Array<[string, unknown, string]> = [
    ['malformed JSON', '{"to": "15551234567", "text": {"body": "hi"}', '(body)'],
    ['a JSON array', '[]', '(body)'],
    ['an empty body', '', '(body)'],
    ['missing to', { text: { body: 'hi' } }, 'to'],
    ['missing text', { to: '15551234567', type: 'text' }, 'text'],
    ['missing template language', { to: '15551234567', type: 'template', template: { name: 'x' } }, 'template.language'],
    ['to as a number', { to: 15551234567, text: { body: 'hi' } }, 'to'],
    ['text.body as a number', { to: '15551234567', text: { body: 5 } }, 'text.body'],
    ['urgency as a string', { to: '15551234567', text: { body: 'hi' }, priority: 'urgent', urgency: '9' }, 'urgency'],
    ['an unknown top-level field', { to: '15551234567', text: { body: 'hi' }, colour: 'red' }, 'colour'],
    ['an unknown nested field', { to: '15551234567', text: { body: 'hi', bold: true } }, 'text.bold'],
    ['__proto__ smuggled in', '{"to":"15551234567","text":{"body":"hi"},"__proto__":{"type":"text"}}', '__proto__'],
    ['an unknown type', { to: '15551234567', type: 'carrier-pigeon' }, 'type'],
    ['a sendAt without offset', { to: '15551234567', text: { body: 'hi' }, sendAt: '2030-01-01T10:00:00' }, 'sendAt'],
    ['both link and id', { to: '15551234567', type: 'image', image: { link: 'https://x.y/z.png', id: '1' } }, 'image'],
  ];

  for (const [what, body, field] of CASES) {
    it(`answers 400 naming ${field} for ${what}`, async () => {
      const r = await post(body);
      expect(r.status).to.equal(400);
      expect(r.body.field).to.equal(field);
      expect(r.body.message.startsWith(`${field}: `), r.body.message).to.equal(true);
    });
  }

  it('answers 413 to a body over 1 MB', async () => {
    const r = await post({ to: '15551234567', text: { body: 'x'.repeat(1024 * 1024) } });
    expect(r.status).to.equal(413);
    expect(r.body.error).to.equal('payload_too_large');
  });

  it('answers 415 to a body that is not declared JSON', async () => {
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
      const r = await t.fleet.call('POST', '/v1/messages', { body: '{"to":"15551234567","text":{"body":"hi"}}', headers: { 'content-type': ct } });
      expect(r.status, ct).to.equal(415);
    }
    const none = await t.fleet.call('POST', '/v1/messages', { body: Buffer.from('{"to":"15551234567","text":{"body":"hi"}}') });
    expect(none.status).to.equal(415);
  });

  it('answers 401 with WWW-Authenticate to a missing or wrong token, before looking at the body', async () => {
    for (const token of [null, 'wrong', '']) {
      const r = await t.fleet.call('POST', '/v1/messages', { body: 'not even json', token, headers: { 'content-type': 'text/plain' } });
      expect(r.status).to.equal(401);
      expect(r.headers['www-authenticate']).to.equal('Bearer');
    }
  });

  it('answers 400 naming messages to a batch that is empty, too big or not a list', async () => {
    for (const body of [
      { messages: [] },
      { messages: Array.from({ length: 501 }, () => ({ to: '15551234567', text: { body: 'x' } })) },
      { messages: {} },
      {},
    ]) {
      const r = await t.fleet.call('POST', '/v1/messages/batch', { body });
      expect(r.status).to.equal(400);
      expect(r.body.field).to.equal('messages');
    }
  });
});
