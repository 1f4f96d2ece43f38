/**
 * A small seeded pseudo-random generator (mulberry32), so a run with the same seed draws the same
 * errors, jitter and trace ids: a failing benchmark or chaos run can be replayed exactly.
 */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for runs that did not ask for one; reported in /_sim/stats so the run can be replayed. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0xffffffff);
}

/** Picks one item by its `weight` (default 1); items with weight <= 0 are never picked. */
export function pickWeighted<T extends { weight?: number }>(items: readonly T[], random: Random): T | undefined {
  let total = 0;
  for (const item of items) total += Math.max(0, item.weight ?? 1);
  if (total <= 0) return undefined;
  let point = random() * total;
  for (const item of items) {
    point -= Math.max(0, item.weight ?? 1);
    if (point < 0) return item;
  }
  // Floating-point rounding can leave `point` at 0 after the loop: take the last pickable item.
  for (let i = items.length - 1; i >= 0; i--) if ((items[i].weight ?? 1) > 0) return items[i];
  return undefined;
}
