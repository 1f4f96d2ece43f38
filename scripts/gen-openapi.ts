/**
 * Writes docs/openapi.json, the ingress's OpenAPI 3.1 document, from the zod schemas of its requests
 * (services/ingress/openapi.ts). The ingress serves the same document at GET /openapi.json.
 *
 *   npm run gen:openapi                              rewrite the file
 *   node dist/scripts/gen-openapi.js --check         exit 1 if the file differs from the schemas
 */
import { pathToFileURL } from 'node:url';
import { renderOpenApi } from '../services/ingress/openapi.js';
import { runGenerator, type GeneratedFile } from './generated-file.js';

export const OPENAPI_FILE: GeneratedFile = { rel: 'docs/openapi.json', command: 'npm run gen:openapi', render: renderOpenApi };

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = runGenerator(OPENAPI_FILE, process.argv.slice(2));
}
