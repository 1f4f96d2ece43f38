import { expect } from 'chai';
import { kubectlAvailable, kustomize, type Doc } from './repo.js';

const PROD = 'infra/k8s/overlays/production';
const DIGEST = /@sha256:[0-9a-f]{64}$/;

/** The pods of the overlay: Deployments and Jobs, with their pod spec and their service. */
function workloads(docs: Doc[]): Array<{ name: string; role: string; pod: Doc }> {
  return docs
    .filter((d) => d.kind === 'Deployment' || d.kind === 'Job')
    .map((d) => ({
      name: `${d.kind} ${d.metadata.name}`,
      role: String(d.spec.template.metadata.labels['app.kubernetes.io/component']).replace(/-urgent$/, ''),
      pod: d.spec.template.spec,
    }));
}

/** A container's env value with $(NAME) resolved from its ConfigMap, as the kubelet does. */
function envValue(c: Doc, name: string, configMap: Record<string, string>): string | undefined {
  const e = (c.env as Doc[]).find((x) => x.name === name);
  return e?.value === undefined ? undefined : String(e.value).replace(/\$\(([A-Z0-9_]+)\)/g, (m, n: string) => configMap[n] ?? m);
}

describe('the production overlay (rendered with kubectl kustomize)', function () {
  let docs: Doc[] = [];
  const one = (kind: string, name?: string) => docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name));

  before(async function () {
    if (!(await kubectlAvailable())) this.skip();
    docs = await kustomize(PROD);
  });

  it('pins every image by digest, the broker\'s too', () => {
    const pods = workloads(docs);
    expect(pods.length).to.be.at.least(7);
    for (const { name, pod } of pods) for (const c of pod.containers as Doc[]) expect(c.image, name).to.match(DIGEST);
    expect(one('RabbitmqCluster')!.spec.image, 'RabbitmqCluster image').to.match(DIGEST);
  });

  it('dials RabbitMQ over TLS only: amqps on 5671, the CA of a cert-manager Certificate trusted', () => {
    const cm = one('ConfigMap')!.data as Record<string, string>;
    const cert = docs.find((d) => d.kind === 'Certificate' && !d.spec.isCA)!;
    const rmq = one('RabbitmqCluster')!;
    expect(rmq.spec.tls).to.deep.equal({ secretName: cert.spec.secretName, disableNonTLSListeners: true });
    expect(cert.apiVersion).to.equal('cert-manager.io/v1');
    expect(cert.spec.dnsNames).to.include('postmaster-rabbitmq');
    expect(one('Issuer', cert.spec.issuerRef.name), 'the Certificate\'s issuer').to.exist;
    for (const { name, pod } of workloads(docs)) {
      const c = (pod.containers as Doc[])[0];
      expect(envValue(c, 'AMQP_URL', cm), name).to.match(/^amqps:\/\/\$\(BROKER_USERNAME\):\$\(BROKER_PASSWORD\)@postmaster-rabbitmq:5671$/);
      const mgmt = envValue(c, 'RABBITMQ_MANAGEMENT_URL', cm);
      if (mgmt !== undefined) expect(mgmt, name).to.match(/^https:\/\/.+@postmaster-rabbitmq:15671$/);
      const ca = envValue(c, 'NODE_EXTRA_CA_CERTS', cm);
      const mount = (c.volumeMounts as Doc[] | undefined)?.find((m) => ca?.startsWith(m.mountPath + '/'));
      expect(mount, `${name} mounts the CA it trusts`).to.exist;
      const volume = (pod.volumes as Doc[]).find((v) => v.name === mount!.name)!;
      // Only the CA certificate of the broker's Secret, never its private key.
      expect(volume.secret).to.deep.equal({ secretName: cert.spec.secretName, items: [{ key: 'ca.crt', path: 'ca.crt' }] });
    }
    const auth = one('TriggerAuthentication')!;
    expect(auth.spec.secretTargetRef.map((r: Doc) => r.parameter)).to.include.members(['host', 'tls', 'ca']);
  });

  it('keeps each service to its own Secret and its own broker user, and inlines none', () => {
    expect(docs.filter((d) => d.kind === 'Secret')).to.have.length(0);
    for (const { name, role, pod } of workloads(docs)) {
      const refs = (pod.containers as Doc[]).flatMap((c) => (c.env ?? []) as Doc[]).map((e) => e.valueFrom?.secretKeyRef?.name).filter(Boolean);
      expect(refs.length, name).to.be.greaterThan(0);
      for (const ref of refs) expect(ref, name).to.be.oneOf([`postmaster-${role}-secrets`, `postmaster-${role}-credentials`]);
      expect((pod.containers as Doc[]).some((c) => c.envFrom?.some((f: Doc) => f.secretRef)), `${name}: no envFrom of a Secret`).to.equal(false);
    }
    // The broker's administrator stays with the operator.
    expect(JSON.stringify(docs)).not.to.include('postmaster-rabbitmq-default-user');
  });
});
