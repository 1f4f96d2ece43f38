import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { freePort } from '../../scripts/lib/ports.js';
import type { Config } from '../../shared/platform/config.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { runCli, type CliRun } from './helpers.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function timed(cfg: Config, args: string[]): Promise<CliRun & { ms: number }> {
  const t0 = Date.now();
  const run = await runCli(cfg, args, { timeoutMs: 30_000 });
  return { ...run, ms: Date.now() - t0 };
}

const lines = (s: string) => s.split('\n').filter(Boolean);

/**
 * `postmaster-dlq` when it cannot do its work: RabbitMQ or Redis unreachable (a port on 127.0.0.1
 * nothing listens on), bad usage. One line on stderr, nothing on stdout, the documented exit code.
 * LOG_LEVEL is `warn`, where the reconnect logic's warnings would show.
 */
describe('postmaster-dlq in failure', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let cfg: Config;
  let closed: number;

  before(async () => {
    iso = await isolate('dlq-cli-failures');
    cfg = iso.config({ logLevel: 'warn' });
    closed = await freePort();
  });
  after(async () => {
    await iso?.cleanup();
  });

  // A 3 s deadline (the default is 5 s) leaves the bound room for node's start on a loaded machine.
  it('gives up on an unreachable Redis at its deadline, within 10 s: one line, exit 4', async () => {
    for (const args of [
      ['--connect-timeout', '3s', 'jobs', '--json'],
      ['--connect-timeout', '3s', 'stats', '--json'],
    ]) {
      const run = await timed({ ...cfg, redisUrl: `redis://127.0.0.1:${closed}` }, args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).to.equal(4);
      expect(run.ms, args.join(' ')).to.be.below(10_000);
      expect(run.stdout).to.equal('');
      expect(lines(run.stderr)).to.have.length(1);
      expect(run.stderr).to.match(
        new RegExp(`^postmaster-dlq: could not connect to Redis at redis://127\\.0\\.0\\.1:${closed} within 3s \\(last error: connect ECONNREFUSED`),
      );
    }
  });

  it('gives up on an unreachable RabbitMQ at its deadline, within 10 s: one line, exit 4, no retry warnings', async () => {
    const run = await timed({ ...cfg, amqpUrl: `amqp://guest:guest@127.0.0.1:${closed}/` }, ['--connect-timeout', '3s', 'stats', '--json']);
    expect(run.code, run.stderr).to.equal(4);
    expect(run.ms).to.be.below(10_000);
    expect(run.stdout).to.equal('');
    expect(lines(run.stderr)).to.have.length(1);
    expect(run.stderr).to.match(
      new RegExp(
        `^postmaster-dlq: could not connect to RabbitMQ at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/? within 3s \\(last error: connect ECONNREFUSED`,
      ),
    );
  });

  it('takes the deadline from --connect-timeout or DLQ_CONNECT_TIMEOUT', async () => {
    const down = { ...cfg, redisUrl: `redis://127.0.0.1:${closed}` };
    const flag = await timed(down, ['--connect-timeout', '1s', 'jobs']);
    expect(flag.code).to.equal(4);
    expect(flag.stderr).to.contain('within 1s');
    process.env.DLQ_CONNECT_TIMEOUT = '2s';
    try {
      const env = await timed(down, ['jobs']);
      expect(env.stderr).to.contain('within 2s');
    } finally {
      delete process.env.DLQ_CONNECT_TIMEOUT;
    }
  });

  it('prints its version', async () => {
    const run = await runCli(cfg, ['--version']);
    expect([run.code, run.stdout, run.stderr]).to.deep.equal([0, `${VERSION}\n`, '']);
  });

  it('exits 2 on bad usage, before it connects anywhere: one error line and a pointer to --help', async () => {
    const down = { ...cfg, redisUrl: `redis://127.0.0.1:${closed}`, amqpUrl: `amqp://guest:guest@127.0.0.1:${closed}/` };
    const cases: Array<[string[], RegExp]> = [
      [['bogus'], /^postmaster-dlq: unknown command 'bogus'$/],
      [['stats', '--bogus'], /^postmaster-dlq: unknown option '--bogus'$/],
      [['list', '--limit', 'abc'], /^postmaster-dlq: option '--limit <n>' argument 'abc' is invalid\. not a positive integer$/],
      [['stats', '--class', 'nope'], /^postmaster-dlq: option '--class <classes>' argument 'nope' is invalid\. "nope" is not one of /],
      [['replay', '--older-than', 'soon', '--yes'], /^postmaster-dlq: option '--older-than <duration>' argument 'soon' is invalid\./],
      [['--connect-timeout', '0', 'jobs'], /^postmaster-dlq: option '--connect-timeout <duration>' argument '0' is invalid\./],
      [['replay', '--yes'], /^postmaster-dlq: say which dead letters to replay: a filter/],
      [['purge', '--all', '--code', '131026', '--yes'], /^postmaster-dlq: --all purges every dead letter: leave out the filters, or --all$/],
      [['replay', '--all'], /^postmaster-dlq: refusing to replay without confirmation: stdin is not a terminal/],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(down, args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).to.equal(2);
      expect(run.stdout, args.join(' ')).to.equal('');
      expect(lines(run.stderr)[0], args.join(' ')).to.match(message);
      expect(run.stderr, args.join(' ')).not.to.contain('could not connect');
    }
  });

  it('exits 2 without a command, with the help on stderr; 0 with --help', async () => {
    const none = await runCli(cfg, []);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.match(/^Usage: postmaster-dlq /);
    const help = await runCli(cfg, ['--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout.replace(/\s+/g, ' ')).to.contain(
      '--connect-timeout <duration> give up on an unreachable RabbitMQ or Redis after this long (exit 4) (default: 5s, env: DLQ_CONNECT_TIMEOUT)',
    );
  });
});
