/**
 * The README's configuration reference, rendered from the settings tables (the CLI's SETTINGS): one table
 * per part with each setting's variable, flag, default and meaning. `npm run generate` writes it into
 * README.md between the markers; settings-reference.test.ts checks that README.md holds exactly this text.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describeDefault, type SettingSpec, type SettingsTable } from '../common/config';
import { SETTINGS } from './main';

export const BEGIN = '<!-- settings reference: generated from the <part>/settings.ts tables by `npm run generate` -->';
export const END = '<!-- end of the settings reference -->';

interface PartDoc {
  title: string;
  table: SettingsTable;
  /** Rows taken unchanged from another part's table are named, not repeated. */
  like?: { name: string; table: SettingsTable };
}

const PARTS: PartDoc[] = [
  { title: '**Gateway** (`fnmesh gateway`)', table: SETTINGS.gateway },
  {
    title: '**Sidecar** (`fnmesh sidecar`; set by the local mesh, and by the operator in a cluster)',
    table: SETTINGS.sidecar,
  },
  { title: '**Operator** (`fnmesh operator`)', table: SETTINGS.operator },
  {
    title:
      '**Local mesh** (`fnmesh local [paths...]`: runs a gateway in-process, rules from the manifests it is given)',
    table: SETTINGS.local,
    like: { name: 'the gateway', table: SETTINGS.gateway },
  },
  {
    title: '**Local cluster** (`fnmesh cluster`; also `--image REPOSITORY=FOLDER`, repeatable)',
    table: SETTINGS.cluster,
    like: { name: 'the gateway', table: SETTINGS.gateway },
  },
  { title: '**Broker** (`fnmesh broker`: the embedded broker on its own)', table: SETTINGS.broker },
];

function defaultCell(s: SettingSpec<unknown>): string {
  if (s.default !== undefined) return `\`${s.default}\``;
  return describeDefault(s) ?? '';
}

function row(s: SettingSpec<unknown>): string {
  const flag = s.flag.split(' ')[0]!;
  return `| \`${s.env}\` | \`${flag}\` | ${defaultCell(s)} | ${s.help.replace(/\|/g, '\\|')} |`;
}

function renderPart(part: PartDoc): string {
  const settings = Object.values(part.table);
  const shared = part.like ? new Set(Object.values(part.like.table)) : new Set();
  const own = settings.filter((s) => !shared.has(s));
  const same = settings.filter((s) => shared.has(s)).map((s) => `\`${s.env}\``);
  const lines = [part.title, ''];
  if (part.like && same.length > 0)
    lines.push(`As for ${part.like.name} (the same flags and defaults): ${same.join(', ')}.`, '');
  lines.push('| variable | flag | default | meaning |', '|---|---|---|---|', ...own.map(row));
  return lines.join('\n');
}

export function renderSettingsReference(): string {
  return [BEGIN, ...PARTS.map(renderPart), END].join('\n\n');
}

/** README text with the reference between the markers replaced by `reference`. */
export function withReference(readme: string, reference: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`README.md has no "${BEGIN}" ... "${END}" section`);
  return readme.slice(0, begin) + reference + readme.slice(end + END.length);
}

if (require.main === module) {
  // dist/cli/ when built: the README is in the checkout's root
  const readme = path.join(__dirname, '..', '..', 'README.md');
  writeFileSync(readme, withReference(readFileSync(readme, 'utf8'), renderSettingsReference()));
  console.log(`wrote the settings reference into ${readme}`);
}
