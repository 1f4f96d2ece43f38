/**
 * Helpers of the infra tests: the repository's files, parsed. Tests run from dist/test/infra, but
 * the manifests they check live in the source tree.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments, parse } from 'yaml';

const run = promisify(execFile);

/** The repository root (dist/test/infra → ../../..). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function repoPath(rel: string): string {
  return path.join(ROOT, rel);
}

/** Exit code of `node <rel> <args…>` (a compiled script), run from anywhere. */
export function scriptExitCode(rel: string, args: string[] = []): Promise<number> {
  return new Promise((resolve) => {
    execFile('node', [repoPath(rel), ...args], { timeout: 30_000 }, (err) => resolve(err ? (typeof err.code === 'number' ? err.code : 1) : 0));
  });
}

export function read(rel: string): string {
  return readFileSync(repoPath(rel), 'utf8');
}

export function exists(rel: string): boolean {
  return existsSync(repoPath(rel));
}

/** A loosely typed manifest: tests walk into it and assert what they need. */
export type Doc = Record<string, any>;

/** Every document of a multi-document YAML text; a syntax error fails the test that asked. */
export function yamlDocs(text: string, where: string): Doc[] {
  return parseAllDocuments(text).map((d, i) => {
    if (d.errors.length) throw new Error(`${where}, document ${i + 1}: ${d.errors[0].message}`);
    return d.toJS() as Doc;
  }).filter((d) => d !== null && d !== undefined);
}

/** One YAML document, with `<<` merge keys resolved as Docker Compose does. */
export function yamlFile(rel: string): Doc {
  return parse(read(rel), { merge: true }) as Doc;
}

/** KEY=VALUE lines (kustomize's `envs` files), comments and blanks skipped. */
export function envFile(rel: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of read(rel).split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/**
 * Every environment variable the services read: the `env:` names of the convict schemas of
 * shared/platform/config.ts and of the simulator. A manifest setting any other name sets nothing.
 */
export function knownEnvNames(): Set<string> {
  const names = new Set<string>();
  for (const file of ['shared/platform/config.ts', 'services/simulator/config.ts']) {
    for (const m of read(file).matchAll(/env: '([A-Z0-9_]+)'/g)) names.add(m[1]);
  }
  return names;
}

export async function kubectlAvailable(): Promise<boolean> {
  try {
    await run('kubectl', ['version', '--client'], { timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/** `kubectl kustomize <dir>`, parsed: needs no cluster. */
export async function kustomize(dir: string): Promise<Doc[]> {
  const { stdout } = await run('kubectl', ['kustomize', repoPath(dir)], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  return yamlDocs(stdout, `kubectl kustomize ${dir}`);
}

/**
 * `kubectl kustomize` of an overlay made up on the spot: the given directories (relative to the
 * repository) as its resources and components, as a user's own overlay would list them, with the
 * overlay's namespace (which kustomize gives the components' objects only from the same file).
 */
export async function kustomizeComposed(resources: string[], components: string[], namespace?: string): Promise<Doc[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postmaster-kustomize-'));
  try {
    // kustomize takes only relative paths to other directories.
    const rel = (d: string) => path.relative(dir, repoPath(d));
    const k = { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', namespace, resources: resources.map(rel), components: components.map(rel) };
    writeFileSync(path.join(dir, 'kustomization.yaml'), JSON.stringify(k));
    return await kustomize(path.relative(ROOT, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The services the image's entry point can start (its SERVICES line). */
export function imageServices(): string[] {
  const m = /^SERVICES="([^"]+)"$/m.exec(read('infra/docker/entrypoint.sh'));
  if (!m) throw new Error('infra/docker/entrypoint.sh has no SERVICES="…" line');
  return m[1].split(/\s+/);
}
