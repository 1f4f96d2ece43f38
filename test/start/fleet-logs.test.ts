import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freePort } from '../../scripts/lib/ports.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

const START = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'start.js');
const PROCESSES = ['simulator', 'ingress', 'dispatcher', 'sender', 'dlq-replayer'];

/**
 * `npm start`'s own script, as a user runs it but with LOG_FORMAT=pretty (its stdout is a pipe
 * here), on a vhost, a Redis prefix and ports of its own (METRICS_PORT=0: ephemeral metrics ports).
 */
describe('npm start: the fleet with LOG_FORMAT=pretty', function () {
  this.timeout(180_000);
  let iso: Isolation;
  let child: ChildProcess | undefined;
  let stdout = '';

  before(async () => {
    iso = await isolate('start-logs');
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'close');
    }
    await iso.cleanup();
  });

  it('prefixes every line with its process and stops cleanly on SIGTERM', async () => {
    const { PROVIDER_BASE_URL: _unset, ...inherited } = process.env;
    const ingressPort = await freePort();
    child = spawn(process.execPath, [START], {
      env: {
        ...inherited,
        LOG_FORMAT: 'pretty',
        LOG_LEVEL: 'info',
        AMQP_URL: iso.amqpUrl,
        REDIS_KEY_PREFIX: iso.redisKeyPrefix,
        INGRESS_PORT: String(ingressPort),
        SIMULATOR_PORT: String(await freePort()),
        METRICS_PORT: '0',
        SHARDS: '2',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const lineOf = (name: string) => new RegExp(`^\\[${name}\\] +\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\] INFO: `, 'm');

    await waitFor(() => PROCESSES.every((p) => lineOf(p).test(stdout)) && stderr.includes('fleet running'), {
      timeoutMs: 120_000,
      what: `a line of each process and the banner; stdout so far:\n${stdout}\nstderr:\n${stderr}`,
    });
    expect(stdout).to.match(new RegExp(`^\\[ingress\\] .* INFO: ingress listening \\{"port":${ingressPort}`, 'm'));

    const exited = once(child, 'close');
    child.kill('SIGTERM');
    const [code] = (await Promise.race([
      exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error('start.js did not stop within 30 s')), 30_000)),
    ])) as [number];
    expect(code).to.equal(0);
    for (const p of ['ingress', 'dispatcher', 'sender', 'dlq-replayer']) {
      expect(stdout, `${p} said it is shutting down`).to.match(new RegExp(`^\\[${p}\\] .* INFO: shutting down \\{"signal":"SIGTERM"\\}`, 'm'));
    }
    const lines = stdout.split('\n').filter(Boolean);
    expect(
      lines.filter((l) => !/^\[(simulator|ingress|dispatcher|sender|dlq-replayer)\] /.test(l)),
      'lines without a prefix',
    ).to.deep.equal([]);
  });
});
