import { expect } from 'chai';
import { ThrottledError } from '../../shared/failures/errors.js';
import { PriorityGate, type GateTake } from '../../services/sender/priority-gate.js';
import { effectiveFactor } from '../../services/sender/provider-backoff.js';
import { phaseOf, slotPoints } from '../../services/sender/limiter.js';

/** A counter handing out one token every `everyMs`, on the real clock. */
function ticker(everyMs: number): () => Promise<GateTake> {
  let next = Date.now();
  return async () => {
    const now = Date.now();
    if (now >= next) {
      next = Math.max(next + everyMs, now);
      return { ok: true, release: async () => {} };
    }
    return { ok: false, waitMs: next - now };
  };
}

describe('sender: priority gate in front of the shared counter', function () {
  it('serves urgent waiters before normal ones that were waiting longer', async () => {
    const gate = new PriorityGate({ limit: 'test', take: ticker(20), now: Date.now });
    const order: string[] = [];
    const deadline = Date.now() + 5000;
    const all = [];
    for (let i = 0; i < 5; i++) all.push(gate.acquire(false, deadline).then(() => order.push(`n${i}`)));
    for (let i = 0; i < 2; i++) all.push(gate.acquire(true, deadline).then(() => order.push(`u${i}`)));
    await Promise.all(all);
    // n0 may already hold the first token (taken before the urgent ones arrived); then the urgent ones go.
    expect(order.slice(0, 3)).to.include.members(['u0', 'u1']);
    expect(order.filter((x) => x.startsWith('n'))).to.deep.equal(['n0', 'n1', 'n2', 'n3', 'n4']);
    expect(order.filter((x) => x.startsWith('u'))).to.deep.equal(['u0', 'u1']);
  });

  it('turns a waiter away as throttled, with the expected wait, when its token cannot come before its deadline', async () => {
    const gate = new PriorityGate({ limit: 'test', take: ticker(100), now: Date.now });
    const deadline = Date.now() + 250;
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => gate.acquire(false, deadline)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    expect(ok).to.be.within(2, 4);
    expect(refused).to.have.length(6 - ok);
    for (const err of refused) {
      expect(err).to.be.instanceOf(ThrottledError);
      expect(err.code).to.equal('limit-test');
      expect(err.retryAfterMs).to.be.greaterThan(0);
    }
  });

  it('turns every waiter away on close, and later ones at once', async () => {
    const gate = new PriorityGate({ limit: 'test', take: async () => ({ ok: false, waitMs: 10_000 }), now: Date.now });
    const waiting = gate.acquire(false, Date.now() + 60_000);
    gate.close();
    await expectThrottled(waiting);
    await expectThrottled(gate.acquire(true, Date.now() + 60_000));
  });
});

describe('sender: limiter arithmetic', function () {
  it('spreads a rate over 50 ms sub-windows so that any 21 of them — all a 1 s span can touch — hold the rate (rounded up)', () => {
    for (const rate of [1, 7, 50, 80, 1000, 40.5]) {
      const points = Array.from({ length: 500 }, (_, i) => slotPoints(rate, 1_000_000 + i));
      for (let i = 0; i + 21 <= points.length; i++) {
        const sum = points.slice(i, i + 21).reduce((a, b) => a + b, 0);
        expect(sum, `rate ${rate}`).to.be.within(Math.floor(rate), Math.ceil(rate));
      }
    }
  });

  it("shifts each recipient's pair windows by a stable phase", () => {
    expect(phaseOf('15551234567', 600)).to.equal(phaseOf('15551234567', 600));
    const phases = new Set(Array.from({ length: 50 }, (_, i) => phaseOf(String(15550000000 + i), 600)));
    for (const p of phases) expect(p).to.be.within(0, 599);
    expect(phases.size).to.be.greaterThan(30);
  });

  it('holds a halved factor for one cool-down, then regains a tenth per cool-down up to 1', () => {
    expect(effectiveFactor(0.5, 0, 500, 1000)).to.equal(0.5);
    expect(effectiveFactor(0.5, 0, 1000, 1000)).to.be.closeTo(0.6, 1e-9);
    expect(effectiveFactor(0.5, 0, 3500, 1000)).to.be.closeTo(0.8, 1e-9);
    expect(effectiveFactor(0.5, 0, 60_000, 1000)).to.equal(1);
    expect(effectiveFactor(0.5, 0, 10, 0)).to.equal(1);
  });
});

async function expectThrottled(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(ThrottledError);
    return;
  }
  expect.fail('expected a ThrottledError');
}
