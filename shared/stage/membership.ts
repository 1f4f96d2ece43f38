/**
 * Chooses the shard assigner of a stage worker.
 */
import type { Runtime } from '../runtime.js';
import type { Stage } from '../topology/names.js';
import { StaticAssigner, type ShardAssigner } from './assigner.js';

export function createAssigner(rt: Runtime, _stage: Stage): ShardAssigner {
  return new StaticAssigner(rt.topology.options.shards);
}
