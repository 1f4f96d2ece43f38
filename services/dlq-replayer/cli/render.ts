/**
 * The readable (non-JSON) output of the CLI: cli-table3 tables without colours, so they stay
 * legible in a pipe or a log.
 */
import Table from 'cli-table3';
import type { DeadLetter } from '../dead-letter.js';
import { formatDuration } from '../filter.js';
import type { JobView } from '../jobs.js';
import type { DlqSummary } from '../summary.js';

function table(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [] }, wordWrap: true });
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function age(failedAt: number | null, now = Date.now()): string {
  return failedAt === null ? '?' : formatDuration(now - failedAt);
}

/** A dead letter as one row of `list` (and the JSON item of `list --json`). */
export interface ListItem {
  position: number;
  id: string | null;
  stage: string | null;
  lane: string | null;
  user: string | null;
  class: string;
  code: string;
  message: string;
  attempt: number;
  replays: number;
  failedAt: string | null;
  age: string;
  source: string;
  origin: string | null;
}

export function listItem(dl: DeadLetter, position: number, now = Date.now()): ListItem {
  return {
    position,
    id: dl.id,
    stage: dl.stage,
    lane: dl.lane,
    user: dl.user,
    class: dl.failureClass,
    code: dl.code,
    message: dl.message,
    attempt: dl.attempt,
    replays: dl.replays,
    failedAt: dl.failedAt === null ? null : new Date(dl.failedAt).toISOString(),
    age: age(dl.failedAt, now),
    source: dl.source,
    origin: dl.origin ? `${dl.origin.exchange} / ${dl.origin.routingKey}` : null,
  };
}

export function renderList(items: ListItem[]): string {
  const t = table(['#', 'id', 'age', 'lane', 'class', 'code', 'user', 'att', 'rep', 'message']);
  for (const i of items) {
    t.push([i.position, i.id ?? '-', i.age, i.lane ?? i.stage ?? '?', i.class, i.code, i.user ?? '-', i.attempt, i.replays, truncate(i.message, 60)]);
  }
  return t.toString();
}

function counts(title: string, rows: Record<string, number>, keepZero = false): string {
  const t = table([title, 'count']);
  const entries = Object.entries(rows).filter(([, n]) => keepZero || n > 0);
  for (const [k, n] of keepZero ? entries : entries.sort((a, b) => b[1] - a[1])) t.push([k, n]);
  return t.toString();
}

export function renderSummary(s: DlqSummary): string {
  if (s.total === 0) return '';
  return [
    counts('class', s.byClass),
    counts('code', s.byCode),
    counts('stage / lane', s.byStage),
    counts('age', s.byAge, true),
    `oldest failure ${s.oldest ?? '?'}, newest ${s.newest ?? '?'}`,
  ].join('\n');
}

export function renderJobs(jobs: JobView[]): string {
  const t = table(['id', 'action', 'state', 'filter', 'scanned', 'replayed', 'purged', 'kept', 'created', 'note']);
  for (const j of jobs) {
    const p = j.progress;
    const note = j.failedReason ?? (p.waiting ? `waiting: ${p.waiting}` : p.phase);
    t.push([
      j.id,
      j.auto ? `${j.action} (auto)` : j.action,
      j.state,
      truncate(j.filter, 40),
      `${p.scanned}/${p.total}`,
      p.replayed,
      p.purged,
      p.kept,
      j.createdAt,
      truncate(note, 50),
    ]);
  }
  return t.toString();
}

export function renderJob(j: JobView): string {
  const t = new Table({ style: { head: [], border: [] }, wordWrap: true });
  const p = j.progress;
  const rows: Array<[string, unknown]> = [
    ['job', `${j.id} (${j.action}${j.auto ? ', automatic' : ''})`],
    ['state', j.state],
    ['filter', j.filter],
    ['rate', j.action === 'purge' ? 'unthrottled' : j.ratePerSecond === null ? 'default (REPLAY_RATE_PER_SECOND)' : `${j.ratePerSecond}/s`],
    ['limit', j.limit ?? 'none'],
    ['phase', p.waiting ? `${p.phase} (waiting: ${p.waiting})` : p.phase],
    ['snapshot', `${p.scanned} of ${p.total} dead letters gone over`],
    ['matched', p.matched],
    ['replayed / purged', `${p.replayed} / ${p.purged}`],
    ['kept in DLQ', `${p.kept} (unroutable ${p.unroutable})`],
    ['duplicates dropped', p.duplicates],
    ['requested', `${j.createdAt} by ${j.requestedBy}`],
    ['started / finished', `${j.startedAt ?? '-'} / ${j.finishedAt ?? '-'}`],
  ];
  if (j.failedReason) rows.push(['failed', j.failedReason]);
  for (const [k, v] of rows) t.push({ [k]: String(v) });
  return t.toString();
}
