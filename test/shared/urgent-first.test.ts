import { expect } from 'chai';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { UrgentFirst } from '../../shared/stage/urgent-first.js';
import { waitFor } from '../support/wait.js';

describe('UrgentFirst: a replica holds its ordered work while an urgent message is in flight', () => {
  it('holds nothing while no urgent message is in flight, and everything held until the last one ends', async () => {
    const holds: number[] = [];
    const gate = new UrgentFirst(10_000, (ms) => holds.push(ms));
    expect(gate.hold()).to.equal(null);
    const endA = gate.begin();
    const endB = gate.begin();
    const released: number[] = [];
    const waits = [1, 2, 3].map((i) => gate.hold()!.then(() => released.push(i)));
    endA();
    endA(); // a second call of the same end changes nothing
    await nextTurn();
    expect(released, 'one urgent message is still in flight').to.deep.equal([]);
    expect(gate.holding()).to.equal(true);
    endB();
    await Promise.all(waits);
    expect(released, 'released in the order they came').to.deep.equal([1, 2, 3]);
    expect(gate.hold()).to.equal(null);
    expect(holds).to.have.length(1);
  });

  it('never starves the ordered lanes: a hold lasts at most maxHoldMs, then the gate stays open as long', async () => {
    const maxHoldMs = 60;
    const holds: number[] = [];
    const gate = new UrgentFirst(maxHoldMs, (ms) => holds.push(ms));
    const end = gate.begin(); // an urgent message that never finishes
    const started = Date.now();
    await gate.hold();
    const heldFor = Date.now() - started;
    expect(heldFor).to.be.within(maxHoldMs - 5, maxHoldMs + 200);
    // The open half: ordered work goes on although the urgent message is still in flight.
    expect(gate.hold()).to.equal(null);
    // Then it closes again, and opens again; over ~1 s the gate is open at least about half the time.
    const until = Date.now() + 1000;
    let openChecks = 0;
    let checks = 0;
    while (Date.now() < until) {
      checks++;
      if (gate.hold() === null) openChecks++;
      await new Promise((r) => setTimeout(r, 5));
    }
    end();
    expect(holds.length, 'several holds, each ended by its bound').to.be.at.least(5);
    for (const ms of holds) expect(ms).to.be.below(maxHoldMs + 200);
    expect(openChecks / checks).to.be.at.least(0.35);
  });

  it('with maxHoldMs 0 never holds, and stop() releases everything for good', async () => {
    const off = new UrgentFirst(0);
    off.begin();
    expect(off.hold()).to.equal(null);

    const gate = new UrgentFirst(10_000);
    gate.begin();
    const held = gate.hold()!;
    gate.stop();
    await held;
    gate.begin();
    expect(gate.hold(), 'a stopped gate holds nothing').to.equal(null);
  });

  it('lets held work go a batch per turn of the event loop, so a new urgent message does not wait behind all of it', async () => {
    const gate = new UrgentFirst(10_000);
    const end = gate.begin();
    let released = 0;
    const waits = Array.from({ length: 200 }, () => gate.hold()!.then(() => released++));
    end();
    await Promise.resolve();
    await Promise.resolve();
    expect(released, 'not all at once').to.be.above(0).and.below(200);
    // An urgent message arriving meanwhile closes the gate: the rest stays held.
    const end2 = gate.begin();
    const soFar = released;
    await nextTurn();
    await nextTurn();
    expect(released).to.equal(soFar);
    expect(gate.hold(), 'new ordered work queues behind the held').to.not.equal(null);
    end2();
    await waitFor(() => released === 200, { timeoutMs: 2000, what: 'every held step released' });
    await Promise.all(waits);
  });
});
