/**
 * What the shipped app violates in the wiring pack, for the engineer who will register it.
 *
 *   npx tsx test/nag/shipped-app.ts            # both shipped configs
 *   npx tsx test/nag/shipped-app.ts lean       # one
 *
 * Not a test file: the pack is not registered in lib/compliance.ts yet, and the app is
 * expected to have findings until its constructs are fixed.
 */
import { Validations } from 'aws-cdk-lib';
import { WIRING_PACK, WiringChecks } from '../../lib/nag/wiring-checks';
import { buildTestApp, shippedConfig } from '../helpers/app';
import { Finding, synthFindings } from '../helpers/gates';

/** The shipped configs. */
export const SHIPPED_CONFIGS = ['default', 'lean'] as const;

/**
 * Builds the whole app for a shipped config (with its compliance packs), adds the wiring
 * pack, synthesizes, and returns the wiring pack's findings only.
 */
export function shippedAppWiringFindings(name: (typeof SHIPPED_CONFIGS)[number]): Finding[] {
  const { app } = buildTestApp(shippedConfig(name));
  Validations.of(app).addPlugins(new WiringChecks(app));
  return synthFindings(app).findings.filter((f) => f.plugin === WIRING_PACK);
}

/** One line per finding and construct: `<rule> at <construct path>`. */
export function describeFindings(findings: Finding[]): string[] {
  return findings.flatMap((f) => f.paths.map((path) => `${f.rule} at ${path}`)).sort();
}

if (require.main === module) {
  const asked = process.argv.slice(2);
  const names = SHIPPED_CONFIGS.filter((n) => asked.length === 0 || asked.includes(n));
  for (const name of names) {
    const lines = describeFindings(shippedAppWiringFindings(name));
    process.stdout.write(`config/${name}.json: ${lines.length} finding(s)\n`);
    for (const line of lines) process.stdout.write(`  ${line}\n`);
  }
}
