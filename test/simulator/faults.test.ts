import { expect } from 'chai';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';
import { ManualClock, call, send, textMessage } from './client.js';

const codes = (sim: Simulator) => sim.ledger().map((e) => e.code);

describe('simulator: fault injection', () => {
  const clock = new ManualClock();
  let sim: Simulator;

  before(async () => {
    sim = await startSimulator({ clock: clock.read, seed: 7 });
  });
  afterEach(() => sim.reset());
  after(() => sim.close());

  describe('rules', () => {
    it('answers with the first matching rule and consumes rules in order', async () => {
      sim.setFaults({
        rules: [
          { to: 'A', times: 1, status: 400, code: 131026 },
          { times: 2, status: 500, code: 131000 },
        ],
      });
      const answers = [];
      for (const to of ['A', 'A', 'B', 'B', 'A']) answers.push((await send(sim.url, textMessage(to))).status);
      expect(answers).to.deep.equal([400, 500, 500, 200, 200]);
      expect(codes(sim)).to.deep.equal([131026, 131000, 131000, null, null]);
      expect((await call(sim.url, 'GET', '/_sim/faults')).body.rules).to.deep.equal([]);
    });

    it('matches on biz_opaque_callback_data and keeps a times -1 rule forever', async () => {
      sim.setFaults({ rules: [{ id: 'E2', times: -1, status: 400, code: 131047 }] });
      const statuses = [];
      for (const id of ['E1', 'E2', 'E3', 'E2', 'E2']) statuses.push((await send(sim.url, textMessage('1555', id))).status);
      expect(statuses).to.deep.equal([200, 400, 200, 400, 400]);
      expect(sim.ledger({ accepted: false }).map((e) => e.id)).to.deep.equal(['E2', 'E2', 'E2']);
    });

    it('sends Retry-After when a rule sets retryAfterS', async () => {
      sim.setFaults({ rules: [{ times: 1, status: 503, code: 131016, retryAfterS: 7 }] });
      const res = await send(sim.url, textMessage('1555'));
      expect(res.status).to.equal(503);
      expect(res.headers.get('retry-after')).to.equal('7');
      expect(res.body.error.code).to.equal(131016);
      expect((await send(sim.url, textMessage('1555'))).headers.get('retry-after')).to.equal(null);
    });

    it('takes rules over HTTP, defaulting the status to the one Meta uses for the code', async () => {
      const put = await call(sim.url, 'PUT', '/_sim/faults', { rules: [{ code: 131056, times: 1 }, { code: 131026 }] });
      expect(put.status).to.equal(200);
      expect(put.body.rules.map((r: { status: number }) => r.status)).to.deep.equal([429, 400]);
      expect((await send(sim.url, textMessage('1555'))).status).to.equal(429);
      expect((await send(sim.url, textMessage('1555'))).status).to.equal(400);
    });

    it("a rule without a code is a slow answer: the send is accepted after the rule's latencyMs", async () => {
      const put = await call(sim.url, 'PUT', '/_sim/faults', { rules: [{ to: 'SLOW', latencyMs: 300, times: -1 }] });
      expect(put.status).to.equal(200);
      const timed = async (to: string) => {
        const started = Date.now();
        const res = await send(sim.url, textMessage(to));
        return { status: res.status, ms: Date.now() - started, wamid: res.body.messages?.[0]?.id };
      };
      const slow = await timed('SLOW');
      const fast = await timed('FAST');
      expect(slow.status).to.equal(200);
      expect(slow.wamid).to.be.a('string');
      expect(slow.ms).to.be.at.least(290);
      expect(fast.status).to.equal(200);
      expect(fast.ms, 'other recipients keep the configured latency (0)').to.be.below(250);
      expect(codes(sim)).to.deep.equal([null, null]);
      const bad = await call(sim.url, 'PUT', '/_sim/faults', { rules: [{ to: 'X', times: 1 }] });
      expect(bad.status).to.equal(400);
      expect(bad.body.error.message).to.contain('code');
    });

    it('refuses an invalid fault patch and names the field', async () => {
      const res = await call(sim.url, 'PUT', '/_sim/faults', { errorRate: 2, bogus: 1 });
      expect(res.status).to.equal(400);
      expect(res.body.error.message).to.contain('errorRate');
      expect((await call(sim.url, 'GET', '/_sim/faults')).body.errorRate).to.equal(0);
    });
  });

  describe('random error mix', () => {
    const mix = [
      { status: 500, code: 131000, weight: 1 },
      { status: 429, code: 130429, weight: 1 },
      { status: 400, code: 131026, weight: 2 },
    ];

    async function run(seed: number): Promise<Array<number | null>> {
      const s = await startSimulator({ seed, faults: { errorRate: 0.5, errorMix: mix } });
      try {
        for (let i = 0; i < 40; i++) await send(s.url, textMessage(`u${i}`));
        return s.ledger().map((e) => e.code);
      } finally {
        await s.close();
      }
    }

    it('draws the same errors for the same seed and only codes from the mix', async () => {
      const [first, again, other] = [await run(42), await run(42), await run(43)];
      expect(first).to.deep.equal(again);
      expect(first).to.not.deep.equal(other);
      expect(new Set(first)).to.include(null);
      for (const code of first) expect([null, 131000, 130429, 131026]).to.include(code);
    });

    it('answers every send with an error at errorRate 1, using the default transient mix', async () => {
      sim.setFaults({ errorRate: 1 });
      for (let i = 0; i < 10; i++) expect((await send(sim.url, textMessage('1555'))).status).to.be.oneOf([429, 500, 503]);
      expect(sim.accepted()).to.be.empty;
    });
  });

  describe('throttles', () => {
    it('answers 130429 above throughputPerSecond in a rolling second', async () => {
      sim.setFaults({ throughputPerSecond: 3 });
      const statuses = async (n: number) => {
        const out = [];
        for (let i = 0; i < n; i++) out.push((await send(sim.url, textMessage(`user${i}`))).status);
        return out;
      };
      expect(await statuses(4)).to.deep.equal([200, 200, 200, 429]);
      const throttled = await send(sim.url, textMessage('other'));
      expect(throttled.body.error).to.include({ code: 130429, type: 'OAuthException' });
      clock.advance(999);
      expect((await send(sim.url, textMessage('x'))).status, 'still inside the window').to.equal(429);
      clock.advance(1);
      expect(await statuses(4)).to.deep.equal([200, 200, 200, 429]);
      expect(sim.accepted()).to.have.length(6);
    });

    it('answers 131056 above the pair limit for that recipient only', async () => {
      sim.setFaults({ pairPerWindow: { count: 2, windowMs: 6000 } });
      const to = async (user: string) => (await send(sim.url, textMessage(user))).body;
      await to('alice');
      await to('alice');
      const limited = await to('alice');
      expect(limited.error).to.include({ code: 131056 });
      expect((await to('bob')).messages).to.have.length(1);
      clock.advance(5999);
      expect((await to('alice')).error?.code).to.equal(131056);
      clock.advance(1);
      expect((await to('alice')).messages).to.have.length(1);
      expect(sim.ledger({ to: 'alice' }).map((e) => e.status)).to.deep.equal([200, 200, 429, 429, 200]);
    });

    it('does not count rejected sends against the windows', async () => {
      sim.setFaults({ throughputPerSecond: 1, rules: [{ times: 3, status: 500, code: 131000 }] });
      for (let i = 0; i < 3; i++) expect((await send(sim.url, textMessage('u'))).status).to.equal(500);
      expect((await send(sim.url, textMessage('u'))).status).to.equal(200);
    });
  });

  describe('latency and outages', () => {
    it('adds latencyMs to every answer', async () => {
      sim.setFaults({ latencyMs: 80 });
      const started = performance.now();
      const res = await send(sim.url, { bad: 'body' });
      expect(res.status).to.equal(400);
      expect(performance.now() - started).to.be.at.least(75);
    });

    it('resets connections while down, and comes back when switched off over HTTP', async () => {
      sim.setFaults({ down: true });
      const failure = await send(sim.url, textMessage('1555')).then(
        () => null,
        (err: Error & { cause?: { code?: string } }) => err,
      );
      expect(failure, 'the send should fail').to.be.an('error');
      expect(failure?.cause?.code).to.be.oneOf(['ECONNRESET', 'UND_ERR_SOCKET']);
      expect(sim.ledger()).to.be.empty;
      expect((await call(sim.url, 'PUT', '/_sim/faults', { down: false })).status).to.equal(200);
      expect((await send(sim.url, textMessage('1555'))).status).to.equal(200);
    });
  });

  it('reset() brings back the faults given at start', async () => {
    const s = await startSimulator({ faults: { latencyMs: 5, throughputPerSecond: 80 } });
    try {
      s.setFaults({ latencyMs: 0, errorRate: 1, down: true });
      s.reset();
      const faults = (await call(s.url, 'GET', '/_sim/faults')).body;
      expect(faults).to.include({ latencyMs: 5, throughputPerSecond: 80, errorRate: 0, down: false });
    } finally {
      await s.close();
    }
  });
});
