import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, scanAll, type Isolation } from '../support/isolation.js';
import { slotsFor } from '../../services/sender/provider-client.js';
import { waitFor } from '../support/wait.js';
import { publishToSenders, recipients, waitForAll } from './traffic.js';

const USERS = 400;
/** Sends let through at once to the sender's normal provider pool of 64 connections. */
const SLOTS = slotsFor(64);
/**
 * A mark is cleared with the `sent` record, written after the slot is handed on: a few more than
 * the slots can stand at once (one Redis round trip's worth of completions). Before this bound,
 * the whole prefetch of deliveries was marked (256 here).
 */
const MOST_MARKS = SLOTS + 20;

/**
 * The `sending` mark (what makes a redelivery after a crash wait for a status webhook) stands only
 * for provider calls in flight: with a provider that answers in 300 ms and 400 deliveries handed
 * to one sender at once, the marks in Redis stay near its provider slots (its connections and a
 * quarter) — before, every delivery waiting for a connection was marked, and a crash left all of
 * them waiting.
 */
describe('sender: sending marks only for calls in flight', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let fleet: Fleet;

  before(async () => {
    iso = await isolate('sender-marks');
    fleet = await startFleet(iso, {
      senders: 1,
      simulator: { faults: { latencyMs: 300 } },
      overrides: { whatsappThroughputPerSecond: 0, whatsappPairIntervalMs: 0 },
    });
  });
  after(async () => {
    await fleet?.close();
    await iso?.cleanup();
  });

  it(`holds about as many marks as its ${SLOTS} provider slots, not one per delivery, while ${USERS} deliveries wait, and sends each once`, async () => {
    let done = false;
    let max = 0;
    const samples: number[] = [];
    const sampler = (async () => {
      while (!done) {
        const n = (await scanAll(iso.redis, `${iso.redisKeyPrefix}:*:sending:*`)).length;
        samples.push(n);
        max = Math.max(max, n);
        await sleep(50);
      }
    })();
    const sent = await publishToSenders(fleet, recipients(USERS), 1, 40);
    try {
      await waitForAll(fleet, sent.ids, 40_000);
    } finally {
      done = true;
      await sampler;
    }
    console.log(`      ${samples.length} samples of the marks while sending: max ${max}`);
    // The sampler saw the sender busy (some marks), never many more than one per slot.
    expect(max, 'marks seen while sending').to.be.greaterThan(0);
    expect(max, 'most marks at once').to.be.at.most(MOST_MARKS);
    const accepted = fleet.sim.accepted();
    expect(accepted.map((e) => e.id).sort()).to.deep.equal([...sent.ids].sort());
    // The simulator records a send when it arrives and answers 300 ms later; then the marks go.
    await waitFor(async () => (await scanAll(iso.redis, `${iso.redisKeyPrefix}:*:sending:*`)).length === 0, { timeoutMs: 10_000, what: 'every mark cleared' });
  });
});
