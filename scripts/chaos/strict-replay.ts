/**
 * The chaos scenario "strict replay order" (DLQ_ORDERING_MODE=strict): under the steady load a few
 * users each get one message refused for good; their later messages must wait while it is in the
 * DLQ, and after a replay reach the provider behind it. The run's audit (every accepted message
 * delivered once, each user in acceptance order) is the proof; the notes say whether anything of a
 * waiting user got through while it waited.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LedgerEntry } from '../../services/simulator/server.js';
import { envOf } from '../../shared/platform/config.js';
import { names } from '../../shared/amqp/topology/names.js';
import { deadLetterCount } from './audit.js';
import { DEFAULT_SHAPE } from './fleet.js';
import { run } from '../lib/tools.js';
import { sleep, waitFor } from '../lib/wait.js';
import type { Scenario } from './scenarios.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'services', 'dlq-replayer', 'cli.js');
/** Users whose next message is refused. */
const USERS = 5;
/** How long they wait behind their dead letter before the replay (several longest-tier round trips). */
const WAIT_MS = 15_000;

/** Distinct recipients of the latest sends: users the load is busy with. */
function busyUsers(ledger: LedgerEntry[], n: number): string[] {
  const out: string[] = [];
  for (let i = ledger.length - 1; i >= 0 && out.length < n; i--) if (!out.includes(ledger[i].to)) out.push(ledger[i].to);
  return out;
}

/** Sends of `users` the provider accepted after their refused one (none while they wait). */
function overtaking(ledger: LedgerEntry[], users: string[]): number {
  const refusedAt = new Map<string, number>();
  for (const e of ledger) if (users.includes(e.to) && e.code !== null && !refusedAt.has(e.to)) refusedAt.set(e.to, e.receivedAt);
  return ledger.filter((e) => e.code === null && refusedAt.has(e.to) && e.receivedAt > refusedAt.get(e.to)!).length;
}

export const strictReplayOrder: Scenario = {
  name: 'strict replay order',
  // Messages behind a dead letter park in the longest tier, so they come back that long after the
  // replay at most: 30 s here instead of the default 10 min keeps the drain short.
  shape: { ...DEFAULT_SHAPE, overrides: { dlqOrderingMode: 'strict', retryTiers: '1s,5s,30s' } },
  async inject({ fleet, infra, log }) {
    const users = busyUsers(fleet.sim.accepted(), USERS);
    const faultStart = Date.now();
    fleet.sim.setFaults({ rules: users.map((to) => ({ to, times: 1, status: 400, code: 131026 })) });
    const amqpUrl = fleet.amqpUrlOf(infra.nodes[infra.nodes.length - 1]);
    const dlq = names(fleet.cfg.topologyPrefix).dlq;
    await waitFor(async () => (await deadLetterCount(amqpUrl, dlq)) >= users.length, {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: `${users.length} dead letters`,
    });
    log(`    ${users.length} users dead-lettered; they wait ${WAIT_MS / 1000} s`);
    await sleep(WAIT_MS);
    const through = overtaking(fleet.sim.ledger(), users);
    fleet.sim.setFaults({ rules: [] });
    const replayAt = Date.now();
    await run(process.execPath, [CLI, 'replay', '--all', '--yes', '--wait'], { env: { ...process.env, ...envOf(fleet.cfg) }, timeoutMs: 120_000 });
    const notes = [
      `${users.length} users waited behind a dead letter for ${((replayAt - faultStart) / 1000).toFixed(1)} s; ${through} of their later messages reached the provider meanwhile (0 expected)`,
      `the replay job finished ${((Date.now() - replayAt) / 1000).toFixed(1)} s after it was enqueued`,
    ];
    return { faultStart, faultEnd: Date.now(), notes };
  },
};
