/**
 * Which dead letters a command or a job is about. A filter is plain data (it travels in a BullMQ
 * job); every given criterion must hold, and a list criterion holds when any of its values does.
 */
import type { DeadLetter } from './dead-letter.js';

export interface DlqFilter {
  ids?: string[];
  codes?: string[];
  classes?: string[];
  /** A stage (`send`) or a lane (`send.urgent`). */
  stages?: string[];
  users?: string[];
  /** The envelopes' `from` (phone number ids; '' for a message without one, i.e. from the default number). */
  froms?: string[];
  /** Failed at least this long ago. */
  olderThanMs?: number;
  /** Failed at most this long ago. */
  newerThanMs?: number;
  /** Replayed fewer times than this (the automatic policy's limit). */
  replaysBelow?: number;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "90s", "10m", "2h", "7d", "500ms" (or bare milliseconds) → milliseconds. */
export function parseDuration(spec: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(spec);
  if (!m) throw new Error(`"${spec}" is not a duration like 30s, 10m, 2h or 7d`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']);
}

/** 93784000 → "1d2h"; 45000 → "45s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const parts: string[] = [];
  let left = Math.floor(ms / 1000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (left >= size && parts.length < 2) {
      parts.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    }
  }
  return parts.join('');
}

export function isEmptyFilter(f: DlqFilter): boolean {
  return Object.values(f).every((v) => v === undefined || (Array.isArray(v) && v.length === 0));
}

function oneOf(values: string[] | undefined, ...candidates: Array<string | null>): boolean {
  if (!values || values.length === 0) return true;
  return candidates.some((c) => c !== null && values.includes(c));
}

export function matches(f: DlqFilter, dl: DeadLetter, now = Date.now()): boolean {
  if (!oneOf(f.ids, dl.id, dl.msg.properties.messageId ?? null)) return false;
  if (!oneOf(f.codes, dl.code)) return false;
  if (!oneOf(f.classes, dl.failureClass)) return false;
  if (!oneOf(f.stages, dl.stage, dl.lane)) return false;
  if (!oneOf(f.users, dl.user)) return false;
  if (!oneOf(f.froms, dl.envelope ? (dl.envelope.from ?? '') : null)) return false;
  if (f.replaysBelow !== undefined && dl.replays >= f.replaysBelow) return false;
  if (f.olderThanMs !== undefined || f.newerThanMs !== undefined) {
    if (dl.failedAt === null) return false;
    const age = now - dl.failedAt;
    if (f.olderThanMs !== undefined && age < f.olderThanMs) return false;
    if (f.newerThanMs !== undefined && age > f.newerThanMs) return false;
  }
  return true;
}

/** "code=131026,131047 class=permanent older-than=2h" — for prompts, logs and job listings. */
export function describeFilter(f: DlqFilter): string {
  if (isEmptyFilter(f)) return 'all';
  const parts: string[] = [];
  const list = (name: string, v?: string[]) => v?.length && parts.push(`${name}=${v.join(',')}`);
  list('id', f.ids);
  list('code', f.codes);
  list('class', f.classes);
  list('stage', f.stages);
  list('user', f.users);
  list('from', f.froms?.filter(Boolean));
  if (f.olderThanMs !== undefined) parts.push(`older-than=${formatDuration(f.olderThanMs)}`);
  if (f.newerThanMs !== undefined) parts.push(`newer-than=${formatDuration(f.newerThanMs)}`);
  if (f.replaysBelow !== undefined) parts.push(`replays<${f.replaysBelow}`);
  return parts.join(' ');
}
