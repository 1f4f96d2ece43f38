/**
 * The `postmaster-dlq` command line (commander): every command takes --json; the readable output
 * is tables.
 */
import { Command } from 'commander';
import { withContext, type CliContext } from './context.js';
import { addFilterOptions } from './filter-options.js';
import { changeCommand, jobCancelCommand, jobsListCommand, jobStatusCommand, type ChangeOptions } from './job-commands.js';
import { listCommand, showCommand, statsCommand } from './read-commands.js';

const FORCE = 'read even while a job is going over the DLQ (that job\'s replay order may change)';

function run<A extends unknown[]>(fn: (ctx: CliContext, ...args: A) => Promise<void>) {
  return (...args: A) => withContext((ctx) => fn(ctx, ...args));
}

function readCommands(program: Command): void {
  addFilterOptions(program.command('stats').description('totals of the dead letters by class, code, stage and age'))
    .option('--json', 'print JSON')
    .option('--force', FORCE)
    .action(run((ctx, o) => statsCommand(ctx, o)));
  addFilterOptions(program.command('list').description('the dead letters, in DLQ order, a page at a time'))
    .option('--limit <n>', 'page size', '20')
    .option('--offset <n>', 'dead letters to skip', '0')
    .option('--json', 'print JSON')
    .option('--force', FORCE)
    .action(run((ctx, o) => listCommand(ctx, o)));
  program
    .command('show <id>')
    .description('one dead letter: headers, failure history (x-death included), body')
    .option('--json', 'print JSON')
    .option('--force', FORCE)
    .action(run((ctx, id: string, o) => showCommand(ctx, id, o)));
}

function changeOptions(cmd: Command, verb: string): Command {
  return addFilterOptions(cmd)
    .option('--all', `${verb} every dead letter`)
    .option('--limit <n>', `${verb} at most this many`)
    .option('--dry-run', 'only say what would happen')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .option('--wait', 'follow the job until it ends; exit non-zero if it fails')
    .option('--json', 'print JSON')
    .option('--force', FORCE);
}

function changeCommands(program: Command): void {
  changeOptions(program.command('replay').description('republish dead letters to the lane and shard they came from (a job run by the dlq-replayer)'), 'replay')
    .option('--rate <n>', 'replays per second (default REPLAY_RATE_PER_SECOND)')
    .action(run((ctx, o: ChangeOptions) => changeCommand(ctx, 'replay', o)));
  changeOptions(program.command('purge').description('delete dead letters for good (a job run by the dlq-replayer)'), 'purge').action(
    run((ctx, o: ChangeOptions) => changeCommand(ctx, 'purge', o)),
  );
}

function jobCommands(program: Command): void {
  const jobs = program.command('jobs').description('replay and purge jobs');
  jobs
    .command('list', { isDefault: true })
    .description('recent jobs, newest first')
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(run((ctx, o) => jobsListCommand(ctx, o)));
  jobs.command('status <id>').description('one job and its progress').option('--json', 'print JSON').action(run((ctx, id: string, o) => jobStatusCommand(ctx, id, o)));
  jobs
    .command('cancel <id>')
    .description('remove a job that has not started, or stop a running one (the DLQ keeps its order)')
    .option('--json', 'print JSON')
    .action(run((ctx, id: string, o) => jobCancelCommand(ctx, id, o)));
}

export function buildProgram(): Command {
  const program = new Command('postmaster-dlq')
    .description("Inspect, replay and purge Postmaster's dead-letter queue. Configured by the fleet's environment (AMQP_URL, REDIS_URL, TOPOLOGY_PREFIX, REDIS_KEY_PREFIX, ...).")
    .showHelpAfterError();
  readCommands(program);
  changeCommands(program);
  jobCommands(program);
  return program;
}
