/**
 * `stats`, `list`, `show` and the dry runs: everything that reads the DLQ without changing it
 * (reader.ts says how). Each read takes the DLQ lock, so it never runs while a job's pass does.
 */
import { waitingUsers } from '../../../shared/stage/dead-letter-holds.js';
import { businessNumbers } from '../../../shared/platform/numbers.js';
import { STAGES, type Stage } from '../../../shared/amqp/topology/names.js';
import type { DeadLetter } from '../dead-letter.js';
import { describeFilter, matches, type DlqFilter } from '../filter.js';
import { readDeadLetters, type ReadResult, type Visit } from '../reader.js';
import { sleep } from '../throttle.js';
import { SummaryBuilder, type DlqSummary } from '../summary.js';
import { CliError, emit, type CliContext } from './context.js';
import { filterFrom, type FilterOptions } from './filter-options.js';
import { age, listItem, renderList, renderSummary, type ListItem } from './render.js';

const READER_WAIT_MS = 10_000;

export interface ReadCommandOptions extends FilterOptions {
  json?: boolean;
  force?: boolean;
}

type Read = ReadResult & { markers: number };

/** Reads the DLQ under the lock (or without it, with --force). */
export async function readUnderLock(ctx: CliContext, force: boolean | undefined, visit: Visit<DeadLetter>): Promise<Read> {
  const conn = await ctx.conn();
  const read = () => readDeadLetters(conn, ctx.dlq, ctx.lanes, visit);
  if (force) return read();
  const deadline = Date.now() + READER_WAIT_MS;
  for (;;) {
    const got = await ctx.lock.acquireForReader();
    if ('release' in got) {
      try {
        return await read();
      } finally {
        await got.release();
      }
    }
    if (got.holder.kind === 'job') {
      const id = got.holder.id;
      throw new CliError(
        `job ${id} is going over the DLQ now; reading it at the same time would change the order of that job's replay. ` +
          `Follow the job with "postmaster-dlq jobs status ${id}", or add --force to read anyway.`,
        3,
      );
    }
    if (Date.now() > deadline) throw new CliError('another read of the DLQ (stats, list, show) has not finished in 10 s; try again', 3);
    await sleep(200);
  }
}

/** Dead letters that were in the DLQ but could not be read (someone else held them): the view is partial. */
function missed(r: Read): number {
  return Math.max(0, r.depth - r.markers - r.read);
}

export async function summarize(ctx: CliContext, filter: DlqFilter, force?: boolean): Promise<{ summary: DlqSummary; read: Read; matched: DeadLetter[] }> {
  const b = new SummaryBuilder();
  const now = Date.now();
  const matched: DeadLetter[] = [];
  const read = await readUnderLock(ctx, force, (dl) => {
    if (!matches(filter, dl, now)) return;
    b.add(dl);
    matched.push(dl);
  });
  return { summary: b.result(), read, matched };
}

interface StageWait {
  users: number;
  /** Seconds the longest-waiting user has waited; null without any. */
  oldestAgeS: number | null;
  oldestAge: string | null;
}

/** Per stage, the users whose later messages wait behind a dead letter (DLQ_ORDERING_MODE=strict). */
async function waitingBehindDeadLetters(ctx: CliContext): Promise<Record<Stage, StageWait>> {
  const now = Date.now();
  const out = {} as Record<Stage, StageWait>;
  for (const stage of STAGES) {
    const w = await waitingUsers(ctx.redis, ctx.keys, stage);
    const since = w.oldestSince;
    out[stage] = { users: w.users, oldestAgeS: since === null ? null : Math.round((now - since) / 1000), oldestAge: since === null ? null : age(since, now) };
  }
  return out;
}

function renderWaiting(waiting: Record<Stage, StageWait>): string {
  const lines = Object.entries(waiting)
    .filter(([, w]) => w.users > 0)
    .map(([stage, w]) => `  ${stage}: ${w.users} user${w.users === 1 ? '' : 's'}, the oldest for ${w.oldestAge}`);
  return lines.length ? ['users whose later messages wait behind a dead letter (replay or purge it to let them go):', ...lines].join('\n') : '';
}

export async function statsCommand(ctx: CliContext, o: ReadCommandOptions): Promise<void> {
  const filter = filterFrom(o, businessNumbers(ctx.cfg));
  const { summary, read } = await summarize(ctx, filter, o.force);
  const waiting = await waitingBehindDeadLetters(ctx);
  const out = { ...summary, queue: ctx.dlq, depth: read.depth - read.markers, filter: describeFilter(filter), unread: missed(read), waiting };
  emit(Boolean(o.json), out, () => {
    const head =
      `${ctx.dlq}: ${summary.total} dead letter${summary.total === 1 ? '' : 's'}` +
      (describeFilter(filter) !== 'all' ? ` matching ${describeFilter(filter)} (of ${out.depth})` : '');
    const note = out.unread ? `\n${out.unread} could not be read (held by another consumer); the counts are partial` : '';
    return [head, renderSummary(summary), renderWaiting(waiting)].filter(Boolean).join('\n') + note;
  });
}

export async function listCommand(ctx: CliContext, o: ReadCommandOptions & { limit: number; offset: number }): Promise<void> {
  const filter = filterFrom(o, businessNumbers(ctx.cfg));
  const { limit, offset } = o;
  const now = Date.now();
  const items: ListItem[] = [];
  let total = 0;
  await readUnderLock(ctx, o.force, (dl, position) => {
    if (!matches(filter, dl, now)) return;
    if (total >= offset && total < offset + limit) items.push(listItem(dl, position, now));
    total++;
  });
  emit(Boolean(o.json), { total, offset, limit, filter: describeFilter(filter), items }, () => {
    if (total === 0) return `no dead letters${describeFilter(filter) === 'all' ? '' : ` match ${describeFilter(filter)}`}`;
    return (
      `${renderList(items)}\n${offset + 1}-${offset + items.length} of ${total}` +
      (offset + items.length < total ? ` (next page: --offset ${offset + items.length})` : '')
    );
  });
}

export async function showCommand(ctx: CliContext, id: string, o: { json?: boolean; force?: boolean }): Promise<void> {
  let found: { dl: DeadLetter; position: number } | null = null;
  await readUnderLock(ctx, o.force, (dl, position) => {
    if (dl.id !== id && dl.msg.properties.messageId !== id && dl.key !== id) return;
    found = { dl, position };
    return 'stop';
  });
  if (!found) throw new CliError(`no dead letter with id ${id} in ${ctx.dlq}`, 1);
  const { dl, position } = found as { dl: DeadLetter; position: number };
  const view = showView(dl, position);
  emit(Boolean(o.json), view, () => renderShow(view));
}

function showView(dl: DeadLetter, position: number) {
  const p = dl.msg.properties;
  const body = dl.envelope ?? dl.msg.content.toString('utf8');
  return {
    ...listItem(dl, position),
    key: dl.key,
    bodyError: dl.bodyError,
    properties: { messageId: p.messageId, correlationId: p.correlationId, timestamp: p.timestamp, priority: p.priority, contentType: p.contentType },
    headers: p.headers ?? {},
    history: { current: { class: dl.failureClass, code: dl.code, message: dl.message, source: dl.source }, deaths: dl.deaths, earlier: dl.history },
    body,
  };
}

function renderShow(v: ReturnType<typeof showView>): string {
  const lines = [
    `dead letter ${v.id ?? '(no id)'} — #${v.position} in the DLQ`,
    `  ${v.class} / ${v.code} at ${v.stage ?? '?'} (${v.lane ?? '?'}), ${v.age} ago, attempt ${v.attempt}, replayed ${v.replays}x`,
    `  ${v.message}`,
    `  replays to: ${v.origin ?? 'nowhere (no lane of this topology)'}`,
    '',
    'properties:',
    JSON.stringify(v.properties, null, 2),
    'headers:',
    JSON.stringify(v.headers, null, 2),
    'failure history (broker x-death, then earlier failures before replays):',
    JSON.stringify({ deaths: v.history.deaths, earlier: v.history.earlier }, null, 2),
    v.bodyError ? `body (not a valid envelope: ${v.bodyError}):` : 'body:',
    typeof v.body === 'string' ? v.body : JSON.stringify(v.body, null, 2),
  ];
  return lines.join('\n');
}
