/**
 * Reads the `.cpuprofile` files that `node --cpu-prof` writes on exit and ranks self time: by
 * function (name, file, line) and by where the code lives (a package under node_modules, a file of
 * ours, node's internals, or the engine: GC, idle, program).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Hot {
  name: string;
  /** Share of the profile's samples, idle excluded. */
  share: number;
  ms: number;
}

export interface ProfileSummary {
  service: string;
  file: string;
  /** Wall time profiled and the busy (non-idle) part of it. */
  wallMs: number;
  busyMs: number;
  functions: Hot[];
  modules: Hot[];
  /**
   * Self time charged to the nearest frame of application or package code up the stack, so that
   * time in node's internals and native calls (socket writes, buffers) shows who asked for it.
   */
  callers: Hot[];
}

/** Where a frame's code lives: `pkg:<name>`, our file (dist-relative), `node:<internal>` or the engine's pseudo-frame. */
function moduleOf(f: CallFrame): string {
  const url = f.url.replace(/^file:\/\//, '');
  if (!url) return `(${f.functionName || 'native'})`;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return `pkg:${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return url;
  const dist = url.indexOf('/dist/');
  return dist >= 0 ? url.slice(dist + '/dist/'.length) : url;
}

function frameName(f: CallFrame): string {
  const where = moduleOf(f);
  return `${f.functionName || '(anonymous)'} ${where}${f.url ? `:${f.lineNumber + 1}` : ''}`;
}

function isLibraryOrApp(f: CallFrame): boolean {
  return f.url !== '' && !f.url.startsWith('node:');
}

function rank(totals: Map<string, number>, busyUs: number, top: number): Hot[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, share: us / busyUs }));
}

export function summarize(service: string, file: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const callerOf = new Map<number, string>();
  const caller = (id: number): string => {
    let name = callerOf.get(id);
    if (name === undefined) {
      let at: number | undefined = id;
      while (at !== undefined && !isLibraryOrApp(byId.get(at)!)) at = parent.get(at);
      name = at === undefined ? frameName(byId.get(id)!) : frameName(byId.get(at)!);
      callerOf.set(id, name);
    }
    return name;
  };
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  const callers = new Map<string, number>();
  let busyUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const f = byId.get(p.samples[i]);
    const dt = p.timeDeltas[i] ?? 0;
    if (!f || f.functionName === '(idle)') continue;
    busyUs += dt;
    fn.set(frameName(f), (fn.get(frameName(f)) ?? 0) + dt);
    mod.set(moduleOf(f), (mod.get(moduleOf(f)) ?? 0) + dt);
    const c = caller(p.samples[i]);
    callers.set(c, (callers.get(c) ?? 0) + dt);
  }
  return {
    service,
    file,
    wallMs: (p.endTime - p.startTime) / 1000,
    busyMs: busyUs / 1000,
    functions: rank(fn, busyUs, top),
    modules: rank(mod, busyUs, top),
    callers: rank(callers, busyUs, top),
  };
}

/** The newest file ending in `ext` under `dir/<service>/`, or null. */
function newestProfile(dir: string, service: string, ext: string): string | null {
  const sub = path.join(dir, service);
  let files: string[];
  try {
    files = readdirSync(sub)
      .filter((f) => f.endsWith(ext))
      .sort();
  } catch {
    return null;
  }
  const last = files[files.length - 1];
  return last ? path.join(sub, last) : null;
}

/** The newest profile of each service under `dir/<service>/`. */
export function summarizeDir(dir: string, services: string[], top = 15): ProfileSummary[] {
  return services.flatMap((s) => {
    const file = newestProfile(dir, s, '.cpuprofile');
    return file ? [summarize(s, file, top)] : [];
  });
}

/** One ranked line: share, then the name. */
const pct = (h: Hot): string => `${(h.share * 100).toFixed(1).padStart(5)}%  ${h.name}`;

export function formatSummary(s: ProfileSummary): string {
  return [
    `## ${s.service}: busy ${(s.busyMs / 1000).toFixed(1)} s of ${(s.wallMs / 1000).toFixed(1)} s profiled (${path.basename(s.file)})`,
    'self time by function:',
    ...s.functions.map(pct),
    'self time by module:',
    ...s.modules.map(pct),
    'self time by nearest application/package frame:',
    ...s.callers.map(pct),
  ].join('\n');
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children?: HeapNode[];
}

export interface AllocSummary {
  service: string;
  file: string;
  /** Bytes allocated (sampled), freed ones included. */
  totalBytes: number;
  perMessageBytes: number;
  /** By allocating function, and by the nearest frame of our own code up the stack. */
  sites: Hot[];
  ours: Hot[];
}

/** A `.heapprofile` of alloc-sample.ts: bytes allocated by site, over `messages` messages. `Hot.ms` holds bytes here. */
export function summarizeAlloc(service: string, file: string, messages: number, top = 12): AllocSummary {
  const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head;
  const sites = new Map<string, number>();
  const ours = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, ownFrame: string): void => {
    const mine = isLibraryOrApp(n.callFrame) && !moduleOf(n.callFrame).startsWith('pkg:') ? frameName(n.callFrame) : ownFrame;
    if (n.selfSize > 0) {
      total += n.selfSize;
      sites.set(frameName(n.callFrame), (sites.get(frameName(n.callFrame)) ?? 0) + n.selfSize);
      ours.set(mine, (ours.get(mine) ?? 0) + n.selfSize);
    }
    for (const c of n.children ?? []) walk(c, mine);
  };
  walk(head, '(no frame of ours)');
  return { service, file, totalBytes: total, perMessageBytes: total / messages, sites: rank(sites, total, top), ours: rank(ours, total, top) };
}

/** The newest allocation profile of each service under `dir/<service>/`. */
export function summarizeAllocDir(dir: string, services: string[], messages: number): AllocSummary[] {
  return services.flatMap((s) => {
    const file = newestProfile(dir, s, '.heapprofile');
    return file ? [summarizeAlloc(s, file, messages)] : [];
  });
}

export function formatAlloc(s: AllocSummary): string {
  return [
    `## ${s.service}: ${(s.totalBytes / 1e6).toFixed(0)} MB allocated, ${(s.perMessageBytes / 1024).toFixed(1)} KiB per message (${path.basename(s.file)})`,
    'bytes by allocating function:',
    ...s.sites.map(pct),
    'bytes by nearest frame of ours:',
    ...s.ours.map(pct),
  ].join('\n');
}
