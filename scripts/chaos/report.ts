/**
 * The chaos run's table, on the console and as the latest-run block of docs/RELIABILITY.md.
 */
import Table from 'cli-table3';
import type { ScenarioResult } from './run.js';

export interface RunMeta {
  command: string;
  date: string;
  tookMs: number;
  machine: string;
  rabbitmq: string;
  settings: string;
}

const HEAD = ['scenario', 'accepted', 'delivered', 'dead-lettered', 'lost', 'duplicated', 'misordered', 'recovery'];

function secs(ms: number | null): string {
  return ms === null ? 'not reached' : `${(ms / 1000).toFixed(1)} s`;
}

function row(r: ScenarioResult): string[] {
  if (!r.audit) return [r.name, 'error', '', '', '', '', '', ''];
  const a = r.audit;
  return [r.name, a.accepted, a.delivered, a.deadLettered, a.lost, a.duplicated, a.misordered, secs(r.recoveryMs)].map(String);
}

export function consoleTable(results: ScenarioResult[]): string {
  const t = new Table({ head: HEAD, style: { head: [], border: [] } });
  for (const r of results) t.push(row(r));
  return t.toString();
}

/** True when the run must fail: something accepted was lost, or a scenario could not run. */
export function failed(results: ScenarioResult[]): boolean {
  return results.some((r) => !r.audit || r.audit.lost > 0);
}

/**
 * The latest run, as written between the markers of docs/RELIABILITY.md (`chaos:latest-run`): the
 * run's settings, its table, its verdict and what each scenario measured. Everything else on that
 * page is prose kept by hand.
 */
export function latestRunBlock(results: ScenarioResult[], meta: RunMeta): string {
  const md: string[] = [];
  md.push(`\`${meta.command}\` on ${meta.date} (${(meta.tookMs / 60_000).toFixed(1)} min), ${meta.machine}, ${meta.rabbitmq}.`, '');
  md.push(meta.settings, '');
  md.push(`| ${HEAD.join(' | ')} |`, `|${HEAD.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const r of results) md.push(`| ${row(r).join(' | ')} |`);
  md.push('', verdict(results), '', 'Measured, scenario by scenario:', '');
  for (const r of results) {
    const gap = r.longestGapMs === null ? '' : `longest pause between two deliveries after the fault ${secs(r.longestGapMs)}; `;
    // An error's first line only: the rest (a node's log tail, a stack) is in the run's results.json and output.
    const error = r.error ? [`error: ${r.error.split('\n')[0]}`] : [];
    md.push(`- **${r.name}**: ${gap}${[...r.notes, ...error].join('; ') || 'nothing unusual'}.`);
  }
  return md.join('\n');
}

/** The run's own verdict, from its audits (never a fixed sentence). */
export function verdict(results: ScenarioResult[]): string {
  const bad = results.filter((r) => !r.audit || r.audit.lost > 0 || r.audit.duplicated > 0 || r.audit.misordered > 0);
  if (results.length > 0 && bad.length === 0) {
    return `**This run: every scenario (${results.length}) lost 0, duplicated 0 and misordered 0.**`;
  }
  const what = (r: ScenarioResult) =>
    r.audit ? `${r.name} (lost ${r.audit.lost}, duplicated ${r.audit.duplicated}, misordered ${r.audit.misordered})` : `${r.name} (did not complete)`;
  return `**This run: ${bad.length} of ${results.length} scenarios lost, duplicated or misordered messages:** ${bad.map(what).join('; ')}.`;
}

export function notesBlock(results: ScenarioResult[]): string {
  return results
    .map((r) => {
      const gap = r.longestGapMs === null ? '' : ` longest gap ${secs(r.longestGapMs)};`;
      return `  ${r.name}:${gap} ${[...r.notes, ...(r.error ? [`error: ${r.error}`] : [])].join('; ')} (${secs(r.tookMs)})`;
    })
    .join('\n');
}
