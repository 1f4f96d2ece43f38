import { expect } from 'chai';
import { request } from 'undici';
import { RUNBOOK_BASE } from '../../scripts/gen-prometheus-rule.js';
import { Metrics } from '../../shared/metrics.js';
import { read, yamlDocs, yamlFile, type Doc } from './repo.js';

const DIR = 'infra/observability';

/** Names a scrape of the service would show: counters as named, histograms with their series. */
async function exportedNames(): Promise<Set<string>> {
  const m = new Metrics('observability-test');
  const out = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    out.add(metric.name);
    if (String(metric.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(metric.name + s);
  }
  return out;
}

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

  it('use only metrics the services export (shared/metrics.ts) and recording rules defined here', async () => {
    const known = await exportedNames();
    const recorded = new Set(rules.filter((r) => r.record).map((r) => String(r.record)));
    for (const e of exprs) {
      for (const name of metricsIn(e, 'postmaster_')) expect(known.has(name), `${name} in: ${e}`).to.equal(true);
      for (const name of [...e.matchAll(/\b(postmaster:[a-z0-9_:]+)/g)].map((m) => m[1])) expect(recorded.has(name), name).to.equal(true);
    }
  });

  it('measure the SLO on a bucket boundary the latency histogram has', async () => {
    const m = new Metrics('observability-test');
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
