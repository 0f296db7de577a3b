/** `npm run generate`: writes the gateway's OpenAPI document, built with the defaults, to docs/openapi.json. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderOpenApiDocument } from '../gateway';

// dist/cli/ when built: docs/ is in the checkout's root
const file = path.join(__dirname, '..', '..', 'docs', 'openapi.json');
writeFileSync(file, renderOpenApiDocument());
console.log(`wrote the OpenAPI document to ${file}`);
