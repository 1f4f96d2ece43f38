/**
 * Publishes the events of one webhook delivery and decides whether Meta may consider it delivered.
 * Meta retries a delivery until it gets a 200, so every event is claimed first (wamid, or wamid +
 * status, for WEBHOOK_DEDUP_TTL_S): a retry of an event already in the broker is dropped, a retry of
 * one still being published elsewhere is not (it gets a 503 and comes back), and the claims of events
 * whose publish failed are released so that Meta's retry publishes them.
 */
import { randomBytes } from 'node:crypto';
import { publishToStage } from '../../shared/amqp/publish.js';
import type { Logger } from '../../shared/platform/logger.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { IngressMetrics } from './metrics.js';
import type { StatusStore } from '../../shared/domain/status.js';
import { UnavailableError, type Admission } from './admission.js';
import type { Claims } from './claims.js';
import type { WebhookEvent } from './webhook-events.js';

export interface IntakeResult {
  published: number;
  duplicates: number;
}

export interface IntakeDeps {
  rt: Runtime<IngressMetrics>;
  admission: Admission;
  claims: Claims;
  status: StatusStore;
}

const DONE = 'd';

export class WebhookIntake {
  private readonly log: Logger;

  constructor(private readonly deps: IntakeDeps) {
    this.log = deps.rt.log.child({ component: 'webhook' });
  }

  private key(dedupKey: string): string {
    return this.deps.rt.keys('webhook-seen', dedupKey);
  }

  /** Resolves when every new event is confirmed by the broker; throws UnavailableError otherwise. */
  async take(events: WebhookEvent[]): Promise<IntakeResult> {
    if (events.length === 0) return { published: 0, duplicates: 0 };
    const { rt, admission, claims, status } = this.deps;
    admission.checkBroker();
    const lease = admission.acquire(events.length);
    try {
      const keys = events.map((e) => this.key(e.dedupKey));
      const results = await claims.tryClaim(keys, randomBytes(6).toString('hex')).catch((err: Error) => {
        throw new UnavailableError(`webhook dedup unavailable (Redis): ${err.message}`, 'redis', { cause: err });
      });
      const fresh = events.map((_, i) => i).filter((i) => results[i].kind === 'claimed');
      const duplicates = results.filter((r) => r.kind === 'done').length;
      const busy = results.filter((r) => r.kind === 'busy').length;
      rt.metrics.duplicatesDropped.inc({ stage: 'ingress' }, duplicates);
      // Beside the publishes, as for sends (accept.ts recordAccepted): a Redis that stopped answering
      // after the claims costs its command timeout while the publishes are under way, not before.
      const recorded = Promise.all(
        fresh
          .filter((i) => events[i].env.kind === 'inbound')
          .map((i) => status.record(events[i].env.id, 'accepted').catch((err: Error) => this.log.warn({ err: err.message }, 'could not record status'))),
      );
      const settled = await Promise.allSettled(fresh.map((i) => publishToStage(rt, 'dispatch', events[i].env)));
      await recorded;
      const claimOf = (i: number, n: number) => {
        const r = results[i];
        return { key: keys[i], token: r.kind === 'claimed' ? r.token : '', value: DONE, n };
      };
      const ok = fresh.map(claimOf).filter(({ n }) => settled[n].status === 'fulfilled');
      const failed = fresh.map(claimOf).filter(({ n }) => settled[n].status === 'rejected');
      for (const { n } of ok) {
        const env = events[fresh[n]].env;
        rt.metrics.accepted.inc({ kind: env.kind, lane: (settled[n] as PromiseFulfilledResult<string>).value });
      }
      await this.settle(
        ok,
        failed,
        fresh.map((i) => events[i]),
      );
      if (failed.length > 0) {
        const first = (settled[failed[0].n] as PromiseRejectedResult).reason as Error;
        throw new UnavailableError(`${failed.length} of ${events.length} events not confirmed by the broker: ${first.message}`, 'nack', { cause: first });
      }
      if (busy > 0) throw new UnavailableError(`${busy} events are being published by another request`, 'capacity');
      return { published: ok.length, duplicates };
    } finally {
      lease.release();
    }
  }

  /** Marks what got in; frees what did not (a failed release leaves a claim that goes stale, never a lost event). */
  private async settle(
    ok: Array<{ key: string; token: string; value: string }>,
    failed: Array<{ key: string; token: string; n: number }>,
    fresh: WebhookEvent[],
  ): Promise<void> {
    const warn = (what: string) => (err: Error) => this.log.warn({ err: err.message }, what);
    await Promise.all([
      this.deps.claims.confirm(ok).catch(warn('could not mark webhook events seen')),
      this.deps.claims.release(failed).catch(warn('could not release webhook events')),
      ...failed
        .filter(({ n }) => fresh[n].env.kind === 'inbound')
        .map(({ n }) => this.deps.status.forget(fresh[n].env.id).catch(warn('could not drop status record'))),
    ]);
  }
}
