import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, Stage } from 'aws-cdk-lib';
import { listAcknowledgements, reasonProblem } from '../../lib/compliance';

/** A finding that fails (or would fail) synthesis. */
export interface Finding {
  readonly plugin: string;
  readonly rule: string;
  readonly severity: string;
  readonly paths: string[];
}

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    violations: { ruleName: string; severity?: string; violatingConstructs?: { constructPath: string }[] }[];
  }[];
}

/**
 * Synthesizes an app with its validation plugins and returns every finding in the
 * validation report, of any severity (an empty list means the gates are green).
 */
export function synthFindings(app: App): { outdir: string; findings: Finding[] } {
  let synthError: unknown;
  try {
    app.synth();
  } catch (err) {
    synthError = err;
  }
  const reportPath = join(app.outdir, 'validation-report.json');
  if (!existsSync(reportPath)) {
    if (synthError) throw synthError;
    return { outdir: app.outdir, findings: [] };
  }
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as ValidationReport;
  const findings = report.pluginReports.flatMap((plugin) =>
    plugin.violations.map((v) => ({
      plugin: plugin.pluginName,
      rule: v.ruleName,
      severity: v.severity ?? 'error',
      paths: (v.violatingConstructs ?? []).map((c) => c.constructPath),
    })),
  );
  if (synthError && findings.length === 0) throw synthError;
  return { outdir: app.outdir, findings };
}

/** Every acknowledgement whose reason would not pass review, or that sits on a whole stack or app. */
export function badAcknowledgements(app: App): string[] {
  return listAcknowledgements(app).flatMap(({ path, id, reason }) => {
    const problems: string[] = [];
    const problem = reasonProblem(reason);
    if (problem) problems.push(`${path}: ${id}: reason "${reason}" ${problem}`);
    const construct = app.node.findAll().find((c) => c.node.path === path);
    if (construct && (Stack.isStack(construct) || Stage.isStage(construct))) {
      problems.push(`${path}: ${id}: acknowledged on a whole stack or stage; move it to the resource`);
    }
    return problems;
  });
}

/** The CloudFormation templates of a cloud assembly directory. */
export function templatesIn(outdir: string): string[] {
  return readdirSync(outdir)
    .filter((f) => f.endsWith('.template.json'))
    .map((f) => join(outdir, f));
}

/** One cfn-lint match. */
export interface CfnLintMatch {
  readonly Rule: { Id: string };
  readonly Message: string;
  readonly Filename: string;
  readonly Level: string;
}

/** Runs cfn-lint over templates; returns every error, warning and informational match. */
export function cfnLint(templates: string[]): CfnLintMatch[] {
  const run = spawnSync('cfn-lint', ['--format', 'json', '--', ...templates], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) throw run.error;
  const out = run.stdout.trim();
  if (!out.startsWith('[')) {
    throw new Error(`cfn-lint did not return JSON (exit ${run.status}): ${run.stderr || out}`);
  }
  return JSON.parse(out) as CfnLintMatch[];
}

/** The `missing` context entries of a cloud assembly: lookups that would need credentials. */
export function missingContext(outdir: string): unknown[] {
  const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as { missing?: unknown[] };
  return manifest.missing ?? [];
}
