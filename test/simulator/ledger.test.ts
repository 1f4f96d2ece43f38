import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Ledger } from '../../services/simulator/ledger.js';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';
import { call, send, textMessage } from './client.js';

describe('simulator: ledger', () => {
  let sim: Simulator;

  before(async () => {
    sim = await startSimulator();
  });
  afterEach(() => sim.reset());
  after(() => sim.close());

  it('records every answered send in arrival order, per recipient', async () => {
    sim.setFaults({ rules: [{ id: 'b2', times: 1, status: 500, code: 131000 }] });
    const sent = [
      ['alice', 'a1'],
      ['bob', 'b1'],
      ['alice', 'a2'],
      ['bob', 'b2'],
      ['alice', 'a3'],
    ];
    for (const [to, id] of sent) await send(sim.url, textMessage(to, id, `text ${id}`));

    expect(sim.ledger().map((e) => [e.seq, e.id])).to.deep.equal(sent.map(([, id], i) => [i + 1, id]));
    expect(sim.ledger({ to: 'alice' }).map((e) => e.id)).to.deep.equal(['a1', 'a2', 'a3']);
    expect(sim.ledger({ to: 'bob', accepted: true }).map((e) => e.id)).to.deep.equal(['b1']);
    expect(sim.ledger({ accepted: false }).map((e) => [e.id, e.status, e.code, e.wamid])).to.deep.equal([['b2', 500, 131000, null]]);
    expect(sim.accepted().map((e) => e.id)).to.deep.equal(['a1', 'b1', 'a2', 'a3']);
    expect(sim.ledger({ to: 'nobody' })).to.deep.equal([]);
    const first = sim.accepted()[0];
    expect(first.body).to.deep.include({ to: 'alice', text: { body: 'text a1' } });
    expect(first.receivedAt).to.be.closeTo(Date.now(), 5000);
  });

  it('serves the same ledger over HTTP with filters and paging', async () => {
    for (const to of ['u1', 'u2', 'u1', 'u1']) await send(sim.url, textMessage(to));
    await send(sim.url, { broken: true });
    const all = (await call(sim.url, 'GET', '/_sim/ledger')).body.entries;
    expect(all).to.deep.equal(JSON.parse(JSON.stringify(sim.ledger())));
    const u1 = (await call(sim.url, 'GET', '/_sim/ledger?to=u1&accepted=1')).body.entries;
    expect(u1.map((e: { seq: number }) => e.seq)).to.deep.equal([1, 3, 4]);
    const rejected = (await call(sim.url, 'GET', '/_sim/ledger?accepted=0')).body.entries;
    expect(rejected.map((e: { seq: number }) => e.seq)).to.deep.equal([5]);
    const page = (await call(sim.url, 'GET', '/_sim/ledger?after=2&limit=2')).body.entries;
    expect(page.map((e: { seq: number }) => e.seq)).to.deep.equal([3, 4]);
  });

  it('counts received, accepted, rejected, codes and duplicate ids in /_sim/stats', async () => {
    sim.setFaults({ rules: [{ id: 'x', times: 1, status: 429, code: 130429 }] });
    for (const id of ['x', 'x', 'y', 'x', 'y', 'z']) await send(sim.url, textMessage('u', id));
    await send(sim.url, { nope: 1 });
    const stats = (await call(sim.url, 'GET', '/_sim/stats')).body;
    expect(stats).to.include({ received: 7, accepted: 5, rejected: 2, duplicates: 2, seed: stats.seed });
    expect(stats.byCode).to.deep.equal({ 100: 1, 130429: 1 });
    expect(stats.byStatus).to.deep.equal({ 200: 5, 400: 1, 429: 1 });
  });

  it('clears entries and counters on DELETE /_sim/ledger but keeps the faults', async () => {
    sim.setFaults({ latencyMs: 1 });
    await send(sim.url, textMessage('u', 'a'));
    const wamid = sim.accepted()[0].wamid;
    expect((await call(sim.url, 'DELETE', '/_sim/ledger')).status).to.equal(204);
    expect(sim.ledger()).to.deep.equal([]);
    expect((await call(sim.url, 'GET', '/_sim/stats')).body).to.include({ received: 0, duplicates: 0 });
    expect((await call(sim.url, 'GET', '/_sim/faults')).body.latencyMs).to.equal(1);
    await send(sim.url, textMessage('u', 'a'));
    expect(sim.accepted()[0].seq).to.equal(1);
    expect(sim.accepted()[0].wamid, 'wamids stay unique across clears').to.not.equal(wamid);
    expect((await call(sim.url, 'GET', '/_sim/stats')).body.duplicates).to.equal(0);
  });

  it('does not keep bodies when keepBodies is false', async () => {
    const lean = await startSimulator({ keepBodies: false });
    try {
      await send(lean.url, textMessage('u', 'a'));
      expect(lean.accepted()[0]).to.include({ to: 'u', id: 'a', type: 'text', body: undefined });
    } finally {
      await lean.close();
    }
  });

  it('stores a large benchmark ledger in under 180 bytes per entry', function () {
    this.timeout(30_000);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const n = 300_000;
    const measure = (): number => {
      gc();
      const before = process.memoryUsage();
      const ledger = new Ledger(false, 'test');
      for (let i = 0; i < n; i++) {
        // Parsed from JSON like the server does, so strings are flat as they are in a real run.
        const body = JSON.parse(JSON.stringify(textMessage(`4915${i % 20_000}`, `01JDEXAMPLE${String(i).padStart(15, '0')}`)));
        ledger.append({ receivedAt: 1.7e12 + i, to: body.to, type: 'text', id: body.biz_opaque_callback_data, status: 200, code: null, body });
      }
      gc();
      const after = process.memoryUsage();
      expect(ledger.length).to.equal(n);
      return (after.heapUsed - before.heapUsed + after.arrayBuffers - before.arrayBuffers) / n;
    };
    // Heap figures are noisy by some 20%: the best of two runs is the ledger's own footprint.
    const lean = Math.min(measure(), measure());
    expect(lean, 'bytes per entry without bodies').to.be.below(180);
  });
});
