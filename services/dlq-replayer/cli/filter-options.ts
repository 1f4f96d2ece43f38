/**
 * The filter options every DLQ command takes, and the parsers of option values. A bad value is
 * refused by commander while it parses (InvalidArgumentError: exit 2), before anything connects.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { FAILURE_CLASSES } from '../../../shared/failures/errors.js';
import type { BusinessNumbers } from '../../../shared/platform/numbers.js';
import { parseLane } from '../../../shared/amqp/topology/names.js';
import { isEmptyFilter, parseDuration, type DlqFilter } from '../filter.js';
import { CliError } from './errors.js';

/** The filter options as commander hands them over, already parsed. */
export interface FilterOptions {
  id?: string[];
  code?: string[];
  class?: string[];
  stage?: string[];
  user?: string[];
  from?: string[];
  olderThan?: number;
  newerThan?: number;
}

const CLASSES = [...FAILURE_CLASSES, 'unknown'];

/** "a, b,,c" → ["a", "b", "c"], each checked by `valid` (an error message, or null). */
function list(valid: (item: string) => string | null = () => null): (v: string) => string[] {
  return (v) => {
    const items = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) throw new InvalidArgumentError('an empty list');
    for (const item of items) {
      const why = valid(item);
      if (why) throw new InvalidArgumentError(why);
    }
    return items;
  };
}

/** A duration (500ms, 30s, 10m, 2h, 7d, 1w) in milliseconds. */
export function duration(v: string): number {
  try {
    return parseDuration(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** A positive number; an integer unless `integer` is false. */
export function positive(integer = true): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new InvalidArgumentError(`not a positive ${integer ? 'integer' : 'number'}`);
    return n;
  };
}

/** 0, 1, 2, ... */
export function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('not a whole number ≥ 0');
  return n;
}

export function addFilterOptions(cmd: Command): Command {
  return cmd
    .option('--id <ids>', 'envelope ids (comma-separated)', list())
    .option('--code <codes>', 'failure codes, e.g. 131026,http-400,delivery-limit', list())
    .option(
      '--class <classes>',
      `failure classes: ${CLASSES.join(', ')}`,
      list((c) => (CLASSES.includes(c) ? null : `"${c}" is not one of ${CLASSES.join(', ')}`)),
    )
    .option(
      '--stage <stages>',
      'stages or lanes: dispatch, send, dispatch.urgent, send.urgent',
      list((s) => (parseLane(s) ? null : `"${s}" is not a stage or lane`)),
    )
    .option('--user <users>', 'user (recipient) phone numbers', list())
    .option('--from <numbers>', 'business numbers the messages go out from: phone number ids or aliases of WHATSAPP_NUMBERS', list())
    .option('--older-than <duration>', 'failed at least this long ago (30s, 10m, 2h, 7d)', duration)
    .option('--newer-than <duration>', 'failed at most this long ago', duration);
}

/**
 * `--from` as the envelopes' `from` values: each number's id, and '' (no `from`) for the default
 * number, whose messages usually carry none. Needs the configuration, so it is checked after parsing.
 */
function fromValues(refs: string[] | undefined, numbers: BusinessNumbers | undefined): string[] | undefined {
  if (!refs || !numbers) return refs;
  return refs.flatMap((ref) => {
    const n = numbers.resolve(ref);
    if (!n) throw new CliError(`--from: ${numbers.notConfigured(ref)}`, 2);
    return n === numbers.default ? [n.id, ''] : [n.id];
  });
}

export function filterFrom(o: FilterOptions, numbers?: BusinessNumbers): DlqFilter {
  const f: DlqFilter = {
    ids: o.id,
    codes: o.code,
    classes: o.class,
    stages: o.stage,
    users: o.user,
    froms: fromValues(o.from, numbers),
    olderThanMs: o.olderThan,
    newerThanMs: o.newerThan,
  };
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as DlqFilter;
}

/** Destructive commands need a filter or an explicit --all. */
export function requireScope(action: string, filter: DlqFilter, all: boolean | undefined): void {
  if (all && !isEmptyFilter(filter)) throw new CliError(`--all ${action}s every dead letter: leave out the filters, or --all`, 2);
  if (!all && isEmptyFilter(filter)) {
    throw new CliError(
      `say which dead letters to ${action}: a filter (--code, --class, --stage, --user, --from, --id, --older-than, --newer-than) or --all`,
      2,
    );
  }
}
