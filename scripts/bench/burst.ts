/**
 * The burst: the ingress accepts `count` messages (POST /v1/messages/batch) as fast as it can while
 * the sender may send only 1,000/s, so the lanes fill up. Figures: the acceptance rate, the largest
 * RSS of any service process meanwhile, and the account of every accepted message once the services
 * have stopped gracefully (in-flight work finished and acked, the rest requeued), instead of waiting
 * for the lanes to drain: accepted = delivered (ledger) + queued (checkQueue of every queue of the
 * topology) + dead-lettered (DLQ) + lost — by count, then by id (account.ts).
 */
import { Management } from '../../shared/amqp/management.js';
import { account, deliveredIds, drainIds, type Account } from './account.js';
import { deliveredCount } from './delivery.js';
import type { Fleet } from './fleet.js';
import type { LedgerClient } from './provider.js';
import { MGMT_URL } from './isolation.js';
import { closedLoop, type Accepted, type ClosedLoadOptions, type IngressClient } from './load.js';
import type { Log } from './pipeline.js';
import { type Child } from '../lib/processes.js';
import type { Sizes } from './sizes.js';

/** The account by count, from the ledger and the queue depths. */
export interface CountAccount {
  /** Distinct ids in the ledger. */
  delivered: number;
  /** Accepted ids the provider received more than once. */
  duplicates: number;
  /** Ready messages in every queue but the DLQ. */
  queued: number;
  /** Part of `queued` waiting in the retry tiers (throttled or parked messages). */
  inRetryTiers: number;
  deadLettered: number;
  /** Whether the queue depths held still before they were counted (see Fleet.settledDepths). */
  settled: boolean;
  /** accepted − delivered − queued − dead-lettered (negative when the broker holds copies). */
  lostByCount: number;
}

export interface BurstResult extends CountAccount {
  offered: number;
  accepted: number;
  acceptPerSecond: number;
  acceptSeconds: number;
  /** Largest VmRSS (MB) of each process, sampled from the burst's start until the services stopped. */
  maxRssMb: Record<string, number>;
  /** Largest memory use of the RabbitMQ node meanwhile (MB, management API; the node is shared). */
  brokerMaxMemMb: number;
  /** Delivered while the burst was being accepted, per second (the sender's limit is 1,000/s). */
  deliveredPerSecondDuringAccept: number;
  /** Messages the workers sent to a retry tier while the burst was being accepted. */
  retried: number;
  /** The same by stage and failure class (`send/throttled`…). */
  retriedBy: Record<string, number>;
  /** The account by id: `byId.lost` is the figure. */
  byId: Account;
  retried503: number;
}

export async function measureBurst(fleet: Fleet, client: IngressClient, ledger: LedgerClient, s: Sizes, log: Log): Promise<BurstResult> {
  const b = s.burst;
  // Start from empty lanes and an empty ledger, with the sender limited.
  await fleet.stop('dispatcher');
  await fleet.stop('sender');
  await fleet.purgeQueues();
  await fleet.start('sender', { whatsappThroughputPerSecond: b.throughputPerSecond });
  await fleet.start('dispatcher');
  await ledger.reset();

  const rss = new RssSampler(fleet.children(['ingress', 'dispatcher', 'sender']));
  const broker = sampleBrokerMemory();
  log(`burst: ${b.count} messages in batches of ${b.batchSize}, ${b.concurrency} at a time, sender at ${b.throughputPerSecond}/s`);
  const acc = await accept(client, s, log);
  const acceptSeconds = (acc.lastAcceptedAt - acc.firstSentAt) / 1000;
  const deliveredDuringAccept = await deliveredCount(ledger);
  const retriedBy = await fleet.counterBy('postmaster_retried_total', ['stage', 'class']);
  const retried = Object.values(retriedBy).reduce((a, c) => a + c, 0);
  log(`burst: ${acc.ids.length} accepted in ${acceptSeconds.toFixed(1)} s; stopping the services to count`);
  for (const name of ['ingress', 'dispatcher', 'sender'] as const) await fleet.stop(name);
  const maxRssMb = Object.fromEntries(rss.stop());
  const brokerMaxMemMb = await broker.stop();

  const counted = await countAll(fleet, ledger, acc.ids.length);
  log(`burst: counted ${counted.delivered} delivered + ${counted.queued} queued + ${counted.deadLettered} DLQ; reading the queues for the account by id`);
  const byId = await accountById(fleet, ledger, acc.ids, counted);
  return {
    offered: b.count,
    accepted: acc.ids.length,
    acceptPerSecond: acc.ids.length / acceptSeconds,
    acceptSeconds,
    maxRssMb,
    brokerMaxMemMb,
    deliveredPerSecondDuringAccept: deliveredDuringAccept / acceptSeconds,
    retried,
    retriedBy,
    ...counted,
    byId,
    retried503: acc.retried503,
  };
}

/**
 * The burst's load of `count` messages from `started` (its batches, in flight, users): offering
 * stops at maxAcceptMs, and what was accepted by then is the burst. Postmaster's and the peers'.
 */
export function burstLoad(s: Sizes, count: number, started: number): ClosedLoadOptions {
  const b = s.burst;
  return {
    count,
    users: b.users,
    concurrency: b.concurrency,
    batchSize: b.batchSize,
    deadline: started + b.maxAcceptMs + 60_000,
    stopAt: started + b.maxAcceptMs,
  };
}

/** Offers the burst. */
function accept(client: IngressClient, s: Sizes, log: Log): Promise<Accepted> {
  const started = Date.now();
  return closedLoop(client, {
    ...burstLoad(s, s.burst.count, started),
    onProgress: (n) => {
      if (n % 100_000 < 10_000) log(`burst: ${n} accepted (${((n * 1000) / (Date.now() - started)).toFixed(0)}/s)`);
    },
  });
}

async function countAll(fleet: Fleet, ledger: LedgerClient, accepted: number): Promise<CountAccount> {
  const { duplicates } = await ledger.stats();
  const delivered = await deliveredCount(ledger);
  const { depths, settled } = await fleet.settledDepths(60_000, 4);
  const dlq = fleet.dlqName();
  const tiers = new Set(fleet.retryQueues());
  const sum = (keep: (q: string) => boolean) => Object.entries(depths).reduce((n, [q, d]) => (keep(q) ? n + d : n), 0);
  const deadLettered = depths[dlq] ?? 0;
  const queued = sum((q) => q !== dlq);
  return {
    delivered,
    duplicates,
    queued,
    inRetryTiers: sum((q) => tiers.has(q)),
    deadLettered,
    settled,
    lostByCount: accepted - delivered - queued - deadLettered,
  };
}

async function accountById(fleet: Fleet, ledger: LedgerClient, ids: string[], counted: CountAccount): Promise<Account> {
  const dlq = fleet.dlqName();
  const queues = (await fleet.queueNames()).filter((q) => q !== dlq);
  const timeoutMs = Math.max(60_000, counted.queued / 2); // at least 2,000 messages/s of reading
  const inQueues = await drainIds(fleet.cfg.amqpUrl, queues, counted.queued, timeoutMs);
  const inDlq = await drainIds(fleet.cfg.amqpUrl, [dlq], counted.deadLettered, 30_000, 500);
  return account(ids, await deliveredIds(ledger), inQueues.ids, inDlq.ids, { ...inQueues.byQueue, ...inDlq.byQueue });
}

/** Polls the broker node's memory use every 2 s; stop() resolves to the largest value seen, in MB. */
function sampleBrokerMemory(): { stop(): Promise<number> } {
  const mgmt = new Management(MGMT_URL);
  let max = 0;
  let polling: Promise<void> = Promise.resolve();
  const poll = () => {
    polling = mgmt.call<Array<{ mem_used?: number }>>('GET', '/api/nodes').then(
      (nodes) => {
        for (const node of nodes) max = Math.max(max, (node.mem_used ?? 0) / 2 ** 20);
      },
      () => {},
    );
  };
  poll();
  const timer = setInterval(poll, 2000);
  return {
    async stop() {
      clearInterval(timer);
      await polling;
      return max;
    },
  };
}

/** Samples the RSS of some processes until stopped; keeps each one's maximum. */
class RssSampler {
  readonly maxMb = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly children: Child[],
    everyMs = 250,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    for (const c of this.children) this.maxMb.set(c.name, Math.max(this.maxMb.get(c.name) ?? 0, c.rssMb()));
  }

  stop(): Map<string, number> {
    clearInterval(this.timer);
    this.sample();
    return this.maxMb;
  }
}
