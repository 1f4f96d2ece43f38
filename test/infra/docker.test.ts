import { expect } from 'chai';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metrics, serveMetrics } from '../../shared/platform/metrics.js';
import { exists, imageServices, read, repoPath, yamlFile } from './repo.js';

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions, continuation lines joined and comments dropped, each with its stage. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1].toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2].trim(), stage });
  }
  return out;
}

/** Exit code of a script run with node (or sh), without a shell. */
function exitCode(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

async function listen(handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return server;
}

async function closedPort(): Promise<number> {
  const s = await listen(() => {});
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The stage named `name` (FROM … AS name), or -1. */
function stageNamed(froms: Instruction[], name: string): number {
  return froms.findIndex((f) => new RegExp(`\\bAS\\s+${name}$`, 'i').test(f.args));
}

/** A stage and the stages it is built FROM, nearest first: what an image of that target contains. */
function lineage(froms: Instruction[], stage: number): number[] {
  const out = [stage];
  for (let s = stage; ; ) {
    const base = froms[s].args.split(/\s+/)[0];
    s = stageNamed(froms, base);
    if (s < 0) return out;
    out.push(s);
  }
}

describe('the container image (Dockerfile)', () => {
  const ins = instructions(read('Dockerfile'));
  const froms = ins.filter((i) => i.op === 'FROM');
  // `docker build .` builds the last stage: the production image.
  const last = froms.length - 1;
  const chain = lineage(froms, last);
  const runtime = ins.filter((i) => chain.includes(i.stage));
  const root = chain[chain.length - 1];

  it('is multi-stage: TypeScript is built with npm ci + npm run build in a stage the runtime does not inherit', () => {
    expect(froms.length).to.be.greaterThanOrEqual(2);
    const runs = (stage: number) => ins.filter((i) => i.stage === stage && i.op === 'RUN').map((i) => i.args).join('\n');
    // `npm run build`, not tsc alone: the build also copies the Lua scripts into dist/.
    const buildStage = froms.findIndex((_f, s) => /npm run build\b/.test(runs(s)));
    expect(buildStage, 'a stage runs npm run build').to.be.greaterThanOrEqual(0);
    expect(buildStage).to.be.lessThan(last);
    expect(chain, 'the runtime does not inherit the build stage').not.to.include(buildStage);
    expect(runs(buildStage)).to.match(/npm ci\b/);
    expect(froms[root].args, 'the runtime starts from a slim Node image, not from the build stage').to.match(/NODE_IMAGE|node:\d+[-\w.]*slim/);
  });

  it('ships production dependencies only', () => {
    const prodInstall = ins.find((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args));
    expect(prodInstall, 'a stage runs npm ci --omit=dev').to.exist;
    const copies = runtime.filter((i) => i.op === 'COPY').map((i) => i.args);
    const nodeModules = copies.filter((c) => /node_modules/.test(c));
    expect(nodeModules).to.have.length(1);
    const fromStage = /--from=(\S+)/.exec(nodeModules[0])?.[1];
    const stageName = (s: number) => /\bAS\s+(\S+)/i.exec(froms[s].args)?.[1];
    expect(fromStage).to.equal(stageName(prodInstall!.stage));
    expect(copies.some((c) => /^\.\s/.test(c)), 'no COPY . . into the runtime').to.equal(false);
    expect(copies.some((c) => /dist\/test/.test(c)), 'tests stay out').to.equal(false);
  });

  it('copies the local packages package.json points at (file:) before every npm ci', () => {
    const pkg = JSON.parse(read('package.json'));
    const local = [pkg.dependencies, pkg.devDependencies, pkg.optionalDependencies, pkg.overrides]
      .flatMap((o) => Object.values(o ?? {}))
      .filter((v): v is string => typeof v === 'string' && v.startsWith('file:'))
      .map((v) => v.slice('file:'.length).replace(/^\.\//, '').split('/')[0]);
    ins.forEach((i, at) => {
      if (i.op !== 'RUN' || !/npm ci\b/.test(i.args)) return;
      const before = ins.slice(0, at).filter((c) => c.stage === i.stage && c.op === 'COPY' && !/--from=/.test(c.args));
      for (const dir of local) {
        expect(before.some((c) => c.args.split(/\s+/).slice(0, -1).includes(dir)), `stage ${i.stage} copies ${dir} before npm ci`).to.equal(true);
      }
    });
  });

  it('leaves the simulator out of the production image; the dev target (compose, local clusters) has it', () => {
    // Where each target's dist/services comes from, and whether that stage removed the simulator.
    const servicesOf = (stage: number) => {
      const copy = ins.find((i) => lineage(froms, stage).includes(i.stage) && i.op === 'COPY' && /dist\/services\s/.test(i.args + ' '));
      expect(copy, `stage ${stage} copies dist/services`).to.exist;
      const from = stageNamed(froms, /--from=(\S+)/.exec(copy!.args)![1]);
      const runs = ins.filter((i) => lineage(froms, from).includes(i.stage) && i.op === 'RUN').map((i) => i.args).join('\n');
      return { simulator: !/rm -rf \S*dist\/services\/simulator\b/.test(runs) };
    };
    expect(servicesOf(last).simulator, 'production (the last, default stage) has the simulator').to.equal(false);
    const dev = stageNamed(froms, 'dev');
    expect(dev, 'a dev target').to.be.greaterThanOrEqual(0);
    expect(servicesOf(dev).simulator, 'the dev target has the simulator').to.equal(true);
    const compose = yamlFile('docker-compose.yml');
    expect(compose.services.simulator.build?.target, 'compose builds the dev target').to.equal('dev');
    expect(read('infra/k8s/overlays/local/kustomization.yaml')).to.match(/docker build --target dev/);
  });

  it('runs as a non-root user', () => {
    const users = runtime.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users, 'USER in the final stage').to.have.length.greaterThan(0);
    const user = users[users.length - 1].split(':')[0];
    expect(['root', '0']).not.to.include(user);
  });

  it('has a HEALTHCHECK that needs no curl, and an entry point that picks the service', () => {
    const hc = runtime.find((i) => i.op === 'HEALTHCHECK');
    expect(hc?.args).to.match(/CMD \["node", "\/app\/healthcheck\.mjs"\]/);
    expect(runtime.some((i) => i.op === 'COPY' && /infra\/docker\/healthcheck\.mjs/.test(i.args))).to.equal(true);
    const entry = runtime.find((i) => i.op === 'ENTRYPOINT');
    expect(entry?.args).to.include('/usr/local/bin/postmaster');
    expect(runtime.some((i) => i.op === 'COPY' && /infra\/docker\/entrypoint\.sh \/usr\/local\/bin\/postmaster/.test(i.args))).to.equal(true);
  });

  it('copies only paths that exist and that .dockerignore lets into the build context', () => {
    const rules = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(rules[0], 'everything is ignored first, then let in by name').to.equal('*');
    const allowed = rules.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const i of ins.filter((x) => x.op === 'COPY' && !/--from=/.test(x.args))) {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        expect(exists(src), `${src} exists`).to.equal(true);
        expect(allowed.some((a) => src === a || src.startsWith(a + '/')), `${src} is let in by .dockerignore`).to.equal(true);
      }
    }
  });
});

describe('the image entry point (infra/docker/entrypoint.sh)', () => {
  it('knows every service, prints usage, and refuses an unknown command with exit 64', async () => {
    expect(imageServices()).to.have.members(['ingress', 'dispatcher', 'sender', 'dlq-replayer', 'simulator']);
    const help = await exitCode('sh', [repoPath('infra/docker/entrypoint.sh'), 'help']);
    expect(help.code).to.equal(0);
    expect(help.out).to.include('dlq-replayer');
    const bad = await exitCode('sh', [repoPath('infra/docker/entrypoint.sh'), 'postman']);
    expect(bad.code).to.equal(64);
    expect(bad.out).to.include('unknown command "postman"');
    // Outside an image nothing is under /app: as in the production image for the simulator.
    const missing = await exitCode('sh', [repoPath('infra/docker/entrypoint.sh'), 'simulator']);
    expect(missing.code).to.equal(64);
    expect(missing.out).to.include('build it with --target dev');
  });

  for (const service of ['ingress', 'dispatcher', 'sender', 'dlq-replayer', 'simulator']) {
    it(`starts ${service} from a main.ts that exists`, function () {
      if (!exists(`services/${service}`)) this.skip(); // being built in parallel
      expect(exists(`services/${service}/main.ts`)).to.equal(true);
    });
  }
});

describe('the image health check (infra/docker/healthcheck.mjs)', () => {
  const script = repoPath('infra/docker/healthcheck.mjs');

  it('passes when the service of the container answers /healthz on its port, whichever it is', async () => {
    const metrics = new Metrics('healthcheck-test');
    const ok = () => ({ ok: true, failing: {} });
    const worker = await serveMetrics(metrics, 0, { readiness: ok, liveness: ok }, '127.0.0.1');
    try {
      const [a, b] = [await closedPort(), await closedPort()];
      const res = await exitCode('node', [script], { INGRESS_PORT: String(a), METRICS_PORT: String(worker.port), SIMULATOR_PORT: String(b) });
      expect(res.code, res.out).to.equal(0);
    } finally {
      await worker.close();
    }
  });

  it('fails when nothing listens, or /healthz does not answer 200', async () => {
    const none = await exitCode('node', [script], { HEALTHCHECK_PORT: String(await closedPort()) });
    expect(none.code).to.equal(1);
    const sick = await listen((_req, res) => res.writeHead(503).end());
    try {
      const port = String((sick.address() as AddressInfo).port);
      const res = await exitCode('node', [script], { HEALTHCHECK_PORT: port });
      expect(res.code).to.equal(1);
    } finally {
      await new Promise<void>((r) => sick.close(() => r()));
    }
  });
});
