/**
 * A small chaos run for CI (the full one is `npm run chaos`): on a PRIVATE RabbitMQ node and Redis
 * started here (free ports, a temporary folder; the machine's broker and Redis are not touched),
 * one fleet under short steady load takes a SIGKILL of a sender replica, then a broker restart
 * (stop_app / start_app). After each, every accepted message must be at the provider or in the DLQ
 * with a reason, and every user's messages in order.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChaosFleet, type Infra } from '../../scripts/chaos/fleet.js';
import { freePort } from '../../scripts/lib/ports.js';
import { Teardown } from '../../scripts/lib/teardown.js';
import { privateInfraAvailable } from '../../scripts/lib/tools.js';
import { allocateNodes } from '../../scripts/lib/private-rabbit.js';
import { PrivateRedis } from '../../scripts/lib/private-redis.js';
import { exercise, type RunOptions, type ScenarioResult } from '../../scripts/chaos/run.js';
import { SCENARIOS } from '../../scripts/chaos/scenarios.js';

/** The whole suite stays under 3 minutes: each step gets what is left of this, minus the teardown's share. */
const BUDGET_MS = 170_000;
const TEARDOWN_MS = 30_000;
let began = Date.now(); // reset when the suite starts
const left = () => Math.max(5000, BUDGET_MS - TEARDOWN_MS - (Date.now() - began));

const lines: string[] = [];
const opts: RunOptions = {
  ratePerS: 15,
  users: 30,
  loadMs: 8000,
  faultAtMs: 3000,
  afterFaultMs: 5000,
  drainMs: 40_000,
  stallMs: 30_000,
  log: (line) => lines.push(line),
};

function scenario(name: string) {
  const sc = SCENARIOS.find((s) => s.name === name);
  if (!sc) throw new Error(`no scenario "${name}"`);
  return sc;
}

function report(r: ScenarioResult): void {
  const a = r.audit;
  console.log(
    `      ${r.name}: ${a ? `accepted ${a.accepted}, delivered ${a.delivered}, dead-lettered ${a.deadLettered}, lost ${a.lost}, duplicated ${a.duplicated}, misordered ${a.misordered}` : `error ${r.error}`}; ${r.notes.join('; ')}`,
  );
  expect(r.error, lines.join('\n')).to.equal(undefined);
  expect(a!.accepted, 'accepted').to.be.greaterThan(50);
  expect(a!.lost, 'lost').to.equal(0);
  // The publisher picks the shard and the broker routes by durable bindings: a restart moves no one.
  if (r.routesMoved !== undefined) expect(r.routesMoved?.moved, 'shard routes moved').to.equal(0);
  expect(a!.misorderedUsers, 'users out of order').to.deep.equal([]);
}

describe('chaos (small): sender SIGKILL and broker restart under load, on a private RabbitMQ and Redis', function () {
  const avail = privateInfraAvailable();
  const teardown = new Teardown();
  let infra: Infra;
  let fleet: ChaosFleet;

  before(async function () {
    if (!avail.ok) {
      console.log(`      skipped: ${avail.why}`);
      this.skip();
    }
    began = Date.now();
    this.timeout(left());
    const base = await mkdtemp(path.join(os.tmpdir(), 'postmaster-chaos-test-'));
    teardown.add(`remove ${base}`, () => rm(base, { recursive: true, force: true }));
    const [node] = await allocateNodes(base, `pmtest-chaos-${randomBytes(2).toString('hex')}`, 1);
    const redis = new PrivateRedis(base, await freePort());
    teardown.add(`stop ${node.node}`, () => node.destroy());
    teardown.add(`stop Redis :${redis.port}`, () => redis.destroy());
    await Promise.all([node.start(), redis.start()]);
    infra = { nodes: [node], redis };
    fleet = await ChaosFleet.start(infra, 'ci', { dispatchers: 1, senders: 2, replayer: false });
    teardown.add('close the fleet', () => fleet.close());
  });

  after(async function () {
    this.timeout(TEARDOWN_MS);
    await teardown.run();
  });

  it('kill -9 of a sender replica: nothing lost, every user in order', async function () {
    this.timeout(left());
    report(await exercise(fleet, scenario('kill -9 sender'), 90, infra, opts));
  });

  it('RabbitMQ restart (stop_app / start_app): nothing lost, every user in order', async function () {
    this.timeout(left());
    report(await exercise(fleet, scenario('RabbitMQ restart'), 91, infra, opts));
  });
});
