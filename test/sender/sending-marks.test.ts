import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, scanAll, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { publishToSenders, recipients, waitForAll } from './traffic.js';

const USERS = 400;
/** The sender's normal provider pool (services/sender/provider-client.ts). */
const CONNECTIONS = 64;

/**
 * The `sending` mark (what makes a redelivery after a crash wait for a status webhook) stands only
 * for provider calls in flight: with a provider that answers in 300 ms and 400 deliveries handed to
 * one sender at once, the marks in Redis never outnumber its connections — before, every delivery
 * waiting for a connection was marked, and a crash left all of them waiting.
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

  it(`never holds more marks than its ${CONNECTIONS} connections while ${USERS} deliveries wait, and sends each once`, async () => {
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
    // The sampler saw the sender busy (some marks), never more than one per connection.
    expect(max, 'marks seen while sending').to.be.greaterThan(0);
    expect(max, 'most marks at once').to.be.at.most(CONNECTIONS);
    const accepted = fleet.sim.accepted();
    expect(accepted.map((e) => e.id).sort()).to.deep.equal([...sent.ids].sort());
    // The simulator records a send when it arrives and answers 300 ms later; then the marks go.
    await waitFor(async () => (await scanAll(iso.redis, `${iso.redisKeyPrefix}:*:sending:*`)).length === 0, { timeoutMs: 10_000, what: 'every mark cleared' });
  });
});
