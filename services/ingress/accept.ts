/**
 * Accepting send requests (one, or a batch in one confirm round): idempotency claims, the status
 * record, then either the BullMQ delayed queue (sendAt in the future) or the dispatch lanes — and
 * only what the broker (or Redis, for scheduled sends) confirmed is answered 202.
 */
import { newEnvelope, type Envelope, type Priority } from '../../shared/domain/envelope.js';
import { UnencodableMessageError } from '../../shared/amqp/broker.js';
import { publishToStage } from '../../shared/amqp/publish.js';
import { DeadlineError, isCommandTimeout, ReplicaAckError, withDeadline } from '../../shared/platform/redis.js';
import type { Logger } from '../../shared/platform/logger.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { IngressMetrics } from './metrics.js';
import type { MessageStatus, StatusStore } from '../../shared/domain/status.js';
import type { Lane } from '../../shared/amqp/topology/names.js';
import type { ScheduledSends } from '../../shared/domain/schedule-queue.js';
import type { Admission } from './admission.js';
import type { Claims } from './claims.js';
import type { SendRequest } from './request.js';

export type Outcome =
  | { status: 202; state: 'accepted'; id: string; lane: Lane; priority: Priority }
  | { status: 202; state: 'scheduled'; id: string; sendAt: string; priority: Priority }
  | { status: 200; state: 'duplicate'; id: string; current: MessageStatus | null }
  | { status: 503; error: string; /** The broker may have stored it (a confirm timed out). */ outcomeUnknown?: boolean }
  /** A value the request validation let through but AMQP cannot carry: nothing was sent, a retry cannot help. */
  | { status: 400; error: string };

export interface AcceptDeps {
  rt: Runtime<IngressMetrics>;
  admission: Admission;
  idempotency: Claims;
  status: StatusStore;
  schedule: ScheduledSends;
}

export function envelopeFor(req: SendRequest, correlationId?: string): Envelope {
  const corr = req.correlationId ?? correlationId;
  return newEnvelope({
    kind: 'outbound',
    user: req.to.replace(/^\+/, ''),
    ...(req.from !== undefined ? { from: req.from } : {}),
    priority: req.priority,
    ...(req.urgency !== undefined ? { urgency: req.urgency } : {}),
    payload: req.content as unknown as Record<string, unknown>,
    ...(req.idempotencyKey ? { idempotencyKey: req.idempotencyKey } : {}),
    ...(req.sendAt ? { sendAt: req.sendAt } : {}),
    ...(corr ? { correlationId: corr } : {}),
    ...(req.fallbackTemplate ? { fallbackTemplate: req.fallbackTemplate } : {}),
  });
}

/** One item of a request on its way: its envelope, and its outcome once it has one. */
interface Item {
  env: Envelope;
  /** Milliseconds until sendAt, > 0 for a scheduled send. */
  delayMs: number;
  /** The earlier item of the same request with the same idempotency key: this one copies its outcome. */
  repeats?: Item;
  token?: string;
  /** The key's earlier publish may have got in: this one reuses its id and never frees the key. */
  reclaimed?: boolean;
  outcome?: Outcome;
}

export class Acceptor {
  private readonly log: Logger;

  constructor(private readonly deps: AcceptDeps) {
    this.log = deps.rt.log.child({ component: 'accept' });
  }

  private idemKey(k: string): string {
    return this.deps.rt.keys('idem', k);
  }

  /**
   * Accepts valid requests; the outcomes are in the same order. Throws UnavailableError (503 for the
   * whole request) when the broker cannot take publishes or the ingress is at capacity.
   */
  async accept(requests: Array<{ request: SendRequest; correlationId?: string }>): Promise<Outcome[]> {
    const items = itemsOf(requests, Date.now());
    const firsts = items.filter((it) => it.repeats === undefined);
    const immediate = firsts.filter((it) => it.delayMs <= 0).length;
    if (immediate > 0) this.deps.admission.checkBroker();
    const lease = this.deps.admission.acquire(immediate);
    try {
      await this.claim(firsts);
      const go = firsts.filter((it) => it.outcome === undefined);
      // The `accepted` records go out beside the publishes, not before them: one Redis round trip
      // less on every request's path (see recordAccepted). Awaited before settleClaims, which
      // forgets the records of the messages that were not published.
      const recorded = this.recordAccepted(go);
      await this.deliver(go);
      await recorded;
      await this.settleClaims(go);
      const outcomes = items.map((it) => (it.repeats ? copyAsDuplicate(it.repeats.outcome!) : it.outcome!));
      await this.fillCurrent(outcomes);
      return outcomes;
    } finally {
      lease.release();
    }
  }

  /** Idempotency claims of the first item of each key (repeats inside the request copy its outcome). */
  private async claim(items: Item[]): Promise<void> {
    await Promise.all(
      items.map(async (it) => {
        const key = it.env.idempotencyKey;
        if (key === undefined) return;
        try {
          const c = await this.deps.idempotency.claim(this.idemKey(key), it.env.id, it.env.id);
          if (c.kind === 'done') it.outcome = { status: 200, state: 'duplicate', id: c.value, current: null };
          else it.token = c.token;
          if (c.kind === 'reclaimed') {
            it.env.id = c.id;
            it.reclaimed = true;
          }
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'idempotency claim failed');
          it.outcome = { status: 503, error: 'idempotency keys unavailable (Redis)' };
        }
      }),
    );
  }

  /**
   * Advisory, never rejects. Written while the publishes are under way: the command leaves on this
   * process's Redis connection before the broker can have routed, stored and delivered the message
   * and the dispatcher recorded `dispatched`, and should a stall ever let `dispatched` land first,
   * the record only moves forward (shared/domain/status.ts): this `accepted` is then dropped as stale and
   * the status is right, only its history lacks the entry.
   */
  private async recordAccepted(items: Item[]): Promise<void> {
    const { status, rt } = this.deps;
    await Promise.all(
      items.map(({ env, delayMs }) => {
        const rec =
          delayMs > 0
            ? status.record(env.id, 'scheduled', { sendAt: env.sendAt, ttlS: Math.ceil(delayMs / 1000) + rt.cfg.statusTtlS })
            : status.record(env.id, 'accepted');
        return rec.catch((err: Error) => this.log.warn({ err: err.message, messageId: env.id }, 'could not record status'));
      }),
    );
  }

  /** Publishes the immediate ones and schedules the rest, then awaits every confirm at once. */
  private async deliver(items: Item[]): Promise<void> {
    const scheduled = items.filter((it) => it.delayMs > 0);
    const immediate = items.filter((it) => it.delayMs <= 0);
    const [sched, published] = await Promise.all([
      scheduled.length === 0
        ? Promise.resolve<Error | null>(null)
        : this.schedule(scheduled.map((it) => it.env)).then(
            () => null,
            (err: Error) => err,
          ),
      Promise.allSettled(immediate.map((it) => publishToStage(this.deps.rt, 'send', it.env))),
    ]);
    if (sched) this.log.warn({ err: sched.message }, 'could not schedule');
    for (const it of scheduled) it.outcome = sched ? scheduleFailure(sched) : this.scheduled(it.env);
    immediate.forEach((it, n) => (it.outcome = this.published(it.env, published[n])));
  }

  private scheduled(env: Envelope): Outcome {
    this.deps.rt.metrics.accepted.inc({ kind: env.kind, lane: 'scheduled' });
    return { status: 202, state: 'scheduled', id: env.id, sendAt: env.sendAt!, priority: env.priority };
  }

  private published(env: Envelope, r: PromiseSettledResult<Lane>): Outcome {
    if (r.status === 'fulfilled') {
      this.deps.rt.metrics.accepted.inc({ kind: env.kind, lane: r.value });
      return { status: 202, state: 'accepted', id: env.id, lane: r.value, priority: env.priority };
    }
    const err = r.reason as Error & { reason?: string; outcomeUnknown?: boolean };
    if (err instanceof UnencodableMessageError) {
      this.log.error({ err: err.message, messageId: env.id }, 'a validated request could not be encoded for AMQP');
      return { status: 400, error: err.message };
    }
    this.deps.rt.metrics.publishFailures.inc({ reason: err.reason ?? 'unknown' });
    return { status: 503, error: err.message, ...(err.outcomeUnknown ? { outcomeUnknown: true } : {}) };
  }

  /**
   * BullMQ waits for its connection to be ready before it sends anything, and a Redis that accepts
   * connections but never answers never gets ready: no command timeout covers that wait, this does.
   */
  private schedule(envs: Envelope[]): Promise<void> {
    return withDeadline(this.deps.schedule.add(envs), this.deps.rt.cfg.redisCommandTimeoutMs, 'scheduled-send queue');
  }

  /**
   * Confirms the claims of accepted messages and releases the others — but a claim whose message may
   * be in the broker (outcome unknown, or an earlier attempt's was) stays tied to its id, and its
   * status record stays.
   */
  private async settleClaims(items: Item[]): Promise<void> {
    const ok = items.filter((it) => it.outcome?.status === 202);
    const failed = items.filter((it) => it.outcome?.status !== 202);
    const unknown = (it: Item) => (it.outcome as { outcomeUnknown?: boolean }).outcomeUnknown === true;
    const claim = (it: Item) => ({
      key: this.idemKey(it.env.idempotencyKey ?? ''),
      token: it.token ?? '',
      value: it.env.id,
      ...(unknown(it) || it.reclaimed ? { uncertainId: it.env.id } : {}),
    });
    const warn = (what: string) => (err: Error) => this.log.warn({ err: err.message }, what);
    const { idempotency, status } = this.deps;
    await Promise.all([
      idempotency.confirm(ok.filter((it) => it.token).map(claim)).catch(warn('could not confirm idempotency keys')),
      idempotency.release(failed.filter((it) => it.token).map(claim)).catch(warn('could not release idempotency keys')),
      ...failed.filter((it) => !unknown(it)).map((it) => status.forget(it.env.id).catch(warn('could not drop status record'))),
    ]);
  }

  /** A duplicate's answer says where its first message is now. */
  private async fillCurrent(out: Outcome[]): Promise<void> {
    await Promise.all(
      out.map(async (o) => {
        if (o.status !== 200) return;
        o.current = await this.deps.status.current(o.id).catch(() => null);
      }),
    );
  }
}

/** The items of a request; a repeat of an idempotency key earlier in the request points at its first. */
function itemsOf(requests: Array<{ request: SendRequest; correlationId?: string }>, now: number): Item[] {
  const firstByKey = new Map<string, Item>();
  return requests.map(({ request, correlationId }) => {
    const item: Item = { env: envelopeFor(request, correlationId), delayMs: request.sendAt ? Date.parse(request.sendAt) - now : 0 };
    const k = request.idempotencyKey;
    if (k === undefined) return item;
    const first = firstByKey.get(k);
    if (first) item.repeats = first;
    else firstByKey.set(k, item);
    return item;
  });
}

function scheduleFailure(err: Error): Outcome {
  const error = err instanceof ReplicaAckError ? 'scheduled send not replicated in time (Redis)' : 'scheduled-send queue unavailable (Redis)';
  return { status: 503, error, ...(mayHaveLanded(err) ? { outcomeUnknown: true } : {}) };
}

/**
 * A Redis write that timed out may still land (the add was sent, or BullMQ sends it once ready);
 * one that fewer replicas than REDIS_WAIT_REPLICAS acknowledged is on the primary and may or may
 * not outlive a failover. Either way the retry must reuse the id (the claim becomes uncertain).
 */
function mayHaveLanded(err: Error): boolean {
  return err instanceof DeadlineError || err instanceof ReplicaAckError || isCommandTimeout(err);
}

function copyAsDuplicate(first: Outcome): Outcome {
  if (first.status === 202) return { status: 200, state: 'duplicate', id: first.id, current: null };
  return { ...first };
}
