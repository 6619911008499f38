/**
 * Prints the table of every cdk-nag / CloudFormation-validation acknowledgement the app
 * makes for config/default.json and config/lean.json; with `--write`, replaces the block
 * between the acknowledgements markers in docs/compliance.md.
 *
 *   npx tsx scripts/acknowledgements.ts [--write]
 *
 * The generator lives in test/helpers/acknowledgements.ts, where tsconfig.json type-checks
 * it and test/docs/docs.test.ts imports it.
 */
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import {
  COMPLIANCE_DOC,
  acknowledgementTable,
  readComplianceDoc,
  replaceAcknowledgementBlock,
} from '../test/helpers/acknowledgements';

const table = acknowledgementTable();
if (process.argv.includes('--write')) {
  const before = readComplianceDoc();
  const after = replaceAcknowledgementBlock(before, table);
  if (after !== before) writeFileSync(COMPLIANCE_DOC, after);
  process.stdout.write(
    `${relative(process.cwd(), COMPLIANCE_DOC)}: ${after === before ? 'already up to date' : 'updated'}\n`,
  );
} else {
  process.stdout.write(`${table}\n`);
}
