import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../../lib/app';
import { listAcknowledgements } from '../../lib/compliance';
import { ROOT, cdkJsonContext, shippedConfig } from './app';

/** The page whose acknowledgement table is generated. */
export const COMPLIANCE_DOC = join(ROOT, 'docs', 'compliance.md');
export const ACKNOWLEDGEMENTS_START = '<!-- acknowledgements:start -->';
export const ACKNOWLEDGEMENTS_END = '<!-- acknowledgements:end -->';

/** The shipped configs the table covers, in the order their profiles are listed. */
const SHIPPED_CONFIGS = ['default', 'lean'] as const;

/** One row of the table: one reason on one construct, for the rule ids it covers. */
export interface AcknowledgementRow {
  /** Profiles of the shipped configs that make this acknowledgement. */
  readonly profiles: readonly string[];
  /** Construct path, stack name included. */
  readonly path: string;
  /** Rule ids, sorted; cdk-nag's without the `Annotation::` prefix CDK records them under. */
  readonly ids: readonly string[];
  readonly reason: string;
}

/** CDK records annotation-based findings (cdk-nag's) as `Annotation::<rule id>`. */
const displayId = (id: string): string => id.replace(/^Annotation::/, '');

/** Code-unit order, so the table does not depend on the machine's locale. */
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Every acknowledgement the app makes for `config/default.json` and `config/lean.json`,
 * one row per construct and reason, rule ids sharing that reason grouped, rows made
 * by both profiles merged.
 *
 * The apps are built, not synthesized: every acknowledgement today is made while the
 * constructs are built (ours through `acknowledge()`, CDK's own in its constructs). One
 * made from an Aspect would only appear after `app.synth()`.
 */
export function acknowledgementRows(): AcknowledgementRow[] {
  const rows = new Map<string, { profiles: string[]; path: string; ids: string[]; reason: string }>();
  for (const name of SHIPPED_CONFIGS) {
    const config = shippedConfig(name);
    const app = new App({ context: cdkJsonContext() });
    buildApp(app, config);
    const byConstructAndReason = new Map<string, { path: string; reason: string; ids: Set<string> }>();
    for (const { path, id, reason } of listAcknowledgements(app)) {
      const key = JSON.stringify([path, reason]);
      const entry = byConstructAndReason.get(key) ?? { path, reason, ids: new Set<string>() };
      entry.ids.add(displayId(id));
      byConstructAndReason.set(key, entry);
    }
    for (const { path, reason, ids } of byConstructAndReason.values()) {
      const sortedIds = [...ids].sort(compare);
      const key = JSON.stringify([path, sortedIds, reason]);
      const row = rows.get(key) ?? { profiles: [], path, ids: sortedIds, reason };
      if (!row.profiles.includes(config.profile)) row.profiles.push(config.profile);
      rows.set(key, row);
    }
  }
  return [...rows.values()].sort(
    (a, b) =>
      compare(a.path, b.path) ||
      compare(a.ids.join(' '), b.ids.join(' ')) ||
      compare(a.reason, b.reason) ||
      compare(a.profiles.join(' '), b.profiles.join(' ')),
  );
}

/** Text safe inside a Markdown table cell: one line, pipes escaped. */
const cell = (text: string): string => text.replace(/\s+/g, ' ').trim().replace(/\|/g, '\\|');
const code = (text: string): string => `\`${cell(text)}\``;

/**
 * The acknowledgement table as Markdown, columns padded the way Prettier pads them, so
 * `--write` leaves a file that `prettier --check` accepts.
 */
export function acknowledgementTable(rows: readonly AcknowledgementRow[] = acknowledgementRows()): string {
  const header = ['profiles', 'construct', 'rules', 'reason'];
  const body = rows.map((row) => [
    row.profiles.join(', '),
    code(row.path),
    row.ids.map(code).join(', '),
    cell(row.reason),
  ]);
  const widths = header.map((title, i) => Math.max(3, title.length, ...body.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/**
 * The document with the text between the start and end markers replaced by the table.
 *
 * @throws Error when the markers are missing, repeated or out of order
 */
export function replaceAcknowledgementBlock(document: string, table: string): string {
  const start = document.indexOf(ACKNOWLEDGEMENTS_START);
  const end = document.indexOf(ACKNOWLEDGEMENTS_END);
  if (
    start < 0 ||
    end < start ||
    document.indexOf(ACKNOWLEDGEMENTS_START, start + 1) >= 0 ||
    document.indexOf(ACKNOWLEDGEMENTS_END, end + 1) >= 0
  ) {
    throw new Error(
      `docs/compliance.md must contain ${ACKNOWLEDGEMENTS_START} followed by ${ACKNOWLEDGEMENTS_END}, once each`,
    );
  }
  return `${document.slice(0, start + ACKNOWLEDGEMENTS_START.length)}\n\n${table}\n\n${document.slice(end)}`;
}

/** The text currently between the markers of a document, trimmed. */
export function acknowledgementBlock(document: string): string {
  const start = document.indexOf(ACKNOWLEDGEMENTS_START);
  const end = document.indexOf(ACKNOWLEDGEMENTS_END);
  if (start < 0 || end < start) return '';
  return document.slice(start + ACKNOWLEDGEMENTS_START.length, end).trim();
}

/** Reads docs/compliance.md. */
export function readComplianceDoc(): string {
  return readFileSync(COMPLIANCE_DOC, 'utf8');
}
