/**
 * The `postmaster-dlq` command line (commander): every command takes --json; the readable output
 * is tables. Commander parses and checks every option value before a command connects anywhere;
 * its usage errors come out of parseAsync as CommanderErrors (exitOverride) for cli.ts to map to
 * exit 2. The commands (and the client libraries they need) are loaded only when one runs: help,
 * the version and usage errors answer at once, and the connect deadline is not eaten by loading.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkChange } from './confirm.js';
import type { CliContext } from './context.js';
import { addFilterOptions, count, duration, positive } from './filter-options.js';
import type { ChangeOptions } from './job-commands.js';
import { withContext } from './session.js';

const FORCE = "read even while a job is going over the DLQ (that job's replay order may change)";
/** package.json sits beside dist/ in a checkout and in the image (/app). */
const PACKAGE = new URL('../../../../package.json', import.meta.url);

type Commands = typeof import('./read-commands.js') & typeof import('./job-commands.js');

async function commands(): Promise<Commands> {
  const [read, jobs] = await Promise.all([import('./read-commands.js'), import('./job-commands.js')]);
  return { ...read, ...jobs };
}

/** The action of a command: its arguments, options, then the command itself (commander's order). */
function run<A extends unknown[]>(fn: (c: Commands, ctx: CliContext, ...args: A) => Promise<void>) {
  return (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    return withContext(cmd.optsWithGlobals<{ connectTimeout: number }>().connectTimeout, async (ctx) => fn(await commands(), ctx, ...args));
  };
}

function readCommands(program: Command): void {
  addFilterOptions(program.command('stats').description('totals of the dead letters by class, code, stage and age'))
    .option('--json', 'print JSON')
    .option('--force', FORCE)
    .action(run((c, ctx, o) => c.statsCommand(ctx, o)));
  addFilterOptions(program.command('list').description('the dead letters, in DLQ order, a page at a time'))
    .option('--limit <n>', 'page size', positive(), 20)
    .option('--offset <n>', 'dead letters to skip', count, 0)
    .option('--json', 'print JSON')
    .option('--force', FORCE)
    .action(run((c, ctx, o) => c.listCommand(ctx, o)));
  program
    .command('show <id>')
    .description('one dead letter: headers, failure history (x-death included), body')
    .option('--json', 'print JSON')
    .option('--force', FORCE)
    .action(run((c, ctx, id: string, o) => c.showCommand(ctx, id, o)));
}

function changeOptions(cmd: Command, verb: 'replay' | 'purge'): Command {
  return addFilterOptions(cmd)
    .option('--all', `${verb} every dead letter`)
    .option('--limit <n>', `${verb} at most this many`, positive())
    .option('--dry-run', 'only say what would happen')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .option('--wait', 'follow the job until it ends; exit non-zero if it fails')
    .option('--json', 'print JSON')
    .option('--force', FORCE)
    .hook('preAction', (c) => checkChange(verb, c.opts<ChangeOptions>()));
}

function changeCommands(program: Command): void {
  changeOptions(program.command('replay').description('republish dead letters to the lane and shard they came from (a job run by the dlq-replayer)'), 'replay')
    .option('--rate <n>', 'replays per second (default REPLAY_RATE_PER_SECOND)', positive(false))
    .action(run((c, ctx, o: ChangeOptions) => c.changeCommand(ctx, 'replay', o)));
  changeOptions(program.command('purge').description('delete dead letters for good (a job run by the dlq-replayer)'), 'purge').action(
    run((c, ctx, o: ChangeOptions) => c.changeCommand(ctx, 'purge', o)),
  );
}

function jobCommands(program: Command): void {
  const jobs = program.command('jobs').description('replay and purge jobs');
  jobs
    .command('list', { isDefault: true })
    .description('recent jobs, newest first')
    .option('--limit <n>', 'how many', positive(), 20)
    .option('--json', 'print JSON')
    .action(run((c, ctx, o) => c.jobsListCommand(ctx, o)));
  jobs
    .command('status <id>')
    .description('one job and its progress')
    .option('--json', 'print JSON')
    .action(run((c, ctx, id: string, o) => c.jobStatusCommand(ctx, id, o)));
  jobs
    .command('cancel <id>')
    .description('remove a job that has not started, or stop a running one (the DLQ keeps its order)')
    .option('--json', 'print JSON')
    .action(run((c, ctx, id: string, o) => c.jobCancelCommand(ctx, id, o)));
}

function deadline(v: string): number {
  const ms = duration(v);
  if (ms <= 0) throw new InvalidArgumentError('not a positive duration');
  return ms;
}

export function buildProgram(): Command {
  const { version } = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { version: string };
  const program = new Command('postmaster-dlq')
    .description(
      "Inspect, replay and purge Postmaster's dead-letter queue. Configured by the fleet's environment (AMQP_URL, REDIS_URL, TOPOLOGY_PREFIX, REDIS_KEY_PREFIX, ...).",
    )
    .version(version)
    .addOption(
      new Option('--connect-timeout <duration>', 'give up on an unreachable RabbitMQ or Redis after this long (exit 4)')
        .env('DLQ_CONNECT_TIMEOUT')
        .default(5000, '5s')
        .argParser(deadline),
    )
    // Set before the commands are added: each inherits them.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`postmaster-dlq: ${text.replace(/^error: /, '')}`) })
    .showHelpAfterError('(add --help for usage)');
  readCommands(program);
  changeCommands(program);
  jobCommands(program);
  return program;
}
