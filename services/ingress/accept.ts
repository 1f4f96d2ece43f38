/**
 * Accepting send requests (one, or a batch in one confirm round): idempotency claims, the status
 * record, then either the BullMQ delayed queue (sendAt in the future) or the dispatch lanes — and
 * only what the broker (or Redis, for scheduled sends) confirmed is answered 202.
 */
import { newEnvelope, type Envelope, type Priority } from '../../shared/envelope.js';
import { UnencodableMessageError } from '../../shared/broker.js';
import { publishToStage } from '../../shared/publish.js';
import { DeadlineError, ReplicaAckError, withDeadline } from '../../shared/redis.js';
import type { Logger } from '../../shared/logger.js';
import type { Runtime } from '../../shared/runtime.js';
import type { MessageStatus, StatusStore } from '../../shared/status.js';
import type { Lane } from '../../shared/topology/names.js';
import type { ScheduledSends } from '../dispatcher/schedule-queue.js';
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
  rt: Runtime;
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

interface Plan {
  env: Envelope;
  /** Milliseconds until sendAt, > 0 for a scheduled send. */
  delayMs: number;
  /** Index of an earlier item of the same batch with the same idempotency key. */
  dupOf?: number;
  token?: string;
  /** The key's earlier publish may have got in: this one reuses its id and never frees the key. */
  reclaimed?: boolean;
}

export class Acceptor {
  private readonly log: Logger;

  constructor(private readonly d: AcceptDeps) {
    this.log = d.rt.log.child({ component: 'accept' });
  }

  private idemKey(k: string): string {
    return this.d.rt.keys('idem', k);
  }

  /**
   * Accepts valid requests; the outcomes are in the same order. Throws UnavailableError (503 for the
   * whole request) when the broker cannot take publishes or the ingress is at capacity.
   */
  async accept(items: Array<{ request: SendRequest; correlationId?: string }>): Promise<Outcome[]> {
    const now = Date.now();
    const firstByKey = new Map<string, number>();
    const plans: Plan[] = items.map(({ request, correlationId }, i) => {
      const env = envelopeFor(request, correlationId);
      const plan: Plan = { env, delayMs: request.sendAt ? Date.parse(request.sendAt) - now : 0 };
      const k = request.idempotencyKey;
      if (k !== undefined && firstByKey.has(k)) plan.dupOf = firstByKey.get(k);
      else if (k !== undefined) firstByKey.set(k, i);
      return plan;
    });
    const immediate = plans.filter((p) => p.dupOf === undefined && p.delayMs <= 0).length;
    if (immediate > 0) this.d.admission.checkBroker();
    const lease = this.d.admission.acquire(immediate);
    try {
      const out: Array<Outcome | undefined> = new Array(plans.length);
      await this.claim(plans, out);
      const go = plans.map((_, i) => i).filter((i) => out[i] === undefined && plans[i].dupOf === undefined);
      // The `accepted` records go out beside the publishes, not before them: one Redis round trip
      // less on every request's path (see recordAccepted). Awaited before settleClaims, which
      // forgets the records of the messages that were not published.
      const recorded = this.recordAccepted(go.map((i) => plans[i]));
      await this.deliver(go, plans, out);
      await recorded;
      await this.settleClaims(go, plans, out);
      for (let i = 0; i < plans.length; i++) {
        const first = plans[i].dupOf;
        if (first !== undefined) out[i] = copyAsDuplicate(out[first]!);
      }
      await this.fillCurrent(out as Outcome[]);
      return out as Outcome[];
    } finally {
      lease.release();
    }
  }

  /** Idempotency claims of the first item of each key (repeats inside the batch copy its outcome). */
  private async claim(plans: Plan[], out: Array<Outcome | undefined>): Promise<void> {
    await Promise.all(
      plans.map(async (p, i) => {
        const key = p.env.idempotencyKey;
        if (key === undefined || p.dupOf !== undefined) return;
        try {
          const c = await this.d.idempotency.claim(this.idemKey(key), p.env.id, p.env.id);
          if (c.kind === 'done') out[i] = { status: 200, state: 'duplicate', id: c.value, current: null };
          else p.token = c.token;
          if (c.kind === 'reclaimed') {
            p.env.id = c.id;
            p.reclaimed = true;
          }
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'idempotency claim failed');
          out[i] = { status: 503, error: 'idempotency keys unavailable (Redis)' };
        }
      }),
    );
  }

  /**
   * Advisory, never rejects. Written while the publishes are under way: the command leaves on this
   * process's Redis connection before the broker can have routed, stored and delivered the message
   * and the dispatcher recorded `dispatched`, and should a stall ever let `dispatched` land first,
   * the record only moves forward (shared/status.ts): this `accepted` is then dropped as stale and
   * the status is right, only its history lacks the entry.
   */
  private async recordAccepted(plans: Plan[]): Promise<void> {
    await Promise.all(
      plans.map((p) => {
        const rec =
          p.delayMs > 0
            ? this.d.status.record(p.env.id, 'scheduled', { sendAt: p.env.sendAt, ttlS: Math.ceil(p.delayMs / 1000) + this.d.rt.cfg.statusTtlS })
            : this.d.status.record(p.env.id, 'accepted');
        return rec.catch((err: Error) => this.log.warn({ err: err.message, messageId: p.env.id }, 'could not record status'));
      }),
    );
  }

  /** Publishes the immediate ones and schedules the rest, then awaits every confirm at once. */
  private async deliver(go: number[], plans: Plan[], out: Array<Outcome | undefined>): Promise<void> {
    const scheduled = go.filter((i) => plans[i].delayMs > 0);
    const immediate = go.filter((i) => plans[i].delayMs <= 0);
    const [sched, published] = await Promise.all([
      scheduled.length === 0
        ? Promise.resolve<Error | null>(null)
        : this.schedule(scheduled.map((i) => plans[i].env)).then(() => null, (err: Error) => err),
      Promise.allSettled(immediate.map((i) => publishToStage(this.d.rt, 'send', plans[i].env))),
    ]);
    for (const i of scheduled) {
      const env = plans[i].env;
      if (sched) {
        this.log.warn({ err: sched.message }, 'could not schedule');
        const error = sched instanceof ReplicaAckError ? 'scheduled send not replicated in time (Redis)' : 'scheduled-send queue unavailable (Redis)';
        out[i] = { status: 503, error, ...(mayHaveLanded(sched) ? { outcomeUnknown: true } : {}) };
      } else {
        this.d.rt.metrics.accepted.inc({ kind: env.kind, lane: 'scheduled' });
        out[i] = { status: 202, state: 'scheduled', id: env.id, sendAt: env.sendAt!, priority: env.priority };
      }
    }
    immediate.forEach((i, n) => {
      const env = plans[i].env;
      const r = published[n];
      if (r.status === 'fulfilled') {
        this.d.rt.metrics.accepted.inc({ kind: env.kind, lane: r.value });
        out[i] = { status: 202, state: 'accepted', id: env.id, lane: r.value, priority: env.priority };
      } else {
        const err = r.reason as Error & { reason?: string; outcomeUnknown?: boolean };
        if (err instanceof UnencodableMessageError) {
          this.log.error({ err: err.message, messageId: env.id }, 'a validated request could not be encoded for AMQP');
          out[i] = { status: 400, error: err.message };
          return;
        }
        this.d.rt.metrics.publishFailures.inc({ reason: err.reason ?? 'unknown' });
        out[i] = { status: 503, error: err.message, ...(err.outcomeUnknown ? { outcomeUnknown: true } : {}) };
      }
    });
  }

  /**
   * BullMQ waits for its connection to be ready before it sends anything, and a Redis that accepts
   * connections but never answers never gets ready: no command timeout covers that wait, this does.
   */
  private schedule(envs: Envelope[]): Promise<void> {
    return withDeadline(this.d.schedule.add(envs), this.d.rt.cfg.redisCommandTimeoutMs, 'scheduled-send queue');
  }

  /**
   * Confirms the claims of accepted messages and releases the others — but a claim whose message may
   * be in the broker (outcome unknown, or an earlier attempt's was) stays tied to its id, and its
   * status record stays.
   */
  private async settleClaims(go: number[], plans: Plan[], out: Array<Outcome | undefined>): Promise<void> {
    const ok = go.filter((i) => out[i]?.status === 202);
    const failed = go.filter((i) => out[i]?.status !== 202);
    const unknown = (i: number) => (out[i] as { outcomeUnknown?: boolean }).outcomeUnknown === true;
    const claim = (i: number) => ({
      key: this.idemKey(plans[i].env.idempotencyKey ?? ''),
      token: plans[i].token ?? '',
      value: plans[i].env.id,
      ...(unknown(i) || plans[i].reclaimed ? { uncertainId: plans[i].env.id } : {}),
    });
    const warn = (what: string) => (err: Error) => this.log.warn({ err: err.message }, what);
    await Promise.all([
      this.d.idempotency.confirm(ok.filter((i) => plans[i].token).map(claim)).catch(warn('could not confirm idempotency keys')),
      this.d.idempotency.release(failed.filter((i) => plans[i].token).map(claim)).catch(warn('could not release idempotency keys')),
      ...failed.filter((i) => !unknown(i)).map((i) => this.d.status.forget(plans[i].env.id).catch(warn('could not drop status record'))),
    ]);
  }

  /** A duplicate's answer says where its first message is now. */
  private async fillCurrent(out: Outcome[]): Promise<void> {
    await Promise.all(
      out.map(async (o) => {
        if (o.status !== 200) return;
        o.current = await this.d.status.current(o.id).catch(() => null);
      }),
    );
  }
}

/**
 * A Redis write that timed out may still land (the add was sent, or BullMQ sends it once ready);
 * one that fewer replicas than REDIS_WAIT_REPLICAS acknowledged is on the primary and may or may
 * not outlive a failover. Either way the retry must reuse the id (the claim becomes uncertain).
 */
function mayHaveLanded(err: Error): boolean {
  return err instanceof DeadlineError || err instanceof ReplicaAckError || err.message === 'Command timed out';
}

function copyAsDuplicate(first: Outcome): Outcome {
  if (first.status === 202) return { status: 200, state: 'duplicate', id: first.id, current: null };
  return { ...first };
}
