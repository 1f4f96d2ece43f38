/**
 * The filter options every DLQ command takes, and their translation into a DlqFilter.
 */
import type { Command } from 'commander';
import { FAILURE_CLASSES } from '../../../shared/failures/errors.js';
import type { BusinessNumbers } from '../../../shared/numbers.js';
import { parseLane } from '../../../shared/topology/names.js';
import { isEmptyFilter, parseDuration, type DlqFilter } from '../filter.js';
import { CliError } from './context.js';

export interface FilterOptions {
  id?: string;
  code?: string;
  class?: string;
  stage?: string;
  user?: string;
  from?: string;
  olderThan?: string;
  newerThan?: string;
}

const CLASSES = [...FAILURE_CLASSES, 'unknown'];

export function addFilterOptions(cmd: Command): Command {
  return cmd
    .option('--id <ids>', 'envelope ids (comma-separated)')
    .option('--code <codes>', 'failure codes, e.g. 131026,http-400,delivery-limit')
    .option('--class <classes>', `failure classes: ${CLASSES.join(', ')}`)
    .option('--stage <stages>', 'stages or lanes: dispatch, send, dispatch.urgent, send.urgent')
    .option('--user <users>', 'user (recipient) phone numbers')
    .option('--from <numbers>', 'business numbers the messages go out from: phone number ids or aliases of WHATSAPP_NUMBERS')
    .option('--older-than <duration>', 'failed at least this long ago (30s, 10m, 2h, 7d)')
    .option('--newer-than <duration>', 'failed at most this long ago');
}

function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  return items.length ? items : undefined;
}

function duration(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  try {
    return parseDuration(v);
  } catch (err) {
    throw new CliError(`--${name}: ${(err as Error).message}`, 2);
  }
}

/**
 * `--from` as the envelopes' `from` values: each number's id, and '' (no `from`) for the default
 * number, whose messages usually carry none.
 */
function fromValues(v: string | undefined, numbers: BusinessNumbers | undefined): string[] | undefined {
  const refs = list(v);
  if (!refs || !numbers) return refs;
  return refs.flatMap((ref) => {
    const n = numbers.resolve(ref);
    if (!n) throw new CliError(`--from: "${ref}" is not a configured business number (configured: ${numbers.describe()})`, 2);
    return n === numbers.default ? [n.id, ''] : [n.id];
  });
}

export function filterFrom(o: FilterOptions, numbers?: BusinessNumbers): DlqFilter {
  const classes = list(o.class);
  const bad = classes?.find((c) => !CLASSES.includes(c));
  if (bad) throw new CliError(`--class: "${bad}" is not one of ${CLASSES.join(', ')}`, 2);
  const stages = list(o.stage);
  const badStage = stages?.find((s) => !parseLane(s));
  if (badStage) throw new CliError(`--stage: "${badStage}" is not a stage or lane (dispatch, send, dispatch.urgent, send.urgent)`, 2);
  const f: DlqFilter = {
    ids: list(o.id),
    codes: list(o.code),
    classes,
    stages,
    users: list(o.user),
    froms: fromValues(o.from, numbers),
    olderThanMs: duration('older-than', o.olderThan),
    newerThanMs: duration('newer-than', o.newerThan),
  };
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as DlqFilter;
}

/** Destructive commands need a filter or an explicit --all. */
export function requireScope(action: string, filter: DlqFilter, all: boolean | undefined): void {
  if (all && !isEmptyFilter(filter)) throw new CliError(`--all ${action}s every dead letter: leave out the filters, or --all`, 2);
  if (!all && isEmptyFilter(filter)) {
    throw new CliError(`say which dead letters to ${action}: a filter (--code, --class, --stage, --user, --from, --id, --older-than, --newer-than) or --all`, 2);
  }
}

export function positiveNumber(name: string, v: string | undefined, integer = true): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new CliError(`--${name}: "${v}" is not a positive ${integer ? 'integer' : 'number'}`, 2);
  }
  return n;
}
