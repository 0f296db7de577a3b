/** charts/fnmesh/README.md's values table is generated from values.yaml; a stale table or an undocumented value fails. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { chartFolder, expectedReadme, renderValuesTable, valueRows } from './chart-readme';

const chart = chartFolder();

test('the chart folder is found from the sources and from dist/', () => {
  expect(chart).toBe(path.resolve(__dirname, '..', 'charts', 'fnmesh'));
  expect(chartFolder(path.resolve(__dirname, '..', 'dist', 'cli'))).toBe(chart);
});

test('the README holds the values table of the committed values.yaml (run npm run generate when this fails)', () => {
  expect(readFileSync(path.join(chart, 'README.md'), 'utf8')).toBe(expectedReadme(chart));
});

const schema = {
  type: 'object',
  properties: {
    a: { type: 'string' },
    b: { type: 'object', properties: { c: { enum: ['x', 'y'] }, d: { $ref: '#/$defs/n' } } },
  },
  $defs: { n: { type: ['integer', 'null'] } },
};

test('a row per described value, with the type from the schema and the default from values.yaml', () => {
  const yaml =
    '# heading\n\n# -- the a\na: hi\n# section\nb:\n  # -- the c,\n  # on two lines\n  c: x\n  # -- the d\n  d: null\n';
  expect(valueRows(yaml, schema)).toEqual([
    { key: 'a', type: 'string', default: '"hi"', description: 'the a' },
    { key: 'b.c', type: '"x" \\| "y"', default: '"x"', description: 'the c, on two lines' },
    { key: 'b.d', type: 'integer \\| null', default: 'null', description: 'the d' },
  ]);
  expect(renderValuesTable(yaml, schema)).toContain('| `b.c` | "x" \\| "y" | `"x"` | the c, on two lines |');
});

test('a described map is one row; a value without a description is an error naming it', () => {
  expect(valueRows('# -- all of b\nb: {c: x}\n', schema)).toEqual([
    { key: 'b', type: 'object', default: '{"c":"x"}', description: 'all of b' },
  ]);
  expect(() => valueRows('a: hi\n', schema)).toThrow('values.yaml: a has no "# -- description" comment');
  expect(() => valueRows('b:\n  # -- the c\n  c: x\n  d: 1\n', schema)).toThrow('values.yaml: b.d has no');
});
