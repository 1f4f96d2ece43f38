import { expect } from 'chai';
import { allowed, type Peer } from './network-policy.js';
import { kubectlAvailable, kustomize, read, yamlDocs, type Doc } from './repo.js';

const NS = { 'kubernetes.io/metadata.name': 'postmaster' };
const METRICS = 9464;

const pod = (component: string): Peer => ({ name: component, labels: { 'app.kubernetes.io/name': 'postmaster', 'app.kubernetes.io/component': component } });
const rabbitmq: Peer = { name: 'rabbitmq', labels: { 'app.kubernetes.io/name': 'postmaster-rabbitmq' } };
const prometheus: Peer = { name: 'prometheus', labels: { 'app.kubernetes.io/name': 'prometheus' }, ns: { 'kubernetes.io/metadata.name': 'monitoring' } };
const dns: Peer = { name: 'kube-dns', labels: { 'k8s-app': 'kube-dns' }, ns: { 'kubernetes.io/metadata.name': 'kube-system' } };
const keda: Peer = { name: 'keda', labels: { app: 'keda-operator' }, ns: { 'kubernetes.io/metadata.name': 'keda' } };
const stranger: Peer = { name: 'a pod of another namespace', labels: { app: 'web' }, ns: { 'kubernetes.io/metadata.name': 'shop' } };
const internet: Peer = { name: 'the internet', ip: '198.51.100.7' };
const privateHost: Peer = { name: 'a private address', ip: '10.20.30.40' };
const redis: Peer = { name: 'Redis', ip: '10.9.8.7' };

/** The pods the manifests run: every Deployment's and Job's template labels, by component. */
function podsOf(docs: Doc[]): Peer[] {
  return docs
    .filter((d) => d.kind === 'Deployment' || d.kind === 'Job')
    .map((d) => ({ name: d.metadata.name, labels: d.spec.template.metadata.labels as Record<string, string> }));
}

/** The flows of docs/OPERATIONS.md "Security", checked against the policies of `docs`. */
function checkFlows(docs: Doc[], where: string): void {
  const policies = docs.filter((d) => d.kind === 'NetworkPolicy');
  const can = (from: Peer, to: Peer, port: number) => allowed(policies, NS, from, to, port);
  const expectFlow = (from: Peer, to: Peer, port: number, ok: boolean) =>
    expect(can(from, to, port), `${where}: ${from.name} → ${to.name}:${port} ${ok ? 'allowed' : 'denied'}`).to.equal(ok);

  const deny = policies.find((p) => Object.keys(p.spec.podSelector ?? { x: 1 }).length === 0 && !p.spec.ingress && !p.spec.egress);
  expect(deny?.spec.policyTypes, `${where}: a default deny of both directions`).to.have.members(['Ingress', 'Egress']);

  const pods = podsOf(docs);
  const services = pods.filter((p) => p.labels!['app.kubernetes.io/component'] !== 'simulator');
  expect(services.length, where).to.be.at.least(4);
  const component = (p: Peer) => p.labels!['app.kubernetes.io/component'];

  expectFlow(internet, pod('ingress'), 8080, true);
  for (const p of services) {
    expectFlow(prometheus, p, METRICS, true);
    expectFlow(internet, p, METRICS, false);
    expectFlow(stranger, p, METRICS, false);
    expectFlow(p, rabbitmq, 5672, true);
    expectFlow(p, rabbitmq, 5671, true);
    expectFlow(p, rabbitmq, 25672, false);
    expectFlow(p, redis, 6379, true);
    expectFlow(p, dns, 53, true);
    for (const q of services) expectFlow(p, q, METRICS, false);
    const sender = /^sender/.test(component(p));
    const dispatcher = /^dispatcher/.test(component(p));
    expectFlow(p, internet, 443, sender || dispatcher);
    if (sender) expectFlow(p, privateHost, 443, false);
    expectFlow(p, internet, 80, false);
    const management = ['topology', 'dlq-cli'].includes(component(p));
    expectFlow(p, rabbitmq, 15672, management);
    expectFlow(p, rabbitmq, 15671, management);
  }
  expectFlow(pod('dlq-cli'), rabbitmq, 15671, true);
  expectFlow(keda, rabbitmq, 15672, true);
  expectFlow(prometheus, rabbitmq, 15692, true);
  expectFlow(rabbitmq, rabbitmq, 25672, true);
  expectFlow(internet, rabbitmq, 5672, false);
  expectFlow(stranger, rabbitmq, 5672, false);
  expectFlow(stranger, pod('ingress'), 8080, true); // the API is public; only its port is
}

describe('NetworkPolicies (infra/k8s/base/network-policies.yaml)', () => {
  it('deny by default and allow exactly the fleet\'s flows (source files)', () => {
    const docs = ['ingress', 'dispatcher', 'sender', 'dlq-replayer', 'network-policies']
      .flatMap((f) => yamlDocs(read(`infra/k8s/base/${f}.yaml`), f));
    checkFlows([...docs, { kind: 'Job', metadata: { name: 'postmaster-topology' }, spec: { template: { metadata: { labels: pod('topology').labels } } } }], 'base');
  });

  describe('rendered with kubectl kustomize', function () {
    before(async function () {
      if (!(await kubectlAvailable())) this.skip();
    });

    for (const overlay of ['base', 'overlays/production', 'overlays/local']) {
      it(`keeps the flows in ${overlay}, every pod of the overlay included`, async () => {
        checkFlows(await kustomize(`infra/k8s/${overlay}`), overlay);
      });
    }

    it('lets only the senders reach the local simulator', async () => {
      const docs = await kustomize('infra/k8s/overlays/local');
      const policies = docs.filter((d) => d.kind === 'NetworkPolicy');
      for (const p of podsOf(docs)) {
        const c = p.labels!['app.kubernetes.io/component'];
        if (c === 'simulator') continue;
        expect(allowed(policies, NS, p, pod('simulator'), 9090), `${c} → simulator`).to.equal(/^sender/.test(c));
      }
    });
  });
});
