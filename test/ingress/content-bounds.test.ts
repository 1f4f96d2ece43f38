/**
 * Part 7: content the Cloud API can never take is refused at the door with a 400 naming the field —
 * too deep, too large, template parameters and headers over Meta's limits — never a 503 (which
 * invites endless retries) nor a 500. Deep bodies are built as text: JSON.stringify itself would
 * overflow the test's stack.
 */
import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { postWebhook } from '../webhooks/meta.js';
import { totalDepth } from './lanes.js';

const DEPTH = 16;
const MAX_BYTES = 128 * 1024;
const TO = '"to":"15551234567"';
const nestedArrays = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
/** `{"a":{"a":…{}}}` with `levels` objects. */
const nestedObjects = (levels: number) => '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);

const template = (components: unknown[]) => ({ to: '15551234567', type: 'template', template: { name: 'order_update', language: { code: 'en' }, components } });
const bodyParam = (text: string, extra: Record<string, unknown> = {}) => ({ type: 'body', parameters: [{ type: 'text', text }], ...extra });
const flow = (action: string) => `{${TO},"type":"interactive","interactive":{"type":"flow","body":{"text":"x"},"action":${action}}}`;

describe('ingress: content bounds (depth, size, Cloud API limits)', function () {
  const t = useFleet('content-bounds', { dispatchers: 0, senders: 0 });

  const post = (body: unknown) => t.fleet.call('POST', '/v1/messages', { body, headers: { 'content-type': 'application/json' } });
  const expect400 = (r: { status: number; body: any }, field: string) => {
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).to.equal(400);
    expect(r.body.field).to.equal(field);
    expect(r.body.message.startsWith(`${field}: `), r.body.message).to.equal(true);
  };

  it('answers 400 within a second to 10,000 levels inside a template parameter, naming the path, and goes on', async () => {
    const raw = `{${TO},"type":"template","template":{"name":"n","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"x","v":${nestedArrays(10_000)}}]}]}}`;
    const started = Date.now();
    const r = await post(raw);
    expect(Date.now() - started).to.be.below(1000);
    const field = `template.components.0.parameters.0.v${'.0'.repeat(DEPTH - 5)}`; // v is level 6: the first container at level 17
    expect400(r, field);
    expect(r.body.message).to.equal(`${field}: nested deeper than ${DEPTH} levels`);
    expect((await post({ to: '15551234567', text: { body: 'still here' } })).status).to.equal(202);
  });

  it('answers 400 to 200,000 levels of arrays inside an interactive action, and to deep unknown fields', async () => {
    expect400(await post(flow(`{"data":${nestedArrays(200_000)}}`)), `interactive.action.data${'.0'.repeat(DEPTH - 2)}`);
    expect400(await post(`{${TO},"text":{"body":"x"},"extra":${nestedArrays(10_000)}}`), 'extra');
    expect400(await post(`{${TO},"text":{"body":${nestedObjects(10_000)}}}`), 'text.body');
  });

  it(`takes objects nested exactly ${DEPTH} levels deep and refuses ${DEPTH + 1}`, async () => {
    // interactive is level 1, action 2, parameters 3, flow_action_payload 4 and data, the outermost
    // of the nested objects, level 5: a flow's own data is where the deepest real content goes.
    const withData = (data: string) =>
      flow(`{"name":"flow","parameters":{"flow_message_version":"3","flow_id":"1","flow_cta":"Go","flow_action_payload":{"screen":"S","data":${data}}}}`);
    expect((await post(withData(nestedObjects(DEPTH - 4)))).status).to.equal(202);
    expect400(await post(withData(nestedObjects(DEPTH - 3))), `interactive.action.parameters.flow_action_payload.data${'.a'.repeat(DEPTH - 4)}`);
  });

  it('rejects only the batch item that nests too deep, naming it', async () => {
    const raw = `{"messages":[{${TO},"text":{"body":"ok"}},${flow(`{"data":${nestedArrays(10_000)}}`)}]}`;
    const r = await t.fleet.call('POST', '/v1/messages/batch', { body: raw, headers: { 'content-type': 'application/json' } });
    expect(r.status).to.equal(207);
    expect(r.body.results[0].status).to.equal(202);
    expect(r.body.results[1]).to.include({ status: 400, field: `messages.1.interactive.action.data${'.0'.repeat(DEPTH - 2)}` });
  });

  it(`takes content of exactly ${MAX_BYTES} bytes as JSON and refuses one byte more, naming the type`, async () => {
    const shell = template([bodyParam('x', { pad: '' })]);
    const content = { type: shell.type, template: shell.template };
    const fill = MAX_BYTES - Buffer.byteLength(JSON.stringify(content));
    const sized = (n: number) => template([bodyParam('x', { pad: '€'.repeat(Math.floor(n / 3)) + 'a'.repeat(n % 3) })]);
    expect((await post(sized(fill))).status).to.equal(202);
    const r = await post(sized(fill + 1));
    expect400(r, 'template');
    expect(r.body.message).to.contain(`at most ${MAX_BYTES} bytes as JSON (got ${MAX_BYTES + 1})`);
  });

  it('holds template text parameters to the Cloud API limits: header 60, body 1,024 (32,768 when alone)', async () => {
    const header = (text: string) => ({ type: 'header', parameters: [{ type: 'text', text }] });
    expect((await post(template([header('h'.repeat(60)), bodyParam('b'.repeat(1024))]))).status).to.equal(202);
    expect400(await post(template([header('h'.repeat(61))])), 'template.components.0.parameters.0.text');
    expect400(await post(template([header('h'), bodyParam('b'.repeat(1025))])), 'template.components.1.parameters.0.text');
    expect((await post(template([bodyParam('€'.repeat(32768))]))).status).to.equal(202);
    expect400(await post(template([bodyParam('b'.repeat(32769))])), 'template.components.0.parameters.0.text');
  });

  it('holds template buttons and carousels to their indexes and counts, and components to having a type', async () => {
    const card = (i: number) => ({ card_index: i, components: [] });
    expect400(await post(template([{ type: 'button', sub_type: 'quick_reply', index: 10, parameters: [] }])), 'template.components.0.index');
    expect400(await post(template([{ type: 'carousel', cards: Array.from({ length: 11 }, (_, i) => card(i)) }])), 'template.components.0.cards');
    expect400(await post(template([{ parameters: [] }])), 'template.components.0.type');
    expect((await post(template([{ type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: 'x' }] }]))).status).to.equal(202);
  });

  it('holds an interactive text header to 60 characters', async () => {
    const buttons = { buttons: [{ type: 'reply', reply: { id: 'a', title: 'A' } }] };
    const msg = (text: string) => ({
      to: '15551234567',
      type: 'interactive',
      interactive: { type: 'button', header: { type: 'text', text }, body: { text: 'x' }, action: buttons },
    });
    expect((await post(msg('h'.repeat(60)))).status).to.equal(202);
    expect400(await post(msg('h'.repeat(61))), 'interactive.header.text');
  });

  it('webhooks: skips (200, not 503) a message nested too deep to serialize, publishing the rest', async () => {
    const before = await totalDepth(t.fleet);
    const msg = (id: string, extra: string) => `{"from":"16505551234","id":"${id}","timestamp":"1749416383","type":"text","text":{"body":"hi"}${extra}}`;
    const messages = `[${msg('wamid.DEEP', `,"x":${nestedArrays(10_000)}`)},${msg('wamid.FINE', '')}]`;
    const body = `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","messages":${messages}}}]}]}`;
    const r = await postWebhook(t.fleet, body);
    expect(r.status, r.text).to.equal(200);
    expect(r.body).to.deep.equal({ received: 1, published: 1, duplicates: 0, skipped: 1 });
    expect(await totalDepth(t.fleet)).to.equal(before + 1);
  });
});
