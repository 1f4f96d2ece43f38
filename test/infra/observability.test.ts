import { expect } from 'chai';
import { request } from 'undici';
import { RUNBOOK_BASE } from '../../scripts/gen-prometheus-rule.js';
import { loadConfig } from '../../shared/platform/config.js';
import { SenderMetrics } from '../../services/sender/metrics.js';
import { fleetMetrics } from '../support/service-metrics.js';
import { read, yamlDocs, yamlFile, type Doc } from './repo.js';

const DIR = 'infra/observability';

/** Names a scrape of some service would show: counters as named, histograms with their series. */
async function exportedNames(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const metric of await fleetMetrics()) {
    out.add(metric.name);
    if (String(metric.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(metric.name + s);
  }
  return out;
}

/**
 * Exported metrics that are on no dashboard panel, each with why. Everything else the services
 * export (their services/<name>/metrics.ts over shared/stage/metrics.ts and shared/platform/metrics.ts,
 * and prom-client's default process metrics under postmaster_process_;
 * the simulator exports none) must be on a panel: the test below fails otherwise, and fails on an
 * entry here that is no longer exported or is on a panel after all.
 */
const NOT_ON_THE_DASHBOARD: Record<string, string> = {
  postmaster_process_process_cpu_user_seconds_total: 'the user part of process_cpu_seconds_total, which "CPU per replica" shows',
  postmaster_process_process_cpu_system_seconds_total: 'the system part of process_cpu_seconds_total, which "CPU per replica" shows',
  postmaster_process_process_heap_bytes: 'the process heap as the OS sees it; resident memory and the V8 heap are shown',
  postmaster_process_process_virtual_memory_bytes: 'virtual size says nothing about memory pressure; resident memory is shown',
  postmaster_process_process_max_fds: 'a limit fixed at start; open file descriptors are shown',
  postmaster_process_nodejs_active_handles_total: 'the sum of active_handles over its types, which is shown',
  postmaster_process_nodejs_active_requests: 'libuv requests in flight are short-lived; handles show a leak',
  postmaster_process_nodejs_active_requests_total: 'the sum of active_requests, left out with it',
  postmaster_process_nodejs_active_resources: 'the union of handles and requests by type; handles are shown',
  postmaster_process_nodejs_active_resources_total: 'the sum of active_resources, left out with it',
  postmaster_process_nodejs_eventloop_lag_seconds: 'one sample of the lag; its p99 over the interval is shown',
  postmaster_process_nodejs_eventloop_lag_min_seconds: 'another summary of the lag whose p99 is shown',
  postmaster_process_nodejs_eventloop_lag_max_seconds: 'another summary of the lag whose p99 is shown (the max is one outlier)',
  postmaster_process_nodejs_eventloop_lag_mean_seconds: 'another summary of the lag whose p99 is shown',
  postmaster_process_nodejs_eventloop_lag_stddev_seconds: 'another summary of the lag whose p99 is shown',
  postmaster_process_nodejs_eventloop_lag_p50_seconds: 'another summary of the lag whose p99 is shown',
  postmaster_process_nodejs_eventloop_lag_p90_seconds: 'another summary of the lag whose p99 is shown',
  postmaster_process_nodejs_external_memory_bytes: 'buffers outside the V8 heap, inside the resident memory that is shown',
  postmaster_process_nodejs_heap_space_size_total_bytes: 'the V8 heap by space; the whole heap is shown',
  postmaster_process_nodejs_heap_space_size_used_bytes: 'the V8 heap by space; the whole heap is shown',
  postmaster_process_nodejs_heap_space_size_available_bytes: 'the V8 heap by space; the whole heap is shown',
  postmaster_process_nodejs_version_info: 'a constant carrying the Node.js version as labels, for ad-hoc queries',
};

/** Every metric-looking identifier a PromQL expression uses, with the given prefix. */
function metricsIn(expr: string, prefix: string): string[] {
  return [...expr.matchAll(new RegExp(`\\b(${prefix}[a-z0-9_]*)\\b`, 'g'))].map((m) => m[1]);
}

/** GitHub's heading anchors of a Markdown file. */
function anchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
      m[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s-]/gu, '').replace(/\s/g, '-'),
    ),
  );
}

describe('observability (infra/observability)', () => {
  const alerts = yamlFile(`${DIR}/prometheus/alerts.yml`);
  const rules = (alerts.groups as Doc[]).flatMap((g) => g.rules as Doc[]);
  const dashboard = JSON.parse(read(`${DIR}/grafana/dashboards/postmaster.json`)) as Doc;
  const panels = (dashboard.panels as Doc[]).filter((p) => p.type !== 'row');
  const exprs = [...rules.map((r) => String(r.expr)), ...panels.flatMap((p) => (p.targets as Doc[]).map((t) => String(t.expr)))];

  it('alert on a growing DLQ, a consumer-less shard, the end-to-end latency SLO and broker alarms', () => {
    const alert = (name: string) => rules.find((r) => r.alert === name);
    expect(alert('PostmasterDLQGrowing')?.expr).to.include('postmaster.dlq');
    expect(alert('PostmasterShardWithoutConsumer')?.expr).to.match(/rabbitmq_detailed_queue_consumers.*== 0/);
    const slo = rules.filter((r) => r.record?.startsWith('postmaster:e2e_slow_ratio'));
    expect(slo.length).to.be.at.least(2);
    for (const r of slo) expect(r.expr).to.include('postmaster_end_to_end_seconds_bucket');
    expect(rules.filter((r) => /^PostmasterLatencySLO/.test(r.alert ?? ''))).to.have.length(2);
    expect(alert('RabbitMQMemoryAlarm')?.expr).to.include('rabbitmq_alarms_memory_used_watermark');
  });

  it('give every alert a severity, a summary and a full runbook_url to a section of docs/OPERATIONS.md that exists', () => {
    const sections = anchors(read('docs/OPERATIONS.md'));
    expect(RUNBOOK_BASE).to.match(/^https:\/\/github\.com\/[^/]+\/[^/]+\/blob\/[^/]+\/docs\/OPERATIONS\.md$/);
    for (const r of rules.filter((x) => x.alert)) {
      expect(['critical', 'warning'], r.alert).to.include(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).to.be.a('string');
      expect(r.annotations?.runbook, `${r.alert}: runbook_url, not a relative runbook`).to.equal(undefined);
      const [base, anchor] = String(r.annotations?.runbook_url).split('#');
      expect(base, r.alert).to.equal(RUNBOOK_BASE);
      expect(sections.has(anchor), `${r.alert}: docs/OPERATIONS.md#${anchor}`).to.equal(true);
    }
  });

  it('use only metrics the services export (services/<name>/metrics.ts) and recording rules defined here', async () => {
    const known = await exportedNames();
    const recorded = new Set(rules.filter((r) => r.record).map((r) => String(r.record)));
    for (const e of exprs) {
      for (const name of metricsIn(e, 'postmaster_')) expect(known.has(name), `${name} in: ${e}`).to.equal(true);
      for (const name of [...e.matchAll(/\b(postmaster:[a-z0-9_:]+)/g)].map((m) => m[1])) expect(recorded.has(name), name).to.equal(true);
    }
  });

  it('measure the SLO on a bucket boundary the latency histogram has', async () => {
    const m = new SenderMetrics('observability-test');
    m.endToEnd.observe({ lane: 'send' }, 1);
    const text = await m.registry.getSingleMetricAsString('postmaster_end_to_end_seconds');
    for (const e of exprs) for (const [, le] of e.matchAll(/postmaster_end_to_end_seconds_bucket\{le="([^"]+)"\}/g)) expect(text).to.include(`le="${le}"`);
  });

  it('use only broker metrics rabbitmq_prometheus serves (checked on the local broker)', async function () {
    const get = async (path: string) => {
      try {
        const res = await request(`http://127.0.0.1:15692${path}`, { headersTimeout: 5000 });
        return await res.body.text();
      } catch {
        return null;
      }
    };
    const plain = await get('/metrics');
    const detailed = await get('/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count');
    if (plain === null || detailed === null) this.skip();
    const served = new Set([...`${plain}\n${detailed}`.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    for (const e of exprs) for (const name of metricsIn(e, 'rabbitmq_')) expect(served.has(name), `${name} in: ${e}`).to.equal(true);
  });

  it('has a dashboard Grafana can load: unique panel ids, a Prometheus data source variable, a 24-column grid', () => {
    expect(dashboard.uid).to.equal('postmaster-pipeline');
    const ids = (dashboard.panels as Doc[]).map((p) => p.id);
    expect(new Set(ids).size).to.equal(ids.length);
    expect(dashboard.templating.list.find((v: Doc) => v.type === 'datasource')?.query).to.equal('prometheus');
    for (const p of panels) {
      expect(p.datasource.uid, p.title).to.equal('${datasource}');
      expect(p.gridPos.x + p.gridPos.w, p.title).to.be.at.most(24);
      expect(p.targets.length, p.title).to.be.greaterThan(0);
    }
  });

  it('show every exported metric on a panel, or say on NOT_ON_THE_DASHBOARD why not', async () => {
    const exportedMetrics = await fleetMetrics();
    const onPanels = new Set(panels.flatMap((p) => (p.targets as Doc[]).flatMap((t) => metricsIn(String(t.expr), 'postmaster_'))));
    const missing: string[] = [];
    for (const metric of exportedMetrics) {
      // A histogram is on a panel when any of its series is.
      const series = String(metric.type) === 'histogram' ? ['_bucket', '_sum', '_count'].map((x) => metric.name + x) : [metric.name];
      const shown = series.some((n) => onPanels.has(n));
      const excluded = metric.name in NOT_ON_THE_DASHBOARD;
      expect(shown && excluded, `${metric.name} is on a panel: drop it from NOT_ON_THE_DASHBOARD`).to.equal(false);
      if (!shown && !excluded) missing.push(metric.name);
    }
    expect(missing, 'exported metrics on no panel').to.deep.equal([]);
    const exported = new Set(exportedMetrics.map((x) => x.name));
    for (const name of Object.keys(NOT_ON_THE_DASHBOARD)) expect(exported.has(name), `${name} on NOT_ON_THE_DASHBOARD is not exported`).to.equal(true);
  });

  it('name an exported metric or a recording rule in every panel query', async () => {
    const known = await exportedNames();
    for (const p of panels) {
      for (const t of p.targets as Doc[]) {
        const used = [...metricsIn(String(t.expr), 'postmaster_'), ...metricsIn(String(t.expr), 'rabbitmq_'), ...metricsIn(String(t.expr), 'postmaster:')];
        expect(used.length, `${p.title}: ${t.expr}`).to.be.greaterThan(0);
        for (const n of metricsIn(String(t.expr), 'postmaster_')) expect(known.has(n), `${p.title}: ${n}`).to.equal(true);
      }
    }
  });

  it('select the fleet by namespace and topology prefix variables, never a hard-coded prefix', () => {
    const vars = dashboard.templating.list as Doc[];
    const ns = vars.find((v) => v.name === 'namespace');
    expect(ns, 'a namespace variable').to.include({ type: 'query', includeAll: true, allValue: '.*' });
    const prefix = vars.find((v) => v.name === 'prefix');
    expect(prefix?.query, 'the prefix variable defaults to TOPOLOGY_PREFIX\'s default').to.equal(loadConfig({}).topologyPrefix);
    for (const p of panels) {
      for (const t of p.targets as Doc[]) {
        const expr = String(t.expr);
        expect(expr, p.title).to.not.match(/postmaster(\\\\)?\./);
        // Every series selector, the broker's included, is narrowed to the chosen namespaces.
        for (const sel of expr.matchAll(/\b(?:postmaster|rabbitmq)[_:][a-z0-9_:]*(\{[^}]*\})?/g)) {
          expect(sel[1] ?? '', `${p.title}: ${sel[0]}`).to.include('namespace=~"$namespace"');
        }
        for (const q of expr.matchAll(/queue(=~?)(`[^`]*`|"[^"]*")/g)) expect(q[2], `${p.title}: queue selector`).to.match(/^.\$\{prefix(:regex)?\}/);
      }
    }
  });

  it('lay the panels out without overlaps', () => {
    const taken = new Map<string, string>();
    for (const p of dashboard.panels as Doc[]) {
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
          const cell = `${x},${y}`;
          expect(taken.get(cell), `${p.title} overlaps at ${cell}`).to.equal(undefined);
          taken.set(cell, p.title);
        }
      }
    }
  });

  it('scrape the services on their ports and the broker per queue', () => {
    const prom = yamlFile(`${DIR}/prometheus/prometheus.yml`);
    const compose = yamlFile('docker-compose.yml');
    const jobs = prom.scrape_configs as Doc[];
    const job = (n: string) => jobs.find((j) => j.job_name === n)!;
    expect(job('postmaster-ingress').static_configs[0].targets).to.deep.equal([`ingress:${compose.services.ingress.environment.METRICS_PORT}`]);
    const workers = job('postmaster-workers').dns_sd_configs[0];
    expect(workers.names).to.have.members(['dispatcher', 'sender', 'dlq-replayer']);
    expect(String(workers.port)).to.equal(compose.services.dispatcher.environment.METRICS_PORT);
    expect(job('rabbitmq-queues').metrics_path).to.equal('/metrics/detailed');
    const mounted = (compose.services.prometheus.volumes as string[]).map((v) => v.split(':')[1]);
    for (const f of prom.rule_files as string[]) expect(mounted).to.include(f);
    const k8s = yamlDocs(read(`${DIR}/prometheus/kubernetes.yml`), 'kubernetes.yml')[0];
    expect((k8s.scrape_configs as Doc[]).map((j) => j.job_name)).to.include.members(['postmaster', 'rabbitmq', 'rabbitmq-queues']);
  });
});
