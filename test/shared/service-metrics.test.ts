/**
 * Each service declares its own metrics (issue #31): a service's registry holds the metrics every
 * service has (shared/platform/metrics.ts), the stage workers' (shared/stage/metrics.ts) for the
 * dispatcher and the sender, and its own — no other service's. Fails if the classes are merged back
 * into one, or a service is started with another's.
 */
import { expect } from 'chai';
import { request } from 'undici';
import { startIngress, type Ingress } from '../../services/ingress/service.js';
import { Metrics } from '../../shared/platform/metrics.js';
import { StageMetrics } from '../../shared/stage/metrics.js';
import { read } from '../docs/repo-files.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { SERVICE_METRICS } from '../support/service-metrics.js';

const EVERY_SERVICE = ['postmaster_published_total', 'postmaster_unroutable_total', 'postmaster_unhealthy_seconds'];
const STAGE_WORKER = [
  'postmaster_consumed_total',
  'postmaster_in_flight',
  'postmaster_retried_total',
  'postmaster_dead_lettered_total',
  'postmaster_shards_owned',
  'postmaster_shard_leases_lost_total',
  'postmaster_held_users',
  'postmaster_oldest_hold_age_seconds',
  'postmaster_dlq_waiting_users',
  'postmaster_dlq_oldest_wait_seconds',
  'postmaster_holds_healed_total',
  'postmaster_urgent_hold_seconds_total',
];

/** What each service exports besides prom-client's process metrics. */
const EXPECTED: Record<keyof typeof SERVICE_METRICS, string[]> = {
  ingress: [
    ...EVERY_SERVICE,
    'postmaster_accepted_total',
    'postmaster_publish_failures_total',
    'postmaster_rejected_requests_total',
    'postmaster_in_flight',
    'postmaster_duplicates_dropped_total',
  ],
  dispatcher: [...EVERY_SERVICE, ...STAGE_WORKER, 'postmaster_handler_latency_seconds'],
  sender: [
    ...EVERY_SERVICE,
    ...STAGE_WORKER,
    'postmaster_duplicates_dropped_total',
    'postmaster_sent_total',
    'postmaster_window_fallbacks_total',
    'postmaster_messaging_limit_total',
    'postmaster_end_to_end_seconds',
    'postmaster_provider_latency_seconds',
    'postmaster_rate_limit_waits_total',
    'postmaster_rate_limit_wait_seconds',
    'postmaster_send_rate_per_second',
  ],
  'dlq-replayer': [
    ...EVERY_SERVICE,
    'postmaster_replayed_total',
    'postmaster_replay_scanned_total',
    'postmaster_replay_wait_seconds_total',
    'postmaster_replay_jobs_total',
    'postmaster_replay_pass_progress_ratio',
  ],
};

async function ownNames(m: Metrics): Promise<string[]> {
  return (await m.registry.getMetricsAsJSON()).map((x) => x.name).filter((n) => !n.startsWith('postmaster_process_'));
}

describe('metrics: each service declares its own', function () {
  this.timeout(60_000);

  for (const [service, Class] of Object.entries(SERVICE_METRICS)) {
    it(`the ${service}'s registry holds every service's metrics, and its own, no other service's`, async () => {
      const names = await ownNames(new Class(service));
      expect(names).to.have.members(EXPECTED[service as keyof typeof SERVICE_METRICS]);
      expect(new Set(names).size, 'each metric once').to.equal(names.length);
    });

    it(`services/${service}/service.ts starts its runtime with ${Class.name}`, () => {
      expect(read(`services/${service}/service.ts`)).to.match(new RegExp(`createRuntime\\(cfg, \\{ service: '${service}', metrics: ${Class.name}\\b`));
    });
  }

  it('the base and the stage workers hold only their own layer', async () => {
    expect(await ownNames(new Metrics('base'))).to.have.members(EVERY_SERVICE);
    expect(await ownNames(new StageMetrics('stage'))).to.have.members([...EVERY_SERVICE, ...STAGE_WORKER]);
  });

  it('a metric two services export has one help text and one set of labels', async () => {
    const seen = new Map<string, string>();
    for (const [service, Class] of Object.entries(SERVICE_METRICS)) {
      // prom-client keeps a metric's labelNames on the metric object, not in its JSON.
      for (const m of new Class(service).registry.getMetricsAsArray() as Array<{ name: string; help: string; labelNames?: string[] }>) {
        const shape = JSON.stringify({ kind: m.constructor.name, help: m.help, labels: m.labelNames ?? [] });
        expect(seen.get(m.name) ?? shape, `${m.name} in the ${service}`).to.equal(shape);
        seen.set(m.name, shape);
      }
    }
  });

  describe("the ingress's /metrics", () => {
    let iso: Isolation;
    let ingress: Ingress;
    before(async () => {
      iso = await isolate('service-metrics');
      ingress = await startIngress(iso.config());
    });
    after(async () => {
      await ingress?.close();
      await iso?.cleanup();
    });

    it('carries its own metrics and no replay, send or stage-worker counters', async () => {
      const res = await request(`http://127.0.0.1:${ingress.metricsPort}/metrics`);
      const body = await res.body.text();
      expect(res.statusCode).to.equal(200);
      const names = new Set([...body.matchAll(/^# TYPE (postmaster_\S+)/gm)].map((m) => m[1]).filter((n) => !n.startsWith('postmaster_process_')));
      expect([...names]).to.have.members(EXPECTED.ingress);
      expect(body).to.not.match(/^postmaster_(replay|replayed|sent|consumed|retried|dead_lettered|held)_/m);
    });
  });
});
