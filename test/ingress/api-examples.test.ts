/**
 * docs/API.md's *Message types* section, run: every curl example there is sent to the pipeline and
 * the simulator, which must have received exactly the content the example sent. The section must show
 * every type the send API takes, each kind of interactive message, a reply and a read receipt, so a
 * type added without an example fails here.
 */
import { expect } from 'chai';
import { MESSAGE_TYPES } from '../../shared/domain/content/content.js';
import { read } from '../infra/repo.js';
import { messageTypeExamples, type MessageTypeExample as Example } from '../support/api-docs.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { contentOf, delivered } from './delivered.js';

const EXAMPLES = messageTypeExamples(read('docs/API.md'));
const isRead = (e: Example) => e.body.status === 'read';

describe('docs/API.md: every message type example reaches the provider unchanged', function () {
  let iso: Isolation;
  let fleet: Fleet;

  before(async () => {
    iso = await isolate('api-examples');
    fleet = await startFleet(iso);
  });
  after(async () => {
    await fleet?.close();
    await iso?.cleanup();
  });

  it('shows every type, every interactive kind, a reply and a read receipt', () => {
    const types = new Set(EXAMPLES.map((e) => e.body.type));
    expect(
      MESSAGE_TYPES.filter((t) => !types.has(t)),
      'types without an example',
    ).to.deep.equal([]);
    const kinds = EXAMPLES.flatMap((e) => (e.body.interactive as { type?: string } | undefined)?.type ?? []);
    expect(kinds).to.include.members(['button', 'list', 'cta_url', 'flow']);
    expect(
      EXAMPLES.some((e) => e.body.context !== undefined),
      'a reply (context)',
    ).to.equal(true);
    expect(EXAMPLES.some(isRead), 'a read receipt').to.equal(true);
  });

  for (const example of EXAMPLES.filter((e) => !isRead(e))) {
    it(`sends "${example.title}" and the provider receives its content unchanged`, async () => {
      const res = await fleet.send(example.body);
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      expect(await delivered(fleet, res.body.id, example.title)).to.deep.equal(contentOf(example.body));
    });
  }

  for (const example of EXAMPLES.filter(isRead)) {
    it(`accepts "${example.title}"`, async () => {
      const res = await fleet.send(example.body);
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
    });
    it(`delivers "${example.title}" to the provider as Meta's read body`, async () => {
      await fleet.send(example.body);
      const entry = await waitFor(() => fleet.sim.accepted().find((e) => e.type === 'read'), { what: 'the read receipt at the provider' });
      expect(entry.body).to.deep.equal({ messaging_product: 'whatsapp', ...contentOf(example.body) });
    });
  }
});
