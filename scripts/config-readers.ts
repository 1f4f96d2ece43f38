/**
 * Which deployable reads which configuration key, found in the source: every file a program's
 * entry point reaches through relative imports, searched for the key as a property (`cfg.shards`,
 * `ep.redisUrl`) or a quoted name (`Pick<Config, 'redisUrl'>`). The loader itself (shared/platform/config.ts,
 * and the production policy it runs on every key) is left out, or every program would read
 * everything. An over-approximation: a reachable module counts even where its program never calls
 * the function that reads the key.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The programs that load shared/platform/config.ts, by the name the reference shows, and their entry points. */
export const PROGRAMS: Record<string, string> = {
  ingress: 'services/ingress/main.ts',
  dispatcher: 'services/dispatcher/main.ts',
  sender: 'services/sender/main.ts',
  'dlq-replayer': 'services/dlq-replayer/main.ts',
  'dlq CLI': 'services/dlq-replayer/cli.ts',
  'topology job': 'services/topology/main.ts',
  'npm start': 'scripts/start.ts',
};

/** The long-running services and jobs, all of PROGRAMS but the development launcher. */
export const SERVICES = Object.keys(PROGRAMS).filter((p) => p !== 'npm start');

const LOADER = new Set(['shared/platform/config.ts', 'shared/platform/production-policy.ts']);

const IMPORT = /(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g;

/** Every source file (repository-relative) that `entry` reaches, itself included. */
export function reachable(root: string, entry: string): string[] {
  const seen = new Set<string>();
  const visit = (rel: string) => {
    if (seen.has(rel)) return;
    seen.add(rel);
    for (const m of readFileSync(path.join(root, rel), 'utf8').matchAll(IMPORT)) {
      visit(path.posix.join(path.posix.dirname(rel), `${m[1]}.ts`));
    }
  };
  visit(entry);
  return [...seen].sort();
}

/** For each key, the programs whose reachable source reads it, in PROGRAMS' order. */
export function configReaders(root: string, keys: string[]): Map<string, string[]> {
  const out = new Map(keys.map((k) => [k, [] as string[]]));
  for (const [program, entry] of Object.entries(PROGRAMS)) {
    const text = reachable(root, entry)
      .filter((rel) => !LOADER.has(rel))
      .map((rel) => readFileSync(path.join(root, rel), 'utf8'))
      .join('\n');
    for (const key of keys) {
      if (new RegExp(`\\.${key}\\b|'${key}'`).test(text)) out.get(key)!.push(program);
    }
  }
  return out;
}
