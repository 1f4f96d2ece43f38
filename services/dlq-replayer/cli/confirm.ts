/**
 * Confirmation of a destructive command. On a terminal the operator answers y/N; without a
 * terminal (a script, a pipe, CI) nothing is asked and the command refuses unless --yes was given,
 * so a replay or purge never happens because a prompt was answered by accident.
 */
import readline from 'node:readline/promises';
import { CliError } from './context.js';

export function requireTerminal(action: string): void {
  if (!process.stdin.isTTY) {
    throw new CliError(`refusing to ${action} without confirmation: stdin is not a terminal. Add --yes to ${action} non-interactively (try --dry-run first).`, 2);
  }
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
