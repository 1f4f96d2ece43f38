import { expect } from 'chai';
import { loadConfig } from '../../shared/platform/config.js';
import { loadConfig as loadSimulatorConfig } from '../../services/simulator/config.js';
import { PLUGINS } from '../../scripts/lib/tools.js';
import { exists, imageServices, knownEnvNames, read, yamlDocs, yamlFile, type Doc } from './repo.js';

/** Compose's `${NAME:-default}` interpolation with an empty shell environment. */
function interpolate(value: unknown): string {
  return String(value).replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_m, _name, dflt: string | undefined) => dflt ?? '');
}

function envOf(service: Doc): Record<string, string> {
  return Object.fromEntries(Object.entries((service.environment ?? {}) as Record<string, unknown>).map(([k, v]) => [k, interpolate(v)]));
}

/** "30s" / "1m30s" → ms */
function durationMs(d: string): number {
  let ms = 0;
  for (const [, n, unit] of d.matchAll(/(\d+)(ms|s|m|h)/g)) ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  return ms;
}

function mounts(service: Doc): Array<{ source: string; target: string }> {
  return (service.volumes as string[]).map((v) => {
    const [source, target] = v.split(':');
    return { source, target };
  });
}

describe('docker-compose.yml', () => {
  const compose = yamlFile('docker-compose.yml');
  const services = compose.services as Record<string, Doc>;
  const apps = imageServices();
  const infra = ['rabbitmq', 'redis'];

  it('runs RabbitMQ, Redis and every service of the image', () => {
    expect(Object.keys(services)).to.include.members([...infra, ...apps]);
  });

  it('builds every service from the one Dockerfile, the command naming the service', () => {
    for (const name of apps) {
      const s = services[name];
      expect(s.build, name).to.deep.include({ context: '.', dockerfile: 'Dockerfile' });
      expect(s.image, name).to.equal('postmaster:local');
      expect(s.command, name).to.deep.equal([name]);
    }
  });

  it('uses no image but the project\'s own, except for the brokers and the opt-in observability tools', () => {
    for (const [name, s] of Object.entries(services)) {
      if (apps.includes(name)) continue;
      if (name === 'rabbitmq') expect(s.image).to.match(/^rabbitmq:4\.\d+-management$/);
      else if (name === 'redis') expect(s.image).to.match(/^redis:7(\.|$)/);
      else expect(s.profiles, `${name} (${s.image}) only starts with --profile observability`).to.deep.equal(['observability']);
    }
  });

  it('runs the RabbitMQ line of the Kubernetes RabbitmqClusters (4.x), base and production', () => {
    const line = (image: string) => /^rabbitmq:(4\.\d+)-management(@sha256:[0-9a-f]{64})?$/.exec(image)?.[1];
    const compose = line(services.rabbitmq.image);
    expect(compose, services.rabbitmq.image).to.be.a('string');
    for (const file of ['infra/k8s/base/rabbitmq-cluster.yaml', 'infra/k8s/overlays/production/rabbitmq.yaml']) {
      const cluster = yamlDocs(read(file), file).find((d) => d.kind === 'RabbitmqCluster');
      expect(line(cluster?.spec.image), file).to.equal(compose);
    }
  });

  it('starts RabbitMQ with the three plugins, the config and the generated definitions', () => {
    const m = mounts(services.rabbitmq);
    const plugins = m.find((x) => x.target === '/etc/rabbitmq/enabled_plugins');
    expect(plugins?.source).to.equal('./infra/rabbitmq/enabled_plugins');
    const enabled = read('infra/rabbitmq/enabled_plugins');
    for (const p of PLUGINS) expect(enabled).to.include(p);

    const conf = m.find((x) => x.target.startsWith('/etc/rabbitmq/conf.d/'));
    expect(conf?.source).to.equal('./infra/rabbitmq/rabbitmq.conf');
    const dir = /^load_definitions\s*=\s*(\S+)$/m.exec(read('infra/rabbitmq/rabbitmq.conf'))?.[1];
    expect(dir, 'rabbitmq.conf sets load_definitions').to.be.a('string');
    const imported = m.filter((x) => x.target.startsWith(dir + '/')).map((x) => x.source);
    expect(imported).to.include('./infra/rabbitmq/definitions.json');
    // Boot-time import skips the default user, so the users file must be imported too.
    expect(imported).to.include('./infra/rabbitmq/local-users.json');
    for (const x of m.filter((v) => v.source.startsWith('./'))) expect(exists(x.source), x.source).to.equal(true);
  });

  it('keeps Redis on AOF and both brokers health-checked, depending on nothing (`up -d rabbitmq redis`)', () => {
    expect(services.redis.command.join(' ')).to.match(/--appendonly yes/);
    for (const name of infra) {
      expect(services[name].healthcheck?.test, name).to.be.an('array');
      expect(services[name].depends_on, name).to.equal(undefined);
    }
  });

  it('starts the services only once their brokers are healthy', () => {
    for (const name of apps.filter((n) => n !== 'simulator')) {
      const deps = services[name].depends_on as Record<string, { condition: string }>;
      for (const broker of infra) expect(deps?.[broker]?.condition, `${name} → ${broker}`).to.equal('service_healthy');
    }
    expect(services.sender.depends_on.simulator.condition).to.equal('service_healthy');
  });

  it('publishes the UI, the broker metrics, the ingress, the simulator and the worker metrics', () => {
    // "[ip:]host[-last]:container": the first host port of a range, which the first replica gets.
    const published = (name: string) =>
      ((services[name].ports ?? []) as string[]).map((p) => {
        const parts = String(p).split(':');
        return { host: Number(parts[parts.length - 2].split('-')[0]), container: Number(parts[parts.length - 1]) };
      });
    expect(published('rabbitmq').map((p) => p.host)).to.include.members([5672, 15672, 15692]);
    expect(published('ingress')).to.deep.include({ host: 8080, container: 8080 });
    expect(published('simulator')).to.deep.include({ host: 9090, container: 9090 });
    for (const w of ['dispatcher', 'sender', 'dlq-replayer']) {
      expect(published(w).map((p) => p.container), w).to.include(Number(envOf(services[w]).METRICS_PORT));
    }
  });

  it('configures the services with the names of shared/platform/config.ts only, pointing at the compose network', () => {
    const known = knownEnvNames();
    for (const name of apps) {
      const env = envOf(services[name]);
      for (const key of Object.keys(env)) expect(known.has(key), `${name}: ${key} is not a configuration variable`).to.equal(true);
      if (name === 'simulator') continue;
      expect(new URL(env.AMQP_URL).hostname).to.equal('rabbitmq');
      expect(new URL(env.REDIS_URL).hostname).to.equal('redis');
      const provider = new URL(env.PROVIDER_BASE_URL);
      expect(provider.hostname).to.equal('simulator');
      expect(provider.port).to.equal(envOf(services.simulator).SIMULATOR_PORT);
    }
  });

  it('gives each service a configuration it accepts, and time to drain on stop', () => {
    for (const name of apps) {
      const env = envOf(services[name]);
      if (name === 'simulator') {
        expect(loadSimulatorConfig(env).options.port).to.equal(9090);
        continue;
      }
      const cfg = loadConfig(env);
      expect(cfg.providerBaseUrl).to.equal('http://simulator:9090');
      expect(durationMs(services[name].stop_grace_period), `${name} stop_grace_period`).to.be.greaterThan(cfg.shutdownGraceMs);
    }
  });
});
