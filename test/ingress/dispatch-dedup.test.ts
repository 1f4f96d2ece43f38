import { expect } from 'chai';
import { DispatchDedup } from '../../services/dispatcher/dedup.js';
import { envelopeFor } from '../../services/ingress/accept.js';
import { parseSendRequest } from '../../services/ingress/request.js';
import { publishToStage } from '../../shared/publish.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

describe('dispatcher: idempotency keys, the second line', function () {
  let iso: Isolation;
  let fleet: Fleet;

  before(async () => {
    iso = await isolate('dispatch-dedup');
    fleet = await startFleet(iso);
  });
  after(async () => {
    await fleet?.close();
    await iso?.cleanup();
  });

  it('sends only the first of two envelopes with one key that both reached the lanes', async () => {
    // What a publish that timed out (503, key released) but was still taken, plus the retry, leave behind.
    const req = parseSendRequest({ to: '15558880001', text: { body: 'once only' }, idempotencyKey: 'pay-77' });
    const first = envelopeFor(req);
    const retry = envelopeFor(req);
    await fleet.ingress.status.record(first.id, 'accepted');
    await fleet.ingress.status.record(retry.id, 'accepted');
    await publishToStage(fleet.ingress.rt, 'dispatch', first);
    await publishToStage(fleet.ingress.rt, 'dispatch', retry);
    // A later message of the same user shows that both went through the dispatcher.
    const marker = await fleet.send({ to: '15558880001', text: { body: 'marker' } });
    await waitFor(() => fleet.sim.accepted().find((e) => e.id === marker.body.id), { what: 'the marker at the provider' });
    expect(fleet.sim.accepted().filter((e) => e.to === '15558880001').map((e) => e.id)).to.deep.equal([first.id, marker.body.id]);
    const rec = (await fleet.call('GET', `/v1/messages/${retry.id}`)).body;
    expect(rec).to.include({ id: retry.id, duplicateOf: first.id });
    // A redelivery of the first envelope is not a repeat.
    expect(await new DispatchDedup(fleet.ingress.rt).firstOf(first, fleet.ingress.rt.log)).to.equal(first.id);
  });
});
