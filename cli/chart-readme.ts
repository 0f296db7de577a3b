/**
 * The values table of charts/fnmesh/README.md, generated from charts/fnmesh/values.yaml (`npm run generate`):
 * one row per value that has a `# -- description` comment (helm-docs' convention), with its type from
 * values.schema.json and its default from values.yaml. chart-readme.test.ts fails when the README is stale or a
 * value has no description.
 *
 * Written here rather than run through helm-docs: that is a Go program, one more `go install` in cold CI
 * (which is near its 30-minute budget), for what is a walk over a YAML document with its comments.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML, { isMap, isScalar, isSeq, type Pair, type YAMLMap } from 'yaml';

export const BEGIN = '<!-- values table: generated from values.yaml by `npm run generate` (cli/chart-readme.ts) -->';
export const END = '<!-- end of the values table -->';

export interface ValueRow {
  key: string;
  type: string;
  default: string;
  description: string;
}

interface SchemaNode {
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, SchemaNode>;
  $ref?: string;
}

/** The `-- ` description in a comment block (its last paragraph), or undefined when it has none. */
function description(comment: string | null | undefined): string | undefined {
  if (!comment) return undefined;
  const paragraphs = comment.split(/\n\s*\n/);
  const last = paragraphs[paragraphs.length - 1]!.trim();
  const m = /^--\s+([\s\S]*)$/.exec(last);
  return m ? m[1]!.replace(/\n\s*/g, ' ').trim() : undefined;
}

function resolve(node: SchemaNode | undefined, root: SchemaNode & { $defs?: Record<string, SchemaNode> }) {
  let n = node;
  while (n?.$ref) n = root.$defs?.[n.$ref.replace('#/$defs/', '')];
  return n;
}

function typeOf(node: SchemaNode | undefined): string {
  if (!node) return '';
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  const t = Array.isArray(node.type) ? node.type : node.type ? [node.type] : [];
  return t.map((x) => (x === 'array' ? 'list' : x)).join(' \\| ');
}

/** The rows of values.yaml's text, in file order; throws naming a value that has no `# --` description. */
export function valueRows(valuesYaml: string, schema: SchemaNode): ValueRow[] {
  const doc = YAML.parseDocument(valuesYaml);
  const rows: ValueRow[] = [];
  const walk = (map: YAMLMap, prefix: string, schemaNode: SchemaNode | undefined): void => {
    map.items.forEach((pair: Pair, i) => {
      const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const key = prefix + name;
      const keyComment = isScalar(pair.key) ? pair.key.commentBefore : undefined;
      // the first pair's comment belongs to its map in the yaml library
      const desc = description(keyComment) ?? (i === 0 ? description(map.commentBefore) : undefined);
      const sub = resolve(schemaNode?.properties?.[name], schema);
      if (desc === undefined) {
        if (isMap(pair.value) && pair.value.items.length > 0) return walk(pair.value, `${key}.`, sub);
        throw new Error(`values.yaml: ${key} has no "# -- description" comment: add one above it`);
      }
      const value = isMap(pair.value) || isSeq(pair.value) || isScalar(pair.value) ? pair.value.toJSON() : null;
      rows.push({ key, type: typeOf(sub), default: JSON.stringify(value ?? null), description: desc });
    });
  };
  if (!isMap(doc.contents)) throw new Error('values.yaml is not a map');
  walk(doc.contents, '', schema);
  return rows;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

export function renderValuesTable(valuesYaml: string, schema: SchemaNode): string {
  const lines = [
    BEGIN,
    '',
    '| key | type | default | description |',
    '|---|---|---|---|',
    ...valueRows(valuesYaml, schema).map(
      (r) => `| \`${r.key}\` | ${r.type} | \`${cell(r.default)}\` | ${cell(r.description)} |`,
    ),
    '',
    END,
  ];
  return lines.join('\n');
}

/** README text with the table between the markers replaced. */
export function withValuesTable(readme: string, table: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`charts/fnmesh/README.md has no "${BEGIN}" ... "${END}" section`);
  return readme.slice(0, begin) + table + readme.slice(end + END.length);
}

/** The chart's folder in the checkout (this file runs from dist/cli/ or, in tests, from cli/). */
export function chartFolder(from = __dirname): string {
  const parent = path.dirname(from);
  const root = path.basename(parent) === 'dist' ? path.dirname(parent) : parent;
  return path.join(root, 'charts', 'fnmesh');
}

/** The README as it should be, from the committed values.yaml and values.schema.json. */
export function expectedReadme(chart = chartFolder()): string {
  const values = readFileSync(path.join(chart, 'values.yaml'), 'utf8');
  const schema = JSON.parse(readFileSync(path.join(chart, 'values.schema.json'), 'utf8')) as SchemaNode;
  return withValuesTable(readFileSync(path.join(chart, 'README.md'), 'utf8'), renderValuesTable(values, schema));
}

if (require.main === module) {
  const readme = path.join(chartFolder(), 'README.md');
  writeFileSync(readme, expectedReadme());
  console.log(`wrote the values table into ${readme}`);
}
