/**
 * Confirmation of a destructive command. On a terminal the operator answers y/N; without a
 * terminal (a script, a pipe, CI) nothing is asked and the command refuses unless --yes was given,
 * so a replay or purge never happens because a prompt was answered by accident.
 */
import readline from 'node:readline/promises';
import type { ReplayAction } from '../jobs.js';
import { CliError } from './errors.js';
import { filterFrom, requireScope } from './filter-options.js';
import type { ChangeOptions } from './job-commands.js';

export function requireTerminal(action: string): void {
  if (!process.stdin.isTTY) {
    throw new CliError(
      `refusing to ${action} without confirmation: stdin is not a terminal. Add --yes to ${action} non-interactively (try --dry-run first).`,
      2,
    );
  }
}

/**
 * What `replay` and `purge` refuse before anything connects (exit 2): no filter and no --all, or no
 * --yes without a terminal to ask on.
 */
export function checkChange(action: ReplayAction, o: ChangeOptions): void {
  requireScope(action, filterFrom(o), o.all);
  if (!o.dryRun && !o.yes) requireTerminal(action);
}

/** Asks on the terminal; anything but y/yes aborts. */
export async function ask(question: string): Promise<void> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('aborted: nothing was changed', 1);
  } finally {
    rl.close();
  }
}
