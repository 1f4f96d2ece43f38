/**
 * Prometheus metrics (`postmaster_` prefix). One registry per service instance, so that
 * tests can run several services in one process.
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Health } from './health.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

export class Metrics {
  readonly registry = new Registry();
  readonly accepted: Counter<'kind' | 'lane'>;
  readonly published: Counter<'exchange'>;
  readonly publishFailures: Counter<'reason'>;
  readonly unroutable: Counter<'exchange'>;
  readonly unhealthy: Gauge<'check'>;
  readonly consumed: Counter<'stage' | 'lane'>;
  readonly sent: Counter<'outcome' | 'code' | 'number'>;
  readonly windowFallbacks: Counter<'reason'>;
  readonly messagingLimit: Counter<'portfolio' | 'outcome'>;
  readonly retried: Counter<'stage' | 'tier' | 'class'>;
  readonly deadLettered: Counter<'stage' | 'class' | 'code'>;
  readonly endToEnd: Histogram<'lane'>;
  readonly providerLatency: Histogram<'outcome'>;
  readonly handlerLatency: Histogram<'outcome'>;
  readonly inFlight: Gauge<'stage'>;
  readonly shardsOwned: Gauge<'stage'>;
  readonly shardLeasesLost: Counter<'stage'>;
  readonly heldUsers: Gauge<'stage'>;
  readonly oldestHoldAge: Gauge<'stage'>;
  readonly dlqWaitingUsers: Gauge<'stage'>;
  readonly dlqOldestWait: Gauge<'stage'>;
  readonly holdsHealed: Counter<'stage' | 'reason'>;
  readonly urgentHoldSeconds: Counter<'stage'>;
  readonly tokensWaited: Counter<'limit'>;
  readonly throttleWaitSeconds: Histogram<'limit'>;
  readonly replayed: Counter<'job'>;
  readonly duplicatesDropped: Counter<'stage'>;
  readonly rejectedRequests: Counter<'route' | 'status'>;
  readonly sendRate: Gauge<'number'>;
  readonly replayScanned: Counter<'action' | 'outcome'>;
  readonly replayWaitSeconds: Counter<'reason'>;
  readonly replayJobs: Counter<'action' | 'outcome'>;
  readonly replayPassProgress: Gauge<'action'>;

  constructor(service: string) {
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry, prefix: 'postmaster_process_' });
    const r = [this.registry];
    this.accepted = new Counter({
      name: 'postmaster_accepted_total',
      help: 'Messages accepted by the ingress (broker-confirmed).',
      labelNames: ['kind', 'lane'],
      registers: r,
    });
    this.published = new Counter({
      name: 'postmaster_published_total',
      help: 'Messages published and confirmed, by exchange.',
      labelNames: ['exchange'],
      registers: r,
    });
    this.publishFailures = new Counter({
      name: 'postmaster_publish_failures_total',
      help: 'Publishes that were not confirmed.',
      labelNames: ['reason'],
      registers: r,
    });
    this.unroutable = new Counter({
      name: 'postmaster_unroutable_total',
      help: 'Publishes that reached no queue (a binding or queue is missing) and were refused, by exchange.',
      labelNames: ['exchange'],
      registers: r,
    });
    this.unhealthy = new Gauge({
      name: 'postmaster_unhealthy_seconds',
      help: 'How long a health check has been failing (0 while it passes): publish, consume, event-loop.',
      labelNames: ['check'],
      registers: r,
    });
    this.consumed = new Counter({ name: 'postmaster_consumed_total', help: 'Deliveries taken from a lane.', labelNames: ['stage', 'lane'], registers: r });
    this.sent = new Counter({
      name: 'postmaster_sent_total',
      help: 'Provider calls by outcome, Cloud API code and business number (phone number id).',
      labelNames: ['outcome', 'code', 'number'],
      registers: r,
    });
    this.windowFallbacks = new Counter({
      name: 'postmaster_window_fallbacks_total',
      help: "Free-form messages sent as their fallbackTemplate because the customer-service window was closed: by our check (window-closed) or the Cloud API's 131047.",
      labelNames: ['reason'],
      registers: r,
    });
    this.messagingLimit = new Counter({
      name: 'postmaster_messaging_limit_total',
      help: "Business-initiated sends checked against their portfolio's messaging limit: admitted or refused.",
      labelNames: ['portfolio', 'outcome'],
      registers: r,
    });
    this.retried = new Counter({
      name: 'postmaster_retried_total',
      help: 'Messages sent to a retry tier.',
      labelNames: ['stage', 'tier', 'class'],
      registers: r,
    });
    this.deadLettered = new Counter({
      name: 'postmaster_dead_lettered_total',
      help: 'Messages dead-lettered by class and code.',
      labelNames: ['stage', 'class', 'code'],
      registers: r,
    });
    this.endToEnd = new Histogram({
      name: 'postmaster_end_to_end_seconds',
      help: 'Accept → provider 2xx.',
      labelNames: ['lane'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.providerLatency = new Histogram({
      name: 'postmaster_provider_latency_seconds',
      help: 'Cloud API call latency.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.handlerLatency = new Histogram({
      name: 'postmaster_handler_latency_seconds',
      help: 'Bot handler call latency.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.inFlight = new Gauge({ name: 'postmaster_in_flight', help: 'Deliveries being worked on.', labelNames: ['stage'], registers: r });
    this.shardsOwned = new Gauge({ name: 'postmaster_shards_owned', help: 'Shards this replica consumes.', labelNames: ['stage'], registers: r });
    this.shardLeasesLost = new Counter({
      name: 'postmaster_shard_leases_lost_total',
      help: 'Shard leases that ran out while this replica held them (it stalled for longer than LEASE_TTL_MS, or Redis did).',
      labelNames: ['stage'],
      registers: r,
    });
    this.heldUsers = new Gauge({
      name: 'postmaster_held_users',
      help: "Users whose ordered lane waits behind a retrying message (strict mode), on this replica's shards.",
      labelNames: ['stage'],
      registers: r,
    });
    this.oldestHoldAge = new Gauge({
      name: 'postmaster_oldest_hold_age_seconds',
      help: "How long the longest-waiting held user (strict mode) of this replica's shards has waited for its current head; 0 without holds.",
      labelNames: ['stage'],
      registers: r,
    });
    this.dlqWaitingUsers = new Gauge({
      name: 'postmaster_dlq_waiting_users',
      help: 'Users whose later messages wait behind a dead letter until it is replayed or purged (DLQ_ORDERING_MODE=strict), fleet-wide: every worker replica reports the same value (use max).',
      labelNames: ['stage'],
      registers: r,
    });
    this.dlqOldestWait = new Gauge({
      name: 'postmaster_dlq_oldest_wait_seconds',
      help: 'How long the longest-waiting user has waited behind a dead letter (DLQ_ORDERING_MODE=strict), fleet-wide (use max); 0 without.',
      labelNames: ['stage'],
      registers: r,
    });
    this.holdsHealed = new Counter({
      name: 'postmaster_holds_healed_total',
      help: "Messages a held user stopped waiting for: lost (its retry copy never came back), sent, dead-lettered, unknown (no status record), expired (the whole hold's TTL ran out).",
      labelNames: ['stage', 'reason'],
      registers: r,
    });
    this.urgentHoldSeconds = new Counter({
      name: 'postmaster_urgent_hold_seconds_total',
      help: 'Time this replica held back its ordered lanes because an urgent message was in flight (URGENT_HOLD_MS).',
      labelNames: ['stage'],
      registers: r,
    });
    this.tokensWaited = new Counter({
      name: 'postmaster_rate_limit_waits_total',
      help: 'Sends that waited for a rate-limit token.',
      labelNames: ['limit'],
      registers: r,
    });
    this.throttleWaitSeconds = new Histogram({
      name: 'postmaster_rate_limit_wait_seconds',
      help: 'Time spent waiting for a rate-limit token.',
      labelNames: ['limit'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.replayed = new Counter({ name: 'postmaster_replayed_total', help: 'Dead letters republished by replay jobs.', labelNames: ['job'], registers: r });
    this.duplicatesDropped = new Counter({
      name: 'postmaster_duplicates_dropped_total',
      help: 'Redeliveries or repeats dropped by dedup.',
      labelNames: ['stage'],
      registers: r,
    });
    this.rejectedRequests = new Counter({
      name: 'postmaster_rejected_requests_total',
      help: 'HTTP requests rejected by the ingress.',
      labelNames: ['route', 'status'],
      registers: r,
    });
    this.sendRate = new Gauge({
      name: 'postmaster_send_rate_per_second',
      help: "Sends per second the sender's limiter allows now for a business number: the configured rate times the AIMD factor, 0 while the provider's penalty holds.",
      labelNames: ['number'],
      registers: r,
    });
    this.replayScanned = new Counter({
      name: 'postmaster_replay_scanned_total',
      help: 'Dead letters a replay or purge pass went over, by outcome (replayed, purged, kept, duplicate, unroutable).',
      labelNames: ['action', 'outcome'],
      registers: r,
    });
    this.replayWaitSeconds = new Counter({
      name: 'postmaster_replay_wait_seconds_total',
      help: 'Time replay jobs spent waiting: for their --rate (rate) or for the live lanes to drain (backlog).',
      labelNames: ['reason'],
      registers: r,
    });
    this.replayJobs = new Counter({
      name: 'postmaster_replay_jobs_total',
      help: 'Replay and purge jobs finished, by outcome (completed, cancelled, failed, empty).',
      labelNames: ['action', 'outcome'],
      registers: r,
    });
    this.replayPassProgress = new Gauge({
      name: 'postmaster_replay_pass_progress_ratio',
      help: 'Share of the DLQ snapshot the running pass has gone over (0 when none runs).',
      labelNames: ['action'],
      registers: r,
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * A tiny HTTP server on METRICS_PORT for every service, the ingress included: /metrics, /healthz
 * (liveness), /readyz (readiness), the last two with the failing checks in the body
 * (shared/platform/health.ts). Never on a public port: the bodies name internal failures.
 * Plain node:http rather than express: three fixed routes need no framework.
 */
export async function serveMetrics(
  metrics: Metrics,
  port: number,
  health: Pick<Health, 'readiness' | 'liveness'>,
  host = '0.0.0.0',
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics') {
      metrics.render().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (path === '/healthz' || path === '/readyz') {
      const r = path === '/healthz' ? health.liveness() : health.readiness();
      const body = path === '/healthz' ? { status: r.ok ? 'ok' : 'stuck', failing: r.failing } : { ready: r.ok, failing: r.failing };
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  let closing: Promise<void> | null = null;
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
