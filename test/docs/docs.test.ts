import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import {
  ACKNOWLEDGEMENTS_END,
  ACKNOWLEDGEMENTS_START,
  AcknowledgementRow,
  acknowledgementBlock,
  acknowledgementRows,
  acknowledgementTable,
  readComplianceDoc,
  replaceAcknowledgementBlock,
} from '../helpers/acknowledgements';
import { ROOT } from '../helpers/app';

const README = join(ROOT, 'README.md');
const DOCS = join(ROOT, 'docs');
/** "Under 12 KB": the README is a front page; the manual lives in docs/. */
const README_MAX_BYTES = 12_000;

/** Every Markdown file under a directory, recursively. */
function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

/**
 * The targets of the inline links and images of a Markdown text, outside code blocks
 * and code spans, that point into the repository (not a URL, not an anchor alone).
 */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
  const targets = [...prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map(
    (m) => m[1],
  );
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'));
}

/** The file a relative link from `file` points to, anchor and query dropped. */
function resolveLink(file: string, target: string): string {
  return resolve(dirname(file), decodeURIComponent(target.replace(/[#?].*$/, '')));
}

/** Collapses the padding Prettier adds, so only the table's content is compared. */
const normalize = (table: string): string =>
  table
    .split('\n')
    .map((line) => line.trim().replace(/\s+/g, ' '))
    .filter((line) => line !== '' && !/^\|[\s|:-]+\|$/.test(line))
    .join('\n');

describe('docs/compliance.md', () => {
  // Built once: the app for config/default.json and config/lean.json.
  let rows: AcknowledgementRow[];
  beforeAll(() => {
    rows = acknowledgementRows();
  });

  test('its acknowledgement table equals the acknowledgements the app makes', () => {
    // GIVEN the acknowledgements of the app built for config/default.json and config/lean.json
    const expected = acknowledgementTable(rows);
    // WHEN the generated block in docs/compliance.md is read
    const actual = acknowledgementBlock(readComplianceDoc());
    // THEN they agree, padding aside
    const expectedLines = normalize(expected).split('\n');
    const actualLines = normalize(actual).split('\n');
    if (actualLines.join('\n') !== expectedLines.join('\n')) {
      const missing = expectedLines.filter((l) => !actualLines.includes(l));
      const extra = actualLines.filter((l) => !expectedLines.includes(l));
      throw new Error(
        'docs/compliance.md lists other acknowledgements than the app makes: ' +
          'run `npx tsx scripts/acknowledgements.ts --write` and review the diff.\n' +
          `Made by the app, missing from the page (${missing.length}):\n${missing.join('\n')}\n` +
          `On the page, not made by the app (${extra.length}):\n${extra.join('\n')}` +
          (missing.length + extra.length === 0 ? '\n(same rows, different order)' : ''),
      );
    }
  });

  test('the table covers both profiles, with stack-prefixed paths and rule ids as reports name them', () => {
    expect(new Set(rows.flatMap((r) => r.profiles))).toEqual(new Set(['production', 'lean']));
    expect(rows.filter((r) => !/^ResilientShop-(Primary|Standby|DnsFailover)\//.test(r.path))).toEqual([]);
    expect(rows.flatMap((r) => r.ids).filter((id) => id.startsWith('Annotation::'))).toEqual([]);
  });

  test('rule ids that share a reason on one construct are one row', () => {
    const keys = rows.map((r) => JSON.stringify([r.path, r.reason, r.profiles]));
    expect(keys.length).toBe(new Set(keys).size);
  });

  test('a table cell cannot break the table', () => {
    const row: AcknowledgementRow = {
      profiles: ['lean'],
      path: 'Stack/Resource',
      ids: ['Rule-1'],
      reason: 'A reason with a | pipe\nand a line break in it.',
    };
    expect(acknowledgementTable([row]).split('\n')[2]).toBe(
      '| lean     | `Stack/Resource` | `Rule-1` | A reason with a \\| pipe and a line break in it. |',
    );
  });

  test('--write replaces only the block between the markers', () => {
    const doc = `# T\n\nbefore\n\n${ACKNOWLEDGEMENTS_START}\nold\n${ACKNOWLEDGEMENTS_END}\n\nafter\n`;
    expect(replaceAcknowledgementBlock(doc, '| a |')).toBe(
      `# T\n\nbefore\n\n${ACKNOWLEDGEMENTS_START}\n\n| a |\n\n${ACKNOWLEDGEMENTS_END}\n\nafter\n`,
    );
    expect(() => replaceAcknowledgementBlock('# no markers\n', '| a |')).toThrow(
      /must contain <!-- acknowledgements:start --> followed by <!-- acknowledgements:end -->/,
    );
  });
});

describe('README.md', () => {
  test(`is a front page under ${README_MAX_BYTES} bytes`, () => {
    expect(statSync(README).size).toBeLessThan(README_MAX_BYTES);
  });

  test('links every page in docs/', () => {
    const linked = new Set(relativeLinks(readFileSync(README, 'utf8')).map((t) => resolveLink(README, t)));
    const pages = readdirSync(DOCS)
      .filter((name) => name.endsWith('.md'))
      .map((name) => join(DOCS, name));
    expect(pages.length).toBeGreaterThan(0);
    expect(pages.filter((page) => !linked.has(page)).map((page) => relative(ROOT, page))).toEqual([]);
  });
});

describe('relative links in README.md and docs/', () => {
  const files = [README, ...markdownFiles(DOCS)];

  test('the link scanner finds links and skips URLs, anchors and code', () => {
    const md = [
      '[a](docs/a.md#part) ![i](img.png "title") [u](https://x.y/z) [m](mailto:a@b.c) [h](#here)',
      '`[c](code.md)`',
      '```',
      '[f](fenced.md)',
      '```',
    ].join('\n');
    expect(relativeLinks(md)).toEqual(['docs/a.md#part', 'img.png']);
  });

  test.each(files.map((f) => [relative(ROOT, f), f]))(
    '%s: every relative link resolves to a file',
    (_, file) => {
      const broken = relativeLinks(readFileSync(file, 'utf8')).filter(
        (target) => !existsSync(resolveLink(file, target)),
      );
      expect(broken).toEqual([]);
    },
  );
});
