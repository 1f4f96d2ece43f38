import { expect } from 'chai';
import { keyspace } from '../../shared/platform/redis.js';
import { holdKeys, type HoldKeys } from '../../shared/stage/hold-keys.js';
import { startReplayer, type Replayer } from '../../services/dlq-replayer/service.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { runCli } from '../dlq/helpers.js';

/**
 * DLQ_ORDERING_MODE end to end through the fleet: with `strict`, a user's later messages wait
 * while one of theirs is in the DLQ, and go after it once it is replayed (or right away once it is
 * purged); with the default (`release`) they go at once.
 */

/** The simulator's answer to a user's first send only: "not on WhatsApp" (permanent). */
const failFirst = (to: string) => ({ to, times: 1, status: 400, code: 131026 });

interface Setup {
  iso: Isolation;
  fleet: Fleet;
  replayer: Replayer;
  holds: HoldKeys;
}

async function setUp(name: string, strict: boolean): Promise<Setup> {
  const iso = await isolate(name);
  const fleet = await startFleet(iso, { overrides: strict ? { dlqOrderingMode: 'strict' } : {} });
  const replayer = await startReplayer(fleet.cfg);
  return { iso, fleet, replayer, holds: holdKeys(keyspace(fleet.cfg.redisKeyPrefix, fleet.cfg.topologyPrefix), 'send') };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  await s?.replayer.close();
  await s?.fleet.close();
  await s?.iso.cleanup();
}

async function send(s: Setup, to: string, text: string): Promise<string> {
  const r = await s.fleet.send({ to, type: 'text', text: { body: text } });
  expect(r.status).to.equal(202);
  return r.body.id as string;
}

const accepted = (s: Setup, to: string) =>
  s.fleet.sim
    .accepted()
    .filter((e) => e.to === to)
    .map((e) => e.id);
const failedAt = (s: Setup, to: string) =>
  s.fleet.sim
    .ledger()
    .filter((e) => e.to === to && e.code !== null)
    .map((e) => e.id);

/** Sends the user's first message, which the provider refuses for good: it ends in the DLQ. */
async function deadLetterFirst(s: Setup, to: string): Promise<string> {
  s.fleet.sim.setFaults({ rules: [failFirst(to)] });
  const id = await send(s, to, `${to} #0`);
  await waitFor(() => failedAt(s, to).includes(id), { timeoutMs: 20_000, what: `${to}'s first message refused` });
  return id;
}

/** The ids listed in the user's hold, and when each is due back. */
async function hold(s: Setup, user: string): Promise<{ ids: string[]; back: Record<string, string> }> {
  return { ids: await s.iso.redis.lrange(s.holds.list(user), 0, -1), back: await s.iso.redis.hgetall(s.holds.back(user)) };
}

/**
 * Waits until the later messages are parked behind the dead letter and each has come back to its
 * shard and been parked again at least once (its due-back time moved on): they were due, and stayed.
 */
async function parkedTwice(s: Setup, user: string, dead: string, later: string[]): Promise<void> {
  const first = await waitFor(
    async () => {
      const h = await hold(s, user);
      return h.ids.join() === [dead, ...later].join() ? h.back : null;
    },
    { timeoutMs: 20_000, what: `${user}'s later messages parked behind the dead letter` },
  );
  await waitFor(
    async () => {
      const { back } = await hold(s, user);
      return later.every((id) => Number(back[id]) > Number(first[id]));
    },
    { timeoutMs: 20_000, what: `${user}'s parked messages back from their tier and parked again` },
  );
}

async function stats(s: Setup): Promise<any> {
  const r = await runCli(s.fleet.cfg, ['stats', '--json']);
  expect(r.code, r.stderr).to.equal(0);
  return r.json();
}

describe("ordering: DLQ_ORDERING_MODE=strict keeps a user's later messages behind a dead letter", function () {
  this.timeout(120_000);
  const A = '15553330001';
  const B = '15553330002';
  const C = '15553330003';
  let s: Setup;

  before(async () => {
    s = await setUp('dlq-order-strict', true);
  });
  after(() => tearDown(s));

  it('holds the later messages while the dead letter is in the DLQ, and a replay sends it first: provider order is acceptance order', async () => {
    const dead = await deadLetterFirst(s, A);
    const later = [await send(s, A, `${A} #1`), await send(s, A, `${A} #2`), await send(s, A, `${A} #3`)];
    const other = await send(s, B, `${B} #0`);
    await waitFor(() => accepted(s, B).includes(other), { timeoutMs: 20_000, what: 'another user of the fleet sent' });
    await parkedTwice(s, A, dead, later);
    expect(accepted(s, A), 'nothing of the held user reached the provider').to.deep.equal([]);
    expect(await s.iso.redis.pttl(s.holds.list(A)), 'no TTL while the dead letter waits').to.equal(-1);

    const st = await stats(s);
    expect(st.total).to.equal(1);
    expect(st.waiting.send.users).to.equal(1);
    expect(st.waiting.send.oldestAgeS).to.be.at.least(0);
    const text = await runCli(s.fleet.cfg, ['stats']);
    expect(text.stdout).to.match(/wait behind a dead letter[\s\S]*send: 1 user, the oldest for/);

    const r = await runCli(s.fleet.cfg, ['replay', '--user', A, '--yes', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.json().progress).to.include({ replayed: 1 });
    await waitFor(() => accepted(s, A).length === 4, { timeoutMs: 30_000, what: 'the dead letter and the later messages sent' });
    expect(accepted(s, A)).to.deep.equal([dead, ...later]);
    await waitFor(async () => (await s.iso.redis.exists(s.holds.list(A), s.holds.back(A))) === 0, { what: 'the hold gone' });
    expect((await stats(s)).waiting.send.users).to.equal(0);
  });

  it('a purge of the dead letter releases the hold, and the later messages flow in order', async () => {
    const dead = await deadLetterFirst(s, C);
    const later = [await send(s, C, `${C} #1`), await send(s, C, `${C} #2`)];
    await parkedTwice(s, C, dead, later);
    expect(accepted(s, C)).to.deep.equal([]);

    const r = await runCli(s.fleet.cfg, ['purge', '--user', C, '--yes', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.json().progress).to.include({ purged: 1 });
    await waitFor(() => accepted(s, C).length === 2, { timeoutMs: 30_000, what: 'the later messages sent' });
    expect(accepted(s, C)).to.deep.equal(later);
    await waitFor(async () => (await s.iso.redis.exists(s.holds.list(C), s.holds.back(C))) === 0, { what: 'the hold gone' });
    const st = await stats(s);
    expect(st.total).to.equal(0);
    expect(st.waiting.send.users).to.equal(0);
  });
});

describe('ordering: the default DLQ_ORDERING_MODE (release) lets later messages overtake a dead letter', function () {
  this.timeout(120_000);
  const D = '15553330004';
  let s: Setup;

  before(async () => {
    s = await setUp('dlq-order-release', false);
  });
  after(() => tearDown(s));

  it('sends the later messages while the dead letter is in the DLQ; its replay arrives after them', async () => {
    expect(s.fleet.cfg.dlqOrderingMode).to.equal('release');
    const dead = await deadLetterFirst(s, D);
    const later = [await send(s, D, `${D} #1`), await send(s, D, `${D} #2`)];
    await waitFor(() => accepted(s, D).length === 2, { timeoutMs: 20_000, what: 'the later messages sent' });
    expect(accepted(s, D)).to.deep.equal(later);
    expect(await s.iso.redis.exists(s.holds.list(D))).to.equal(0);
    const st = await stats(s);
    expect(st.total).to.equal(1);
    expect(st.waiting.send.users).to.equal(0);

    const r = await runCli(s.fleet.cfg, ['replay', '--user', D, '--yes', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    await waitFor(() => accepted(s, D).length === 3, { timeoutMs: 20_000, what: 'the replayed dead letter sent' });
    expect(accepted(s, D)).to.deep.equal([...later, dead]);
  });
});
