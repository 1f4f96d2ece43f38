import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { PLUGINS } from '../../scripts/lib/tools.js';
import { loadConfig, unsafeSettings } from '../../shared/platform/config.js';
import type { ServiceRole } from '../../shared/platform/production-policy.js';
import { AFTER_CLOSE_MS } from '../../shared/stage/consumer.js';
import { envFile, exists, imageServices, knownEnvNames, kubectlAvailable, kustomize, read, repoPath, ROOT, yamlDocs, yamlFile, type Doc } from './repo.js';

const K8S = 'infra/k8s';
const OVERLAYS = ['base', 'overlays/production', 'overlays/local'];
/**
 * What each service's own Secret, postmaster-<role>-secrets, holds: its Redis user's URL and its own
 * secrets, nothing of another service's. Its broker user is postmaster-<role>-credentials.
 */
const OWN_SECRETS: Record<string, string[]> = {
  ingress: ['REDIS_URL', 'INGRESS_API_TOKEN', 'INGRESS_API_TOKEN_PREVIOUS', 'WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN'],
  dispatcher: ['REDIS_URL', 'BOT_HANDLER_URL', 'BOT_HANDLER_TOKEN'],
  sender: ['REDIS_URL', 'WHATSAPP_ACCESS_TOKEN'],
  'dlq-replayer': ['REDIS_URL', 'REPLAY_JOB_KEY'],
};
/** Keys of config.env the manifests use to build AMQP_URL ($(NAME)); no service reads them. */
const BROKER_KEYS = /^BROKER_[A-Z_]+$/;

/** A pod's service: its component without the dedicated-urgent suffix. */
function roleOf(d: Doc): string {
  return String(d.spec.template.metadata.labels['app.kubernetes.io/component']).replace(/-urgent$/, '');
}

/**
 * The env of a container with $(NAME) references resolved against `vars` (the ConfigMap's and the
 * Secrets' values, by variable name), as the kubelet does.
 */
function resolvedEnv(c: Doc, vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...vars };
  for (const e of (c.env ?? []) as Doc[]) {
    if (e.value !== undefined) out[e.name] = String(e.value).replace(/\$\(([A-Z0-9_]+)\)/g, (m, n: string) => out[n] ?? m);
    else if (e.valueFrom?.secretKeyRef) out[e.name] = vars[e.name] ?? `${e.valueFrom.secretKeyRef.name}.${e.valueFrom.secretKeyRef.key}`;
  }
  return out;
}

/** The resource files a kustomization lists (not its patches): complete objects. */
function resources(dir: string): Array<{ file: string; docs: Doc[] }> {
  const k = yamlFile(`${K8S}/${dir}/kustomization.yaml`);
  return ((k.resources ?? []) as string[])
    .filter((r) => r.endsWith('.yaml'))
    .map((r) => {
      const file = path.posix.join(K8S, dir, r);
      return { file, docs: yamlDocs(read(file), file) };
    });
}

function allYamlFiles(dir: string): string[] {
  return readdirSync(repoPath(dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

function containers(d: Doc): Doc[] {
  return d.spec.template.spec.containers as Doc[];
}

function selects(selector: Doc, labels: Doc): boolean {
  return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

const grace = Number(envFile(`${K8S}/base/config.env`).SHUTDOWN_GRACE_MS ?? loadConfig({}).shutdownGraceMs);

/** What every Deployment must have, on source files and rendered overlays alike. */
function checkDeployment(d: Doc, where: string): void {
  const name = `${where}: ${d.metadata.name}`;
  const pod = d.spec.template.spec;
  // A stop waits SHUTDOWN_GRACE_MS for in-flight work, then up to AFTER_CLOSE_MS for handlers that outlived it.
  expect(pod.terminationGracePeriodSeconds * 1000, `${name} grace period vs SHUTDOWN_GRACE_MS + AFTER_CLOSE_MS`).to.be.greaterThan(grace + AFTER_CLOSE_MS);
  expect(pod.securityContext?.runAsNonRoot, `${name} runAsNonRoot`).to.equal(true);
  expect(selects(d.spec.selector, d.spec.template.metadata.labels), `${name} selector matches its pods`).to.equal(true);
  for (const c of containers(d)) {
    const ports = new Set<string | number>((c.ports ?? []).flatMap((p: Doc) => [p.name, p.containerPort]));
    const simulator = c.args?.[0] === 'simulator';
    expect(c.readinessProbe?.httpGet?.path, `${name} readiness`).to.equal(simulator ? '/healthz' : '/readyz');
    expect(c.livenessProbe?.httpGet?.path, `${name} liveness`).to.equal('/healthz');
    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
      expect(ports.has(probe.httpGet.port), `${name} probes a declared port`).to.equal(true);
    }
    expect(c.resources?.requests?.cpu, `${name} cpu request`).to.be.a('string');
    expect(c.resources?.requests?.memory, `${name} memory request`).to.be.a('string');
    expect(c.resources?.limits?.memory, `${name} memory limit`).to.be.a('string');
    expect(c.securityContext?.allowPrivilegeEscalation, `${name} no privilege escalation`).to.equal(false);
    expect(imageServices(), `${name} runs a service of the image`).to.include(c.args?.[0]);
  }
}

describe('Kubernetes manifests (infra/k8s)', () => {
  const base = resources('base').flatMap((r) => r.docs);
  const deployments = base.filter((d) => d.kind === 'Deployment');

  it('parse, every file of every overlay', () => {
    const files = allYamlFiles(K8S);
    expect(files.length).to.be.greaterThan(8);
    for (const f of files) expect(() => yamlDocs(read(f), f), f).not.to.throw();
    for (const dir of OVERLAYS) for (const r of resources(dir)) expect(exists(r.file), r.file).to.equal(true);
  });

  it('have a Deployment per service, each with probes, resources, a grace period beyond the drain', () => {
    expect(deployments.map((d) => d.metadata.name)).to.have.members(['ingress', 'dispatcher', 'sender', 'dlq-replayer'].map((s) => `postmaster-${s}`));
    for (const d of [...deployments, ...resources('overlays/local').flatMap((r) => r.docs).filter((x) => x.kind === 'Deployment')]) {
      checkDeployment(d, 'source');
    }
  });

  it('run only the project\'s image in every Deployment', () => {
    for (const d of deployments) for (const c of containers(d)) expect(c.image, d.metadata.name).to.equal('postmaster');
  });

  it('reference secrets and never inline them: each service only its own Secret and broker user', () => {
    const documented = read('docs/OPERATIONS.md');
    const known = knownEnvNames();
    for (const dir of OVERLAYS) {
      for (const { file, docs } of resources(dir)) {
        for (const d of docs) {
          expect(d.kind === 'Secret' && (d.data || d.stringData), `${file} inlines Secret ${d.metadata?.name}`).to.not.be.ok;
        }
      }
    }
    const urgent = resources('components/dedicated-urgent').flatMap((r) => r.docs).filter((d) => d.kind === 'Deployment');
    for (const d of [...deployments, ...urgent]) {
      const role = roleOf(d);
      const own: string[] = [];
      for (const e of containers(d).flatMap((c) => c.env ?? [])) {
        const ref = e.valueFrom?.secretKeyRef;
        expect(e.value === undefined || !/TOKEN|SECRET|PASSWORD|KEY/.test(e.name), `${d.metadata.name}: ${e.name} has a literal value`).to.equal(true);
        // A URL written in the manifest takes its credentials from the Secret, by reference only.
        if (e.value !== undefined && /_URL$/.test(e.name)) expect(e.value, `${d.metadata.name}: ${e.name}`).to.match(/^[^@]*\/\/\$\(BROKER_USERNAME\):\$\(BROKER_PASSWORD\)@/);
        if (!ref) continue;
        if (ref.name === `postmaster-${role}-credentials`) {
          expect(ref.key, `${d.metadata.name}: ${e.name}`).to.be.oneOf(['username', 'password']);
          continue;
        }
        expect(ref.name, `${d.metadata.name}: ${e.name} from another service's Secret`).to.equal(`postmaster-${role}-secrets`);
        expect(ref.key).to.equal(e.name);
        expect(known.has(e.name), `${e.name} is a configuration variable`).to.equal(true);
        expect(documented, `docs/OPERATIONS.md says how to fill ${ref.key}`).to.include(`${ref.key}=`);
        own.push(ref.key);
      }
      expect(own, `${d.metadata.name}: the keys of postmaster-${role}-secrets`).to.have.members(OWN_SECRETS[role]);
    }
  });

  it('give each service what production requires of it: nothing it refuses to start without is missing', () => {
    const env = { ...envFile(`${K8S}/base/config.env`), ...envFile(`${K8S}/overlays/production/config.env`), WHATSAPP_PHONE_NUMBER_ID: '100000000000001' };
    for (const d of deployments) {
      const fromSecrets: Record<string, string> = {};
      for (const e of containers(d)[0].env as Doc[]) {
        // A strong stand-in for every value a Secret gives; URLs as production would have them.
        if (e.valueFrom?.secretKeyRef) fromSecrets[e.name] = e.name.endsWith('_URL') ? 'https://bot.internal.example/hook' : randomBytes(24).toString('hex');
      }
      fromSecrets.REDIS_URL = 'rediss://u:p@redis:6379';
      const resolved = resolvedEnv(containers(d)[0], { ...env, ...fromSecrets });
      expect(resolved.AMQP_URL, `${d.metadata.name} AMQP_URL`).to.match(/^amqps:\/\/.+@postmaster-rabbitmq:5671$/);
      // loadConfig throws a line per refusal; unsafeSettings lists them for the role.
      const cfg = loadConfig(resolved, {}, roleOf(d) as ServiceRole);
      expect(unsafeSettings(cfg, roleOf(d) as ServiceRole), d.metadata.name).to.deep.equal([]);
    }
  });

  it('configure the services with known variable names only, values they accept', () => {
    const known = knownEnvNames();
    const env = { ...envFile(`${K8S}/base/config.env`), ...envFile(`${K8S}/overlays/production/config.env`) };
    const used = JSON.stringify(base);
    for (const key of Object.keys(env)) {
      if (BROKER_KEYS.test(key)) expect(used, `${key} builds a URL in a Deployment or the topology Job`).to.include(`$(${key})`);
      else expect(known.has(key), `${key} is not a configuration variable`).to.equal(true);
    }
    // What the operator fills in (Secrets, the phone number id): production refuses weak or placeholder values.
    const s = `k8s-${'0123456789abcdef'.repeat(3)}`;
    const filled = {
      INGRESS_API_TOKEN: s, WHATSAPP_APP_SECRET: s, WHATSAPP_VERIFY_TOKEN: s, WHATSAPP_ACCESS_TOKEN: s, BOT_HANDLER_TOKEN: s,
      BOT_HANDLER_URL: 'https://bot.example.com/hook', WHATSAPP_PHONE_NUMBER_ID: '106540352242922',
    };
    const cfg = loadConfig({ ...env, ...filled, AMQP_URL: 'amqps://u:p@postmaster-rabbitmq:5671' });
    expect(cfg.env).to.equal('production');
    expect(cfg.topologyMode, 'the topology Job owns the topology').to.equal('check');
  });

  it('protect every Deployment with a PodDisruptionBudget', () => {
    const pdbs = base.filter((d) => d.kind === 'PodDisruptionBudget');
    for (const d of deployments) {
      const pdb = pdbs.find((p) => selects(p.spec.selector, d.spec.template.metadata.labels));
      expect(pdb, `PDB for ${d.metadata.name}`).to.exist;
      expect(pdb!.spec.minAvailable ?? pdb!.spec.maxUnavailable).to.be.a('number');
    }
  });

  it('run RabbitMQ as a three-node operator cluster with the three plugins', () => {
    const rmq = base.find((d) => d.kind === 'RabbitmqCluster')!;
    expect(rmq.apiVersion).to.equal('rabbitmq.com/v1beta1');
    expect(rmq.spec.replicas).to.equal(3);
    expect(rmq.spec.rabbitmq.additionalPlugins).to.include.members(PLUGINS);
    expect(rmq.spec.rabbitmq.additionalConfig).to.match(/cluster_partition_handling\s*=\s*pause_minority/);
    expect(rmq.spec.resources.requests.memory).to.equal(rmq.spec.resources.limits.memory);
  });

  describe('rendered with kubectl kustomize (no cluster needed)', function () {
    before(async function () {
      if (!(await kubectlAvailable())) this.skip();
    });

    for (const dir of OVERLAYS) {
      it(`renders ${dir}, every Deployment complete and on the project's image`, async () => {
        const docs = await kustomize(`${K8S}/${dir}`);
        const images = (yamlFile(`${K8S}/${dir}/kustomization.yaml`).images ?? []) as Doc[];
        const img = images.find((i) => i.name === 'postmaster');
        const expected = `${img?.newName ?? 'postmaster'}${img?.digest ? `@${img.digest}` : img?.newTag ? `:${img.newTag}` : ''}`;
        const rendered = docs.filter((d) => d.kind === 'Deployment');
        expect(rendered.length).to.be.at.least(4);
        for (const d of rendered) {
          checkDeployment(d, dir);
          for (const c of containers(d)) expect(c.image, `${dir}: ${d.metadata.name}`).to.equal(expected);
          const cm = containers(d)[0].envFrom?.[0]?.configMapRef?.name;
          if (cm) expect(docs.some((x) => x.kind === 'ConfigMap' && x.metadata.name === cm), `${dir}: ConfigMap ${cm}`).to.equal(true);
        }
        expect(docs.filter((d) => d.kind === 'Secret')).to.have.length(0);
      });
    }

    it('runs production\'s urgent lanes on dedicated replicas, the shards on the others', async () => {
      const docs = await kustomize(`${K8S}/overlays/production`);
      const lanes = (name: string) => {
        const d = docs.find((x) => x.kind === 'Deployment' && x.metadata.name === `postmaster-${name}`);
        expect(d, name).to.exist;
        return { d: d!, value: (containers(d!)[0].env as Doc[]).find((e) => e.name === 'WORKER_LANES')?.value };
      };
      for (const svc of ['dispatcher', 'sender']) {
        const urgent = lanes(`${svc}-urgent`);
        expect(urgent.value, `${svc}-urgent WORKER_LANES`).to.equal('urgent');
        expect(urgent.d.spec.replicas, `${svc}-urgent replicas`).to.be.at.least(2);
        expect(lanes(svc).value, `${svc} WORKER_LANES`).to.equal('ordered');
        // Neither Deployment's selector may take the other's pods.
        expect(selects(lanes(svc).d.spec.selector, urgent.d.spec.template.metadata.labels), `${svc} selects ${svc}-urgent pods`).to.equal(false);
        const pdb = docs.find((x) => x.kind === 'PodDisruptionBudget' && selects(x.spec.selector, urgent.d.spec.template.metadata.labels));
        expect(pdb?.spec.minAvailable, `${svc}-urgent PDB`).to.equal(1);
      }
    });

    it('puts production in its namespace with its image tag, replicas and KEDA bounds', async () => {
      const docs = await kustomize(`${K8S}/overlays/production`);
      expect(docs.filter((d) => d.kind !== 'Namespace').every((d) => d.metadata.namespace === 'postmaster')).to.equal(true);
      expect(docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'postmaster-ingress')!.spec.replicas).to.be.at.least(2);
      const dispatcher = docs.find((d) => d.kind === 'ScaledObject' && d.metadata.name === 'postmaster-dispatcher')!;
      expect(dispatcher.spec.minReplicaCount).to.be.at.least(2);
    });
  });
});
