import { expect } from 'chai';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { maxInWindow, ratePerSecond, recipients, sendToUsers, waitForAll } from './traffic.js';

const LIMIT = 50;
const USERS = 150;
const PER_USER = 4;

describe('sender: throughput limit per business number', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let fleet: Fleet;

  before(async () => {
    iso = await isolate('sender-tp');
    fleet = await startFleet(iso, { senders: 3, overrides: { whatsappThroughputPerSecond: LIMIT } });
  });
  after(async () => {
    await fleet?.close();
    await iso?.cleanup();
  });

  it(`keeps ANY 1 s window within ${LIMIT}/s + 10% across 3 replicas and delivers every message in order`, async () => {
    const sent = await sendToUsers(fleet, recipients(USERS), PER_USER, 30);
    await waitForAll(fleet, sent.ids, 40_000);

    const times = fleet.sim.ledger().map((e) => e.receivedAt);
    const peak = maxInWindow(times, 1000);
    const first = Math.min(...times);
    const last = Math.max(...times);
    console.log(
      `      ${times.length} sends in ${((last - first) / 1000).toFixed(1)} s: mean ${ratePerSecond(times, first, last).toFixed(1)}/s, busiest 1 s window ${peak}`,
    );
    expect(peak).to.be.at.most(LIMIT + LIMIT / 10);

    const accepted = fleet.sim.accepted();
    expect(accepted).to.have.length(USERS * PER_USER);
    expect(new Set(accepted.map((e) => e.id))).to.deep.equal(new Set(sent.ids));
    for (const [user, ids] of sent.byUser) {
      expect(
        accepted.filter((e) => e.to === user).map((e) => e.id),
        `order of ${user}`,
      ).to.deep.equal(ids);
    }
  });
});
