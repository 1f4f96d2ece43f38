/**
 * Copies the Lua scripts of shared/ and services/ (shared/platform/lua-scripts.ts) into dist/, beside the
 * compiled modules that read them: tsc copies nothing but what it compiles. Run by `npm run build`
 * after tsc, from the project's root.
 */
import { cpSync, statSync } from 'node:fs';

for (const dir of ['shared', 'services']) {
  cpSync(dir, `dist/${dir}`, { recursive: true, filter: (src) => src.endsWith('.lua') || statSync(src).isDirectory() });
}
