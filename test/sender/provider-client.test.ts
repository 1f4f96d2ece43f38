import { expect } from 'chai';
import { newEnvelope, type Envelope } from '../../shared/domain/envelope.js';
import { PermanentError, TransientError } from '../../shared/failures/errors.js';
import { isProviderThrottle } from '../../services/sender/limiter.js';
import { ProviderClient } from '../../services/sender/provider-client.js';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';

const PAYLOADS: Array<Record<string, unknown>> = [
  { type: 'text', text: { body: 'hello', preview_url: false } },
  {
    type: 'template',
    template: { name: 'order_update', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: '42' }] }] },
  },
  { type: 'image', image: { link: 'https://example.com/a.png', caption: 'a' } },
  { type: 'document', document: { id: '1234567890', filename: 'invoice.pdf' } },
  { type: 'video', video: { link: 'https://example.com/v.mp4' } },
  { type: 'audio', audio: { id: 'media-1' } },
  { type: 'sticker', sticker: { id: 'media-2' } },
  {
    type: 'interactive',
    interactive: { type: 'button', body: { text: 'Pick one' }, action: { buttons: [{ type: 'reply', reply: { id: 'y', title: 'Yes' } }] } },
  },
  {
    type: 'interactive',
    interactive: { type: 'list', body: { text: 'Menu' }, action: { button: 'Open', sections: [{ title: 'S', rows: [{ id: 'r1', title: 'R1' }] }] } },
  },
];

describe('sender: Cloud API client', function () {
  let sim: Simulator;
  let client: ProviderClient;

  before(async () => {
    sim = await startSimulator({ accessToken: 'tok', phoneNumberId: '123456' });
    client = new ProviderClient({ baseUrl: sim.url, graphApiVersion: 'v21.0', phoneNumberId: '123456', accessToken: 'tok', timeoutMs: 2000 });
  });
  afterEach(() => sim.reset());
  after(async () => {
    await client?.close();
    await sim?.close();
  });

  const envelope = (payload: Record<string, unknown>, user = '15551230000'): Envelope => newEnvelope({ kind: 'outbound', user, priority: 'normal', payload });

  it('sends text, template, media and interactive messages with the body of the provider contract', async () => {
    for (const payload of PAYLOADS) {
      const env = envelope(payload);
      const res = await client.send(env);
      expect(res.status, JSON.stringify(payload)).to.equal(200);
      expect(res.wamid).to.match(/^wamid\./);
      const [entry] = sim.ledger({ to: env.user }).slice(-1);
      expect(entry.body).to.deep.equal({
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to: env.user,
        ...payload,
        biz_opaque_callback_data: env.id,
      });
    }
  });

  it('lets only the envelope choose the recipient and the callback id', async () => {
    const env = envelope({ type: 'text', text: { body: 'hi' }, to: '19990000000', biz_opaque_callback_data: 'x', messaging_product: 'other' });
    await client.send(env);
    const [entry] = sim.accepted();
    expect(entry.to).to.equal(env.user);
    expect(entry.id).to.equal(env.id);
  });

  it("classifies the provider's answers: throttles, transient and permanent errors", async () => {
    const cases: Array<[number, string, boolean, typeof TransientError | typeof PermanentError]> = [
      [130429, '130429', true, TransientError],
      [131056, '131056', true, TransientError],
      [131000, '131000', false, TransientError],
      [131026, '131026', false, PermanentError],
    ];
    for (const [code, expected, throttle, cls] of cases) {
      sim.setFaults({ rules: [{ code, times: 1, status: code === 131026 ? 400 : code === 131000 ? 500 : 429 }] });
      const err = await client.send(envelope({ type: 'text', text: { body: 'x' } })).then(
        () => expect.fail(`code ${code} should fail`),
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(cls);
      expect((err as TransientError).code).to.equal(expected);
      expect(isProviderThrottle(err), `code ${code}`).to.equal(throttle);
    }
  });
});
