/**
 * The chaos run's table, on the console and as docs/RELIABILITY.md.
 */
import Table from 'cli-table3';
import type { ScenarioResult } from './run.js';
import type { Scenario } from './scenarios.js';

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

export function markdown(results: ScenarioResult[], scenarios: Scenario[], meta: RunMeta, prose: { intro: string; findings: string; meanwhile: Record<string, string>; promises?: string }): string {
  const md: string[] = [];
  md.push('# Reliability: chaos scenarios', '');
  md.push(prose.intro, '');
  md.push(`Last run: \`${meta.command}\` on ${meta.date} (${(meta.tookMs / 60_000).toFixed(1)} min), ${meta.machine}, ${meta.rabbitmq}.`, '');
  md.push(meta.settings, '');
  md.push(`| ${HEAD.join(' | ')} |`, `|${HEAD.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const r of results) md.push(`| ${row(r).join(' | ')} |`);
  md.push('');
  md.push(
    '*accepted*: messages the ingress answered 202 (or 200 to a retry of an accepted idempotency key); 503s and broken',
    'connections were retried by the load generator and are not counted. *delivered*: reached the provider at least once.',
    '*dead-lettered*: not delivered but in the DLQ with a failure reason. *lost*: neither. *duplicated*: extra copies at',
    'the provider (same text, whatever the envelope id). *misordered*: messages that reached the provider after a later',
    'message of the same user. *recovery*: from the end of the fault (for a SIGKILL: the kill itself, so the restart is',
    'included) until deliveries run at 80 % of the pre-fault rate over a 2-second window; 0 when they never dropped below it.',
    '',
  );
  if (prose.promises) md.push(prose.promises, '');
  md.push('## Scenarios', '');
  for (const sc of scenarios) {
    const r = results.find((x) => x.name === sc.name);
    md.push(`### ${sc.name}`, '', sc.does, '');
    if (prose.meanwhile[sc.name]) md.push(prose.meanwhile[sc.name], '');
    if (r) {
      const gap = r.longestGapMs === null ? '' : `longest pause between two deliveries after the fault: ${secs(r.longestGapMs)}; `;
      md.push(`Measured: ${gap}${[...r.notes, ...(r.error ? [`error: ${r.error}`] : [])].join('; ') || 'nothing unusual'}.`, '');
    }
  }
  md.push('## Findings', '', verdict(results), '', prose.findings, '');
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
