import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * docs/failure-modes.md must answer every failure mode of the seed documents the project
 * was created from (docs/seeds/, kept verbatim). The failure modes are read out of each
 * seed by a small parser for its shape, and the map's "seed failure mode(s)" column cites
 * them as `NN: the seed's own wording`, so the check is mechanical and a reader sees which
 * seed line a row answers.
 */

const ROOT = join(__dirname, '..', '..');
const SEEDS_DIR = join(ROOT, 'docs', 'seeds');
const MAP_FILE = join(ROOT, 'docs', 'failure-modes.md');
const FIXTURES = join(__dirname, 'fixtures');

/**
 * How a seed lists its failure modes; one parser each ({@link PARSERS}).
 *
 * - `sections`: a `##` section per failure; the heading names it ("## EC2 Instance
 *   Failure:", "## 2. Database Failures": the number is numbering, not wording).
 * - `bullets`: top-level bullet lists of failures (`* Queue full ...`); indented bullets
 *   are details of the one above.
 * - `tables`: the rows of every table with a "Failure Mode" or "Anti-Pattern" column. When
 *   that column is the first, its cell names the failure; otherwise the first cell names
 *   what fails and the mode is "<first cell>: <mode cell>" ("Payment Gateway: Timing
 *   failure"). Other tables (timeouts, trade-offs, patterns applied) list no failure.
 * - `numbered-concepts`: numbered items whose name is in bold (`1. **Redundancy:**`), the
 *   concepts and practices of an overview. Not failure modes as such: each is mapped to
 *   the failure it guards against, except the ones in {@link NOT_FAILURE_MODES}.
 */
type SeedShape = 'sections' | 'bullets' | 'tables' | 'numbered-concepts';

interface SeedFile {
  /** How the map cites it: `02: DR site down`. */
  readonly id: string;
  readonly file: string;
  readonly shape: SeedShape;
  /** The file is kept byte for byte: a reformat or an edit changes this. */
  readonly sha256: string;
}

const SEEDS: readonly SeedFile[] = [
  {
    id: '01',
    file: '01-failure-modes.md',
    shape: 'sections',
    sha256: '00fd31ca51d01d62c8db84b2e4dc49aa62f570f9ca5c311f269dc3d6d61a80a3',
  },
  {
    id: '02',
    file: '02-system-reliability-engineering.md',
    shape: 'bullets',
    sha256: '385d8b696f0b5dfc036cef428234a43ae27a5cd2234809b5a600a899fef496bb',
  },
  {
    id: '03',
    file: '03-failure-modes-and-fault-tolerance-patterns.md',
    shape: 'tables',
    sha256: '63c6a3a63e106d4daa3ca5d306f41dba25a4fc5614c27dbd4c8cc6abeafd9857',
  },
  {
    id: '04',
    file: '04-fault-tolerance-and-resilience-overview.md',
    shape: 'numbered-concepts',
    sha256: '289cf84a9476dc249e5c6c7d8cb7bd107d63a157b1017d15b8684531772498eb',
  },
  {
    id: '05',
    file: '05-failure-handling.md',
    shape: 'sections',
    sha256: '2641ebfb78cb123edac2be5328ce5d4850d1c94704b7d872f62a84e154097294',
  },
];

/** A line a parser extracted that names no failure this platform could have, and why. */
interface Exclusion {
  readonly seed: string;
  readonly text: string;
  readonly why: string;
}

/** Kept short on purpose: everything else a seed lists is mapped, concepts included. */
const NOT_FAILURE_MODES: readonly Exclusion[] = [
  {
    seed: '04',
    text: 'Telecommunications Systems',
    why:
      'a use case from another industry (keeping communication networks up), not a failure of this platform; ' +
      'the network failures it mentions are mapped as 05: Network Failures',
  },
];

/** One failure mode as a seed words it. */
interface FailureMode {
  readonly seed: string;
  readonly text: string;
  /** 1-based line in the seed file, for messages. */
  readonly line: number;
}

type Extracted = Omit<FailureMode, 'seed'>;

interface Line {
  readonly text: string;
  readonly line: number;
}

/** The lines of a Markdown text outside fenced code blocks, with their 1-based numbers. */
function proseLines(markdown: string): Line[] {
  const lines: Line[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, i) => {
    const marker = /^\s*(```|~~~)/.exec(text)?.[1];
    if (fence) {
      if (marker === fence) fence = undefined;
    } else if (marker) {
      fence = marker;
    } else {
      lines.push({ text, line: i + 1 });
    }
  });
  return lines;
}

/** Drops Markdown emphasis and code marks around a name. */
const plain = (text: string): string =>
  text
    .replace(/\*\*|__|`/g, '')
    .replace(/\s+/g, ' ')
    .trim();

/** The cells of a table row, `\|` kept as a literal pipe. */
function tableCells(row: string): string[] {
  const cells = row
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '')
    .split(/(?<!\\)\|/);
  return cells.map((cell) => cell.replace(/\\\|/g, '|').trim());
}

const isTableDelimiter = (row: string): boolean => /^\s*\|?[\s|:-]+\|?\s*$/.test(row) && row.includes('-');

/** A pipe table: its header cells and its body rows, each with its 1-based line. */
interface Table {
  readonly header: string[];
  readonly rows: Array<{ cells: string[]; line: number }>;
}

/** Every pipe table outside code: a row of cells, a delimiter row, then contiguous rows. */
function tables(markdown: string): Table[] {
  const found: Table[] = [];
  const lines = proseLines(markdown);
  const isRow = (l: Line | undefined) => l !== undefined && l.text.trim().startsWith('|');
  for (let i = 0; i < lines.length - 1; i++) {
    if (!isRow(lines[i]) || !isTableDelimiter(lines[i + 1].text) || isRow(lines[i - 1])) continue;
    const table: Table = { header: tableCells(lines[i].text), rows: [] };
    for (let j = i + 2; isRow(lines[j]) && lines[j].line === lines[j - 1].line + 1; j++) {
      table.rows.push({ cells: tableCells(lines[j].text), line: lines[j].line });
    }
    found.push(table);
  }
  return found;
}

const PARSERS: Record<SeedShape, (markdown: string) => Extracted[]> = {
  sections: (markdown) =>
    proseLines(markdown).flatMap(({ text, line }) => {
      const heading = /^##\s+(.+?)\s*#*\s*$/.exec(text)?.[1];
      return heading ? [{ text: plain(heading.replace(/^\d+\.\s+/, '')), line }] : [];
    }),
  bullets: (markdown) =>
    proseLines(markdown).flatMap(({ text, line }) => {
      const item = /^[*-]\s+(.+)$/.exec(text)?.[1];
      return item ? [{ text: plain(item), line }] : [];
    }),
  tables: (markdown) =>
    tables(markdown).flatMap(({ header, rows }) => {
      const column = header.findIndex((cell) => /^(failure mode|anti-pattern)$/i.test(plain(cell)));
      if (column < 0) return [];
      return rows.map(({ cells, line }) => {
        const mode = plain(cells[column] ?? '');
        return { text: column === 0 ? mode : `${plain(cells[0] ?? '')}: ${mode}`, line };
      });
    }),
  'numbered-concepts': (markdown) =>
    proseLines(markdown).flatMap(({ text, line }) => {
      const name = /^\d+\.\s+\*\*(.+?)\*\*/.exec(text)?.[1];
      return name ? [{ text: plain(name).replace(/:$/, ''), line }] : [];
    }),
};

/** The failure modes of one seed; an empty result or an uncitable one is an error. */
function extractFailureModes(seed: string, markdown: string, shape: SeedShape): FailureMode[] {
  const modes = PARSERS[shape](markdown).map((m) => ({ seed, ...m }));
  if (modes.length === 0) {
    throw new Error(
      `seed ${seed}: its "${shape}" parser found no failure mode; the file no longer has that shape, ` +
        'so give it the parser of its new shape',
    );
  }
  const uncitable = modes.filter((m) => m.text === '' || m.text.includes(';'));
  if (uncitable.length > 0) {
    throw new Error(
      `seed ${seed}: failure modes the map cannot cite (empty, or containing ";", which separates citations): ` +
        uncitable.map((m) => `line ${m.line} "${m.text}"`).join(', '),
    );
  }
  return modes;
}

/** How a seed's wording is compared: case, emphasis, spacing and a trailing ":", "?" or "." aside. */
const normalize = (text: string): string =>
  plain(text)
    .replace(/[\s:.?!]+$/, '')
    .toLowerCase();

const keyOf = (seed: string, text: string): string => `${seed}: ${normalize(text)}`;

/** The column names of the map's table, in order. */
const MAP_COLUMNS = [
  'seed failure mode(s)',
  'what handles it',
  'alarm -> runbook',
  'proof',
  'status',
] as const;
type MapColumn = (typeof MAP_COLUMNS)[number];

interface MapRow {
  /** 1-based line in the map file. */
  readonly line: number;
  readonly cells: Record<MapColumn, string>;
  /** The seed lines the row answers, as cited (`02: DR site down`). */
  readonly citations: Array<{ seed: string; text: string }>;
  /** Citations that are not `NN: wording`. */
  readonly badCitations: string[];
}

/** The rows of the map: every table whose header is {@link MAP_COLUMNS} (one per section of the page). */
function parseMap(markdown: string, name: string): MapRow[] {
  const maps = tables(markdown).filter(
    (t) => t.header.map((h) => plain(h).toLowerCase()).join('|') === MAP_COLUMNS.join('|'),
  );
  if (maps.length === 0) {
    throw new Error(`${name} has no table with the columns: ${MAP_COLUMNS.join(' | ')}`);
  }
  const body = maps.flatMap((t) => t.rows);
  const widthErrors = body.filter((r) => r.cells.length !== MAP_COLUMNS.length);
  if (widthErrors.length > 0) {
    throw new Error(
      `${name}: rows without exactly ${MAP_COLUMNS.length} cells (an unescaped "|"?) at lines ` +
        widthErrors.map((r) => r.line).join(', '),
    );
  }
  return body.map(({ cells, line }) => {
    const named = Object.fromEntries(MAP_COLUMNS.map((c, i) => [c, cells[i]])) as Record<MapColumn, string>;
    const entries = named['seed failure mode(s)']
      .split(';')
      .map((e) => e.trim())
      .filter((e) => e !== '');
    const citations: Array<{ seed: string; text: string }> = [];
    const badCitations: string[] = [];
    for (const entry of entries) {
      const m = /^(\d{2}):\s+(.+)$/.exec(entry);
      if (m) citations.push({ seed: m[1], text: m[2] });
      else badCitations.push(entry);
    }
    return { line, cells: named, citations, badCitations };
  });
}

/** The failure modes no row cites (exclusions aside). */
function missingModes(modes: FailureMode[], rows: MapRow[], excluded: readonly Exclusion[]): FailureMode[] {
  const cited = new Set(rows.flatMap((r) => r.citations.map((c) => keyOf(c.seed, c.text))));
  const skip = new Set(excluded.map((e) => keyOf(e.seed, e.text)));
  return modes.filter((m) => !cited.has(keyOf(m.seed, m.text)) && !skip.has(keyOf(m.seed, m.text)));
}

/** Citations that name no failure mode of any seed or one the test excludes, malformed ones, and rows citing nothing. */
function staleCitations(modes: FailureMode[], rows: MapRow[], excluded: readonly Exclusion[]): string[] {
  const known = new Set(modes.map((m) => keyOf(m.seed, m.text)));
  const skip = new Set(excluded.map((e) => keyOf(e.seed, e.text)));
  return rows.flatMap((r) => [
    ...(r.citations.length + r.badCitations.length === 0
      ? [`line ${r.line}: cites no seed failure mode`]
      : []),
    ...r.badCitations.map((c) => `line ${r.line}: "${c}" is not "NN: the seed's wording"`),
    ...r.citations
      .filter((c) => !known.has(keyOf(c.seed, c.text)) || skip.has(keyOf(c.seed, c.text)))
      .map((c) =>
        skip.has(keyOf(c.seed, c.text))
          ? `line ${r.line}: "${c.seed}: ${c.text}" is excluded as not a failure mode; cite it or exclude it, not both`
          : `line ${r.line}: "${c.seed}: ${c.text}" is no failure mode of seed ${c.seed}`,
      ),
  ]);
}

/** The inline link targets of a Markdown text outside code spans. */
function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
}

/**
 * The anchor GitHub gives a heading: its text (links and code marks dropped) in lower case,
 * every character but letters, digits, `_`, `-` and spaces removed, spaces made `-`.
 */
function headingSlug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Every heading anchor of a Markdown file (a repeated heading gets -1, -2, as GitHub does). */
function headingAnchors(markdown: string): Set<string> {
  const counts = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(text)?.[1];
    if (!heading) continue;
    const slug = headingSlug(heading);
    const n = counts.get(slug) ?? 0;
    counts.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Where a row's relative link points: the file, and the anchor if any. */
function resolveLink(mapFile: string, target: string): { file: string; anchor?: string } {
  const [path, anchor] = target.split('#', 2);
  return { file: path === '' ? mapFile : resolve(dirname(mapFile), decodeURIComponent(path)), anchor };
}

const isExternal = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target);

/** A repository path named in a code span (`lib/constructs/fleet.ts`), resolved from the root. */
const REPO_PATH = /^(?:bench|bin|config|docs|lambda|lib|scripts|service|test)\/[\w./-]*$/;

/**
 * Broken references in the rows: relative links to missing files or to headings their
 * file does not have, and repository paths in code spans that do not exist.
 */
function brokenReferences(rows: MapRow[], mapFile: string, root: string): string[] {
  const anchorsOf = new Map<string, Set<string>>();
  const anchors = (file: string) => {
    if (!anchorsOf.has(file)) anchorsOf.set(file, headingAnchors(readFileSync(file, 'utf8')));
    return anchorsOf.get(file)!;
  };
  return rows.flatMap((row) => {
    const text = MAP_COLUMNS.map((c) => row.cells[c]).join(' | ');
    const links = linkTargets(text)
      .filter((t) => !isExternal(t))
      .flatMap((target) => {
        const { file, anchor } = resolveLink(mapFile, target);
        if (!existsSync(file)) return [`line ${row.line}: ${target} (no such file)`];
        if (anchor && file.endsWith('.md') && !anchors(file).has(anchor)) {
          return [`line ${row.line}: ${target} (${relative(root, file)} has no heading with that anchor)`];
        }
        return [];
      });
    const paths = [...text.matchAll(/`([^`\n]+)`/g)]
      .map((m) => m[1])
      .filter((p) => REPO_PATH.test(p) && !existsSync(join(root, p)))
      .map((p) => `line ${row.line}: \`${p}\` (no such path in the repository)`);
    return [...links, ...paths];
  });
}

/**
 * Rows that prove nothing. A proof is a link to a test file (`test/**\/*.test.ts`) or to an
 * experiment's section of docs/game-day.md (an anchor, not the page), or the cell says
 * "not proven here: <why>".
 */
function rowsWithoutProof(rows: MapRow[], mapFile: string, root: string): string[] {
  const testDir = join(root, 'test') + sep;
  const gameDay = join(root, 'docs', 'game-day.md');
  return rows.flatMap((row) => {
    const cell = row.cells.proof;
    if (/^not proven here: \S+(\s+\S+){2,}/i.test(cell)) return [];
    const proofs = linkTargets(cell)
      .filter((t) => !isExternal(t))
      .map((t) => resolveLink(mapFile, t))
      .filter(
        ({ file, anchor }) =>
          (file.startsWith(testDir) && file.endsWith('.test.ts')) || (file === gameDay && !!anchor),
      );
    return proofs.length > 0
      ? []
      : [
          `line ${row.line} (${row.citations.map((c) => `${c.seed}: ${c.text}`).join('; ')}): ` +
            'link a test file or a game-day experiment, or say "not proven here: <why>"',
        ];
  });
}

/**
 * Rows whose status is not "handled ...", "partly handled: <why>" or "not handled: <why>",
 * or whose alarm cell neither links a runbook in docs/runbooks/ nor says "none: <why>".
 */
function badStatusOrAlarm(rows: MapRow[], mapFile: string, root: string): string[] {
  const runbooks = join(root, 'docs', 'runbooks') + sep;
  return rows.flatMap((row) => {
    const problems: string[] = [];
    const status = row.cells.status;
    if (!/^(handled\b|(partly handled|not handled): \S+(\s+\S+){2,})/.test(status)) {
      problems.push(
        `line ${row.line}: status "${status}" is not "handled ...", "partly handled: <why>" or "not handled: <why>"`,
      );
    }
    const alarm = row.cells['alarm -> runbook'];
    const linksRunbook = linkTargets(alarm)
      .filter((t) => !isExternal(t))
      .some((t) => resolveLink(mapFile, t).file.startsWith(runbooks));
    if (!linksRunbook && !/^none: \S+(\s+\S+){2,}/.test(alarm)) {
      problems.push(
        `line ${row.line}: the alarm cell links no runbook in docs/runbooks/ and does not say "none: <why>"`,
      );
    }
    return problems;
  });
}

/** Throws with one line per problem, under a header that says what to do. */
function failOn(problems: string[], header: string): void {
  if (problems.length > 0) throw new Error(`${header} (${problems.length}):\n  ${problems.join('\n  ')}`);
}

const describeMode = (m: FailureMode, file: string) => `${m.seed}: ${m.text} (${file}:${m.line})`;

describe('the seed documents (docs/seeds/)', () => {
  test('are the five files the project was created from, byte for byte', () => {
    // GIVEN the files in docs/seeds/ besides their README
    const files = readdirSync(SEEDS_DIR)
      .filter((f) => f !== 'README.md')
      .sort();
    // THEN each has a parser, and none was edited or reformatted
    expect(files).toEqual(SEEDS.map((s) => s.file));
    const changed = SEEDS.filter(
      (s) =>
        createHash('sha256')
          .update(readFileSync(join(SEEDS_DIR, s.file)))
          .digest('hex') !== s.sha256,
    ).map((s) => `docs/seeds/${s.file}`);
    failOn(changed, 'seed files changed: they are kept verbatim; restore them from the originals');
  });

  test('yield the failure modes their parsers are built for', () => {
    // WHEN each seed is parsed by the parser of its shape
    const counts = Object.fromEntries(
      SEEDS.map((s) => [
        s.id,
        extractFailureModes(s.id, readFileSync(join(SEEDS_DIR, s.file), 'utf8'), s.shape).length,
      ]),
    );
    // THEN the counts are those of the files as vendored: a parser change that drops or
    // invents lines shows here before it shows as a hole in the map
    expect(counts).toEqual({ '01': 6, '02': 54, '03': 17, '04': 24, '05': 7 });
  });
});

describe('docs/failure-modes.md', () => {
  // Read in beforeAll: a page the parser cannot read fails each test with the reason.
  let modes: FailureMode[];
  let rows: MapRow[];
  beforeAll(() => {
    modes = SEEDS.flatMap((s) =>
      extractFailureModes(s.id, readFileSync(join(SEEDS_DIR, s.file), 'utf8'), s.shape),
    );
    rows = parseMap(readFileSync(MAP_FILE, 'utf8'), 'docs/failure-modes.md');
  });
  const fileOf = (seed: string) => `docs/seeds/${SEEDS.find((s) => s.id === seed)!.file}`;

  test('has a row for every failure mode of every seed', () => {
    failOn(
      missingModes(modes, rows, NOT_FAILURE_MODES).map((m) => describeMode(m, fileOf(m.seed))),
      'seed failure modes without a row in docs/failure-modes.md: cite each as "NN: wording" in the ' +
        '"seed failure mode(s)" cell of the row that answers it, or add a row',
    );
  });

  test('cites no failure mode the seeds do not have (no stale row)', () => {
    failOn(staleCitations(modes, rows, NOT_FAILURE_MODES), 'rows citing what no seed says');
  });

  test('excludes only lines the seeds have, each with a reason', () => {
    const known = new Set(modes.map((m) => keyOf(m.seed, m.text)));
    failOn(
      NOT_FAILURE_MODES.filter((e) => !known.has(keyOf(e.seed, e.text)) || e.why.split(' ').length < 5).map(
        (e) => `${e.seed}: ${e.text}`,
      ),
      'exclusions that match no seed line or give no reason',
    );
  });

  test('links only to files and headings that exist, and names only paths that exist', () => {
    failOn(brokenReferences(rows, MAP_FILE, ROOT), 'broken references in docs/failure-modes.md');
  });

  test('names a proof on every row: a test file, a game-day experiment, or "not proven here: <why>"', () => {
    failOn(rowsWithoutProof(rows, MAP_FILE, ROOT), 'rows without a proof');
  });

  test('gives every row a status and an alarm with its runbook (or says why there is none)', () => {
    failOn(badStatusOrAlarm(rows, MAP_FILE, ROOT), 'rows with a malformed status or alarm cell');
  });
});

describe('the checks, on fixtures', () => {
  const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
  const texts = (modes: FailureMode[]) => modes.map((m) => m.text);

  test('sections: the ## headings outside code, in their own words, numbering dropped', () => {
    expect(texts(extractFailureModes('01', fixture('seed-sections.txt'), 'sections'))).toEqual([
      'Disk Full:',
      'Broker Outage',
      'Clock Skew',
    ]);
  });

  test('bullets: top-level bullets only, their details and code left out', () => {
    expect(texts(extractFailureModes('02', fixture('seed-bullets.txt'), 'bullets'))).toEqual([
      'Queue full and nothing processed',
      'Disk full',
      'Clock skew between hosts',
    ]);
  });

  test('tables: rows of tables with a Failure Mode or Anti-Pattern column, prefixed where it is not first', () => {
    expect(texts(extractFailureModes('03', fixture('seed-tables.txt'), 'tables'))).toEqual([
      'Crash Failure',
      'Omission Failure',
      'Retry Everything',
      'Payment Gateway: Timing failure',
    ]);
  });

  test('numbered-concepts: the bold names of numbered items', () => {
    expect(texts(extractFailureModes('04', fixture('seed-concepts.txt'), 'numbered-concepts'))).toEqual([
      'Redundancy',
      'Graceful Degradation',
      'Telecommunications Systems',
    ]);
  });

  test('a seed its parser finds nothing in is an error naming the seed and the shape', () => {
    expect(() => extractFailureModes('07', fixture('seed-bullets.txt'), 'numbered-concepts')).toThrow(
      /seed 07: its "numbered-concepts" parser found no failure mode/,
    );
  });

  test('wording is compared without case, emphasis, spacing or trailing punctuation', () => {
    expect(normalize('**EC2 Instance  Failure:**')).toBe(normalize('ec2 instance failure'));
    expect(normalize('Are the runbooks autodated?')).toBe('are the runbooks autodated');
    expect(normalize('Disk full')).not.toBe(normalize('Disk fill'));
  });

  test('anchors are the ones GitHub gives headings', () => {
    expect(headingSlug('payment-retry (`lambda/payment-retry/`)')).toBe('payment-retry-lambdapayment-retry');
    expect(headingSlug('Redrive: `npm run redrive -- <queue>`')).toBe('redrive-npm-run-redrive----queue');
    expect(headingSlug("Stop the fleet's instances in us-east-1a (ResilientShop-Primary)")).toBe(
      'stop-the-fleets-instances-in-us-east-1a-resilientshop-primary',
    );
    expect([...headingAnchors('# A\n\n```\n# not a heading\n```\n\n## A\n')]).toEqual(['a', 'a-1']);
  });

  describe('a map that misses and breaks things', () => {
    const mapFile = join(FIXTURES, 'failure-modes.md');
    const rows = parseMap(fixture('failure-modes.md'), 'fixture');
    const modes = [
      ...extractFailureModes('01', fixture('seed-sections.txt'), 'sections'),
      ...extractFailureModes('04', fixture('seed-concepts.txt'), 'numbered-concepts'),
    ];
    const excluded: Exclusion[] = [
      { seed: '04', text: 'Telecommunications Systems', why: 'another industry, not this platform' },
    ];

    test('reports the seed failure mode no row cites, and only that one', () => {
      // GIVEN a seed with a mode ("Clock Skew", line 13) the map has no row for
      // WHEN the map is checked against the seeds
      const missing = missingModes(modes, rows, excluded);
      // THEN the check names it, with where the seed says it
      expect(missing.map((m) => describeMode(m, 'seed-sections.txt'))).toEqual([
        '01: Clock Skew (seed-sections.txt:13)',
      ]);
    });

    test('reports rows citing lines no seed has, excluded lines and malformed citations', () => {
      expect(staleCitations(modes, rows, excluded)).toEqual([
        'line 9: "01: Leap Second" is no failure mode of seed 01',
        'line 10: "Graceful Degradation" is not "NN: the seed\'s wording"',
        'line 11: "04: Telecommunications Systems" is excluded as not a failure mode; cite it or exclude it, not both',
      ]);
    });

    test('reports links to missing files and headings, and repository paths that do not exist', () => {
      expect(brokenReferences(rows, mapFile, ROOT)).toEqual([
        'line 7: nowhere.md (no such file)',
        'line 8: ../../../docs/fleet.md#no-such-heading (docs/fleet.md has no heading with that anchor)',
        'line 8: `lib/constructs/no-such-construct.ts` (no such path in the repository)',
      ]);
    });

    test('reports rows without a proof', () => {
      const hint = 'link a test file or a game-day experiment, or say "not proven here: <why>"';
      expect(rowsWithoutProof(rows, mapFile, ROOT)).toEqual([
        `line 8 (01: Broker Outage): ${hint}`,
        `line 9 (01: Leap Second): ${hint}`,
      ]);
    });

    test('reports a malformed status and an alarm cell without a runbook', () => {
      expect(badStatusOrAlarm(rows, mapFile, ROOT)).toEqual([
        'line 9: status "open" is not "handled ...", "partly handled: <why>" or "not handled: <why>"',
        'line 9: the alarm cell links no runbook in docs/runbooks/ and does not say "none: <why>"',
        'line 10: status "not handled" is not "handled ...", "partly handled: <why>" or "not handled: <why>"',
      ]);
    });

    test('a page without the map table, or with a row of the wrong width, is refused', () => {
      expect(() => parseMap('# Nothing here\n', 'empty.md')).toThrow(
        /empty\.md has no table with the columns: seed failure mode\(s\) \| what handles it/,
      );
      const narrow = `| ${MAP_COLUMNS.join(' | ')} |\n| - | - | - | - | - |\n| 01: A | b | c | d |\n`;
      expect(() => parseMap(narrow, 'narrow.md')).toThrow(
        /narrow\.md: rows without exactly 5 cells .* at lines 3/,
      );
    });

    test('a row that cites no seed line is reported', () => {
      const page = `| ${MAP_COLUMNS.join(' | ')} |\n| - | - | - | - | - |\n|  | b | c | d | handled |\n`;
      expect(staleCitations([], parseMap(page, 'blank.md'), [])).toEqual([
        'line 3: cites no seed failure mode',
      ]);
    });
  });
});
