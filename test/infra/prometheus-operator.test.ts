import { expect } from 'chai';
import { parse } from 'yaml';
import { ALERTS_PATH, renderPlainRules, renderPrometheusRule, RULE_PATH, RUNBOOK_BASE } from '../../scripts/gen-prometheus-rule.js';
import { kubectlAvailable, kustomizeComposed, read, yamlDocs, yamlFile, type Doc } from './repo.js';

const COMPONENT = 'infra/k8s/components/prometheus-operator';

/** A label selector (matchLabels, matchExpressions with In / NotIn / Exists) against a pod's labels. */
function selects(selector: Doc, labels: Record<string, string>): boolean {
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return byLabel && ((selector.matchExpressions ?? []) as Doc[]).every((e) => {
    if (e.operator === 'In') return (e.values as string[]).includes(labels[e.key]);
    if (e.operator === 'NotIn') return !(e.values as string[]).includes(labels[e.key]);
    if (e.operator === 'Exists') return e.key in labels;
    throw new Error(`operator ${e.operator} not understood here`);
  });
}

/** Every runbook_url of a rules document (plain or a PrometheusRule's spec). */
function runbookUrls(groups: Doc[]): string[] {
  return groups.flatMap((g) => (g.rules as Doc[]).filter((r) => r.alert).map((r) => String(r.annotations?.runbook_url)));
}

describe('Prometheus Operator component (infra/k8s/components/prometheus-operator)', () => {
  const alertsText = read(ALERTS_PATH);
  const monitors = yamlDocs(read(`${COMPONENT}/pod-monitors.yaml`), 'pod-monitors.yaml');
  const deployments = ['base/ingress.yaml', 'base/dispatcher.yaml', 'base/sender.yaml', 'base/dlq-replayer.yaml', 'components/dedicated-urgent/dispatcher-urgent.yaml', 'components/dedicated-urgent/sender-urgent.yaml']
    .flatMap((f) => yamlDocs(read(`infra/k8s/${f}`), f))
    .filter((d) => d.kind === 'Deployment');

  it('has a PrometheusRule that is exactly what scripts/gen-prometheus-rule.ts makes of alerts.yml', () => {
    expect(read(RULE_PATH)).to.equal(renderPrometheusRule(alertsText));
    const rule = yamlDocs(read(RULE_PATH), RULE_PATH)[0];
    expect(rule.kind).to.equal('PrometheusRule');
    expect(rule.spec.groups).to.deep.equal(yamlFile(ALERTS_PATH).groups);
  });

  it('moves every runbook link, and only the base, when rendered for another runbook location', () => {
    const base = 'https://git.example.com/ops/postmaster/OPERATIONS.md';
    const ours = runbookUrls(yamlFile(ALERTS_PATH).groups);
    const expected = ours.map((u) => u.replace(RUNBOOK_BASE, base));
    expect(runbookUrls(parse(renderPrometheusRule(alertsText, { runbookBase: base })).spec.groups)).to.deep.equal(expected);
    const plain = parse(renderPlainRules(alertsText, { runbookBase: base }));
    expect(runbookUrls(plain.groups)).to.deep.equal(expected);
    // Nothing else changes.
    const strip = (groups: Doc[]) => JSON.stringify(groups).replaceAll(base, RUNBOOK_BASE);
    expect(strip(plain.groups)).to.equal(JSON.stringify(yamlFile(ALERTS_PATH).groups));
  });

  it('selects another TOPOLOGY_PREFIX\'s queues, and only them, when rendered for it', () => {
    const exprs = (text: string, rule: boolean) => ((rule ? parse(text).spec.groups : parse(text).groups) as Doc[]).flatMap((g) => (g.rules as Doc[]).map((r) => String(r.expr)));
    const original = exprs(alertsText, false);
    for (const rendered of [exprs(renderPrometheusRule(alertsText, { topologyPrefix: 'acme.pm' }), true), exprs(renderPlainRules(alertsText, { topologyPrefix: 'acme.pm' }), false)]) {
      expect(rendered.filter((e, i) => e !== original[i]).length, 'the rules that select queues').to.equal(3);
      const queues = rendered.flatMap((e) => [...e.matchAll(/queue(=~?)"((?:\\\\.|[^"])*)"/g)]);
      expect(queues.length).to.equal(3);
      for (const [, op, value] of queues) {
        // PromQL unescapes the string first; a regex matcher is anchored at both ends.
        const text = value.replace(/\\\\/g, '\\');
        const matches = (q: string) => (op === '=~' ? new RegExp(`^(?:${text})$`).test(q) : text === q);
        const sample = op === '=~' ? 'acme.pm.send.03' : 'acme.pm.dlq';
        if (op === '=~' && !/send/.test(text)) continue;
        expect(matches(sample), `${value} selects ${sample}`).to.equal(true);
        expect(matches(sample.replace('acme.pm', 'acmeXpm')), `${value}: the prefix's dot is literal`).to.equal(false);
        expect(matches(sample.replace('acme.pm', 'postmaster')), `${value} leaves the default prefix`).to.equal(false);
      }
    }
  });

  it('scrapes every Deployment that serves metrics, with exactly one PodMonitor, on its metrics port', () => {
    const forServices = monitors.filter((m) => m.metadata.labels['app.kubernetes.io/component'] !== 'rabbitmq');
    for (const d of deployments) {
      const pod = d.spec.template;
      const port = (pod.spec.containers[0].ports as Doc[]).find((p) => p.name === 'metrics');
      expect(port, `${d.metadata.name} has a metrics port`).to.exist;
      const mine = forServices.filter((m) => selects(m.spec.selector, pod.metadata.labels));
      expect(mine.map((m) => m.metadata.name), `PodMonitors selecting ${d.metadata.name}`).to.have.length(1);
      expect(mine[0].spec.podMetricsEndpoints).to.deep.include({ port: 'metrics', path: pod.metadata.annotations['prometheus.io/path'], interval: '15s' });
    }
    for (const m of forServices) {
      expect(deployments.some((d) => selects(m.spec.selector, d.spec.template.metadata.labels)), `${m.metadata.name} selects some pods`).to.equal(true);
    }
  });

  it('scrapes RabbitMQ for what the alerts read: node metrics and the per-queue families', () => {
    const cluster = yamlDocs(read('infra/k8s/base/rabbitmq-cluster.yaml'), 'rabbitmq-cluster.yaml').find((d) => d.kind === 'RabbitmqCluster')!;
    const rabbit = monitors.filter((m) => m.metadata.labels['app.kubernetes.io/component'] === 'rabbitmq');
    // The operator labels the cluster's pods app.kubernetes.io/name=<cluster name>.
    for (const m of rabbit) expect(selects(m.spec.selector, { 'app.kubernetes.io/name': cluster.metadata.name }), m.metadata.name).to.equal(true);
    const endpoints = rabbit.flatMap((m) => m.spec.podMetricsEndpoints as Doc[]);
    expect(endpoints.map((e) => e.path)).to.have.members(['/metrics', '/metrics/detailed']);
    const plain = (yamlFile('infra/observability/prometheus/prometheus.yml').scrape_configs as Doc[]).find((j) => j.job_name === 'rabbitmq-queues')!;
    expect(endpoints.find((e) => e.path === '/metrics/detailed')!.params).to.deep.equal(plain.params);
  });

  describe('rendered with kubectl kustomize (no cluster needed)', function () {
    before(async function () {
      if (!(await kubectlAvailable())) this.skip();
    });

    it('adds the monitors and the rule to the base, in no namespace of their own', async () => {
      const docs = await kustomizeComposed(['infra/k8s/base'], [COMPONENT]);
      expect(docs.filter((d) => d.kind === 'PodMonitor').map((d) => d.metadata.name)).to.have.members(monitors.map((m) => m.metadata.name));
      expect(docs.filter((d) => d.kind === 'PrometheusRule')).to.have.length(1);
      // They land in the namespace the overlay sets, beside the pods they select.
      expect(docs.filter((d) => /^(PodMonitor|PrometheusRule)$/.test(d.kind)).every((d) => d.metadata.namespace === undefined)).to.equal(true);
    });

    it('scrapes production\'s TLS-only broker on 15691 over https, trusting the namespace\'s CA', async () => {
      const { namespace } = yamlFile('infra/k8s/overlays/production/kustomization.yaml');
      const docs = await kustomizeComposed(['infra/k8s/overlays/production'], [COMPONENT, 'infra/k8s/components/prometheus-operator-tls'], namespace);
      const rabbit = docs.filter((d) => d.kind === 'PodMonitor' && d.metadata.labels['app.kubernetes.io/component'] === 'rabbitmq');
      expect(rabbit).to.have.length(2);
      const ca = docs.find((d) => d.kind === 'Certificate' && d.spec.dnsNames)!; // the broker's, not the CA's
      for (const m of rabbit) {
        const [e] = m.spec.podMetricsEndpoints as Doc[];
        expect(e, m.metadata.name).to.deep.include({ port: 'prometheus-tls', scheme: 'https' });
        expect(e.tlsConfig.ca.secret).to.deep.equal({ name: ca.spec.secretName, key: 'ca.crt' });
        expect(ca.spec.dnsNames).to.include(e.tlsConfig.serverName);
      }
    });
  });
});
