/**
 * The command line of a generator of one committed file: write it, or with `--check` exit 1 when
 * the committed file differs from what the generator makes now (drift), naming the command to run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/scripts → ../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface GeneratedFile {
  /** Path in the repository. */
  rel: string;
  /** The npm script that regenerates it. */
  command: string;
  render(): string;
}

/** Writes the file (or checks it with `--check`); returns the exit code. */
export function runGenerator(file: GeneratedFile, argv: string[]): number {
  const text = file.render();
  const full = path.join(REPO_ROOT, file.rel);
  if (argv.includes('--check')) {
    let current: string | null = null;
    try {
      current = readFileSync(full, 'utf8');
    } catch {
      // missing counts as drift
    }
    if (current === text) return 0;
    console.error(`${file.rel} is out of date; run "${file.command}" and commit the result.`);
    return 1;
  }
  writeFileSync(full, text);
  console.error(`wrote ${file.rel}`);
  return 0;
}
