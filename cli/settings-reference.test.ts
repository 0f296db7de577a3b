import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BEGIN, END, renderSettingsReference } from './settings-reference';
import { SETTINGS } from './main';

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

describe("the README's configuration reference", () => {
  it('is the text rendered from the settings tables (run `npm run generate` after changing a table)', () => {
    const begin = readme.indexOf(BEGIN);
    const end = readme.indexOf(END);
    expect(begin).toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(begin);
    expect(readme.slice(begin, end + END.length)).toBe(renderSettingsReference());
  });

  it('lists every setting of every part with its flag and default', () => {
    const reference = renderSettingsReference();
    for (const table of Object.values(SETTINGS)) {
      for (const s of Object.values(table)) {
        expect(reference).toContain(`\`${s.env}\``);
        if (
          s.default !== undefined &&
          !reference.includes(`| \`${s.env}\` | \`${s.flag.split(' ')[0]}\` | \`${s.default}\` |`)
        ) {
          // a row taken unchanged from another part is named in that part's "As ..." line
          expect(Object.values(SETTINGS.gateway)).toContain(s);
        }
      }
    }
  });
});
