import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { request } from 'undici';
import { freePort } from '../../scripts/lib/ports.js';
import { startSimulator } from '../../services/simulator/server.js';
import { useIsolation } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';

const START = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'start.js');
const PROCESSES = ['simulator', 'ingress', 'dispatcher', 'sender', 'dlq-replayer'];
const SERVICES = PROCESSES.slice(1);

interface StartedFleet {
  child: ChildProcess;
  ingressPort: number;
  stdout(): string;
  /** Exit code of start.js, within `ms`. */
  exit(ms: number): Promise<number | null>;
  /** The process group of start.js and its services, as a terminal's foreground job (`detached`). */
  group(signal: NodeJS.Signals): void;
}

/** The `[process] … INFO: <msg>` lines of pretty format. */
const linesOf = (stdout: string, name: string, level: string, msg: string) =>
  stdout.split('\n').filter((l) => new RegExp(`^\\[${name}\\] +\\[[^\\]]+\\] ${level}: ${msg}`).test(l));

/**
 * `npm start`'s own script, as a user runs it but with LOG_FORMAT=pretty (its stdout is a pipe
 * here), on a vhost, a Redis prefix and ports of its own (METRICS_PORT=0: ephemeral metrics ports),
 * in a process group of its own: what a terminal's Ctrl-C reaches.
 */
describe('npm start: the fleet with LOG_FORMAT=pretty', function () {
  this.timeout(180_000);
  const t = useIsolation('start-logs');
  let fleet: StartedFleet | undefined;

  afterEach(async () => {
    const child = fleet?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      fleet!.group('SIGKILL');
      await once(child, 'close');
    }
    fleet = undefined;
  });

  async function startFleet(env: Record<string, string> = {}): Promise<StartedFleet> {
    const { PROVIDER_BASE_URL: _unset, ...inherited } = process.env;
    const ingressPort = await freePort();
    const child = spawn(process.execPath, [START], {
      env: {
        ...inherited,
        LOG_FORMAT: 'pretty',
        LOG_LEVEL: 'info',
        AMQP_URL: t.iso.amqpUrl,
        REDIS_KEY_PREFIX: t.iso.redisKeyPrefix,
        INGRESS_PORT: String(ingressPort),
        SIMULATOR_PORT: String(await freePort()),
        METRICS_PORT: '0',
        SHARDS: '2',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const closed = once(child, 'close');
    const started: StartedFleet = {
      child,
      ingressPort,
      stdout: () => stdout,
      exit: async (ms) =>
        (
          (await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`start.js did not stop within ${ms} ms`)), ms))])) as [
            number | null,
          ]
        )[0],
      group: (signal) => process.kill(-child.pid!, signal),
    };
    fleet = started;
    // Each process logged, the banner is out, and every service is ready: the stage workers own
    // their two shards each.
    const names = env.PROVIDER_BASE_URL ? SERVICES : PROCESSES;
    await waitFor(
      () =>
        names.every((p) => linesOf(stdout, p, 'INFO', '').length > 0) &&
        stderr.includes('fleet running') &&
        linesOf(stdout, 'ingress', 'INFO', 'ingress listening').length === 1 &&
        linesOf(stdout, 'dlq-replayer', 'INFO', 'dlq-replayer ready').length === 1 &&
        ['dispatcher', 'sender'].every((p) => linesOf(stdout, p, 'INFO', 'shard taken over').length === 2),
      { timeoutMs: 120_000, what: `every process ready and the banner; stdout so far:\n${stdout}\nstderr:\n${stderr}` },
    );
    return started;
  }

  it('prefixes every line with its process and stops cleanly on SIGTERM', async () => {
    const f = await startFleet();
    expect(f.stdout()).to.match(new RegExp(`^\\[ingress\\] .* INFO: ingress listening \\{"port":${f.ingressPort}`, 'm'));

    f.child.kill('SIGTERM');
    expect(await f.exit(30_000)).to.equal(0);
    for (const p of SERVICES) {
      expect(f.stdout(), `${p} said it is shutting down`).to.match(new RegExp(`^\\[${p}\\] .* INFO: shutting down \\{"signal":"SIGTERM"\\}`, 'm'));
    }
    const lines = f.stdout().split('\n').filter(Boolean);
    expect(
      lines.filter((l) => !/^\[(simulator|ingress|dispatcher|sender|dlq-replayer)\] /.test(l)),
      'lines without a prefix',
    ).to.deep.equal([]);
  });

  // A terminal's Ctrl-C is a SIGINT to the whole foreground process group: start.js and every
  // service. Each service used to take it, then take start.js's SIGTERM as a second signal and
  // exit at once, its drain cut short.
  it('gives each service one graceful shutdown for a Ctrl-C to the process group', async () => {
    const f = await startFleet();
    f.group('SIGINT');
    expect(await f.exit(30_000)).to.equal(0);
    const out = f.stdout();
    for (const p of SERVICES) {
      expect(linesOf(out, p, 'INFO', 'shutting down'), `${p}: its shutdown lines`).to.have.length(1);
      expect(linesOf(out, p, 'WARN', 'second signal'), `${p}: second-signal lines`).to.deep.equal([]);
    }
    expect(linesOf(out, 'simulator', 'INFO', 'simulator stopped')).to.have.length(1);
    // The drains ran to the end: the stage workers handed their shards over.
    for (const p of ['dispatcher', 'sender']) expect(linesOf(out, p, 'INFO', 'shard handed over'), p).to.have.length(2);
  });

  it('makes every service exit at once on a second Ctrl-C, while one still drains', async () => {
    // The provider outside the fleet, answering after a minute: the sender's drain waits for it.
    const provider = await startSimulator({ faults: { latencyMs: 60_000 } });
    t.defer('close the slow provider', () => provider.close());
    const token = 'start-test-token-0123456789abcdef';
    const f = await startFleet({ PROVIDER_BASE_URL: provider.url, PROVIDER_TIMEOUT_MS: '60000', SHUTDOWN_GRACE_MS: '60000', INGRESS_API_TOKEN: token });
    const res = await request(`http://127.0.0.1:${f.ingressPort}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: '15557790001', type: 'text', text: { body: 'slow' } }),
    });
    expect(res.statusCode, await res.body.text()).to.equal(202);
    await waitFor(() => provider.ledger().length === 1 || null, { what: 'the send at the provider', timeoutMs: 30_000 });

    f.group('SIGINT');
    await waitFor(() => SERVICES.every((p) => linesOf(f.stdout(), p, 'INFO', 'shutting down').length === 1) || null, {
      what: 'every service shutting down',
    });
    const firstAt = Date.now();
    f.group('SIGINT');
    expect(await f.exit(20_000), 'start.js, forced').to.equal(1);
    expect(Date.now() - firstAt, 'ms from the second Ctrl-C to the exit').to.be.below(15_000);
    expect(linesOf(f.stdout(), 'sender', 'WARN', 'second signal: exiting now \\{"signal":"SIGTERM"\\}'), 'the sender forced').to.have.length(1);
  });
});
