/**
 * `replay`, `purge` and `jobs`: the commands that enqueue, follow and cancel the dlq-replayer's
 * jobs. The CLI never changes the DLQ itself; `--dry-run` only reads it.
 */
import os from 'node:os';
import { businessNumbers } from '../../../shared/platform/numbers.js';
import { describeFilter, type DlqFilter } from '../filter.js';
import { signJobData } from '../job-signature.js';
import { cancelJob, enqueue, findJob, listJobs, viewJob, type JobView, type ReplayAction, type ReplayJobData } from '../jobs.js';
import { CliError, emit, type CliContext } from './context.js';
import { ask } from './confirm.js';
import { filterFrom, type FilterOptions } from './filter-options.js';
import { follow } from './follow.js';
import { summarize } from './read-commands.js';
import { renderJob, renderJobs, renderSummary } from './render.js';

const SAMPLE = 10;

export interface ChangeOptions extends FilterOptions {
  all?: boolean;
  rate?: number;
  limit?: number;
  dryRun?: boolean;
  yes?: boolean;
  wait?: boolean;
  json?: boolean;
  force?: boolean;
}

function requestedBy(): string {
  return `${os.userInfo().username}@${os.hostname()}`;
}

async function dryRun(ctx: CliContext, action: ReplayAction, filter: DlqFilter, limit: number | null, o: ChangeOptions): Promise<void> {
  const { summary, read, matched } = await summarize(ctx, filter, o.force);
  const wouldAct = limit === null ? matched.length : Math.min(limit, matched.length);
  const unroutable = action === 'replay' ? matched.filter((dl) => !dl.origin).length : 0;
  const out = {
    dryRun: true,
    action,
    filter: describeFilter(filter),
    depth: read.depth - read.markers,
    matched: matched.length,
    wouldAct,
    unroutable,
    sample: matched.slice(0, SAMPLE).map((dl) => dl.id),
    summary,
  };
  emit(Boolean(o.json), out, () =>
    [
      `dry run: ${out.matched} of ${out.depth} dead letters match ${out.filter}; a ${action} would ${action === 'replay' ? 'republish' : 'delete'} ${wouldAct}` +
        (unroutable ? ` (${unroutable} name no lane and would stay)` : '') +
        '. Nothing was changed.',
      renderSummary(summary),
      out.sample.length ? `first ids: ${out.sample.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('\n'),
  );
}

/** On a terminal: counts what matches and asks. Resolves false when nothing matches. */
async function confirmChange(
  ctx: CliContext,
  action: ReplayAction,
  filter: DlqFilter,
  limit: number | null,
  rate: number | null,
  o: ChangeOptions,
): Promise<boolean> {
  if (o.yes) return true;
  const { matched, read } = await summarize(ctx, filter, o.force);
  if (matched.length === 0) return false;
  const n = limit === null ? matched.length : Math.min(limit, matched.length);
  const perSecond = rate ?? ctx.cfg.replayRatePerSecond;
  const pace = perSecond ? `at ${perSecond}/s` : 'without a rate limit';
  const how = action === 'replay' ? `Replay ${n} dead letters to their lanes ${pace}` : `Delete ${n} dead letters for good`;
  await ask(`${how} (${describeFilter(filter)}; ${read.depth - read.markers} in ${ctx.dlq})?`);
  return true;
}

export async function changeCommand(ctx: CliContext, action: ReplayAction, o: ChangeOptions): Promise<void> {
  const filter = filterFrom(o, businessNumbers(ctx.cfg));
  const limit = o.limit ?? null;
  const rate = action === 'replay' ? (o.rate ?? null) : null;
  if (o.dryRun) return dryRun(ctx, action, filter, limit, o);
  if (!(await confirmChange(ctx, action, filter, limit, rate, o))) {
    emit(Boolean(o.json), { job: null, matched: 0 }, () => `no dead letter matches ${describeFilter(filter)}: nothing to ${action}`);
    return;
  }
  const data: ReplayJobData = { action, filter, ratePerSecond: rate, limit, requestedBy: requestedBy(), requestedAt: new Date().toISOString() };
  const id = await enqueue(ctx.queue, signJobData(data, ctx.cfg.replayJobKey));
  if (!o.wait) {
    const view = await viewJob((await findJob(ctx.queue, id))!);
    emit(Boolean(o.json), view, () => `job ${id} enqueued: ${action} ${describeFilter(filter)}; follow it with "postmaster-dlq jobs status ${id}"`);
    return;
  }
  const view = await follow(ctx, id);
  emit(Boolean(o.json), view, () => finalLine(view));
  if (view.state !== 'completed') process.exitCode = 1;
}

function finalLine(v: JobView): string {
  const p = v.progress;
  if (v.state !== 'completed') return `job ${v.id} ${v.state}: ${v.failedReason ?? 'no reason given'}`;
  if (v.result?.outcome === 'empty') return `job ${v.id} completed: nothing matched, the DLQ was not touched`;
  const did = v.action === 'purge' ? `${p.purged} purged` : `${p.replayed} replayed`;
  const missing = v.result?.markerMissing ? ' (its end marker was gone: someone else emptied part of the DLQ meanwhile)' : '';
  return `job ${v.id} completed: ${did}, ${p.kept} kept in the DLQ (${p.unroutable} unroutable), ${p.duplicates} duplicates dropped${missing}`;
}

export async function jobsListCommand(ctx: CliContext, o: { json?: boolean; limit: number }): Promise<void> {
  const jobs = await listJobs(ctx.queue, o.limit);
  const schedulers = await ctx.queue.getJobSchedulers();
  const auto = schedulers.find((s) => s.key === 'auto-replay' || s.name === 'auto-replay') ?? null;
  emit(Boolean(o.json), { jobs, autoReplay: auto ? { every: auto.every ?? null, next: auto.next ?? null } : null }, () =>
    [
      jobs.length ? renderJobs(jobs) : 'no replay or purge jobs',
      auto ? `automatic replay of transient dead letters: every ${Math.round(Number(auto.every ?? 0) / 1000)}s` : 'automatic replay: off',
    ].join('\n'),
  );
}

export async function jobStatusCommand(ctx: CliContext, id: string, o: { json?: boolean }): Promise<void> {
  const job = await findJob(ctx.queue, id);
  if (!job) throw new CliError(`no job ${id}`, 1);
  const view = await viewJob(job);
  emit(Boolean(o.json), view, () => renderJob(view));
}

export async function jobCancelCommand(ctx: CliContext, id: string, o: { json?: boolean }): Promise<void> {
  const result = await cancelJob(ctx.queue, ctx.redis, ctx.keys, id);
  const text: Record<typeof result, string> = {
    removed: `job ${id} had not started; removed`,
    cancelling: `job ${id} is cancelling: it stops replaying and keeps the rest of the DLQ in order`,
    finished: `job ${id} has already ended`,
    unknown: `no job ${id}`,
  };
  emit(Boolean(o.json), { id, result }, () => text[result]);
  if (result === 'unknown') process.exitCode = 1;
}
