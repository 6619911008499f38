import { Stage, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, NIST80053R5Checks, PCIDSS321Checks, ServerlessChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { RESILIENCE_PACK, ResilienceChecks } from './nag/resilience-checks';
import { WIRING_PACK, WiringChecks } from './nag/wiring-checks';

/** The cdk-nag packs every app and every test synth registers. */
export const COMPLIANCE_PACKS = [
  'AwsSolutions',
  'NIST.800.53.R5',
  'PCI.DSS.321',
  'Serverless',
  WIRING_PACK,
  RESILIENCE_PACK,
] as const;

/**
 * Registers the AwsSolutions, NIST 800-53 rev 5, PCI DSS 3.2.1 and Serverless packs
 * (the last checks Lambda functions, event source mappings, queues and EventBridge
 * targets for failure handling, tracing and log retention) and the project's own
 * wiring pack (lib/nag: every interaction the system needs is allowed by
 * the policies, key policies and security groups of the template) and resilience pack
 * (lib/nag/resilience-checks.ts: redrive policies, ELB health checks over two zones,
 * IMDSv2, alarm actions and runbooks, FIS stop conditions, Lambda timeouts and reserved
 * concurrency, failover health checks, idempotency lifetimes) on a stage (usually the
 * App). Any unacknowledged finding then fails synthesis.
 */
export function addCompliancePacks(stage: Stage): void {
  Validations.of(stage).addPlugins(
    new AwsSolutionsChecks(stage),
    new NIST80053R5Checks(stage),
    new PCIDSS321Checks(stage),
    new ServerlessChecks(stage),
    new WiringChecks(stage),
    new ResilienceChecks(stage),
  );
}

/** Words that, alone, explain nothing about why a finding does not apply. */
const GENERIC_REASONS = [
  /^(not needed|not required|n\/?a|none|ok|okay|fine|ignore[d]?|suppress(ed)?|acceptable|by design|false positive|todo|wip|temporary|known issue|accepted)\.?$/i,
  /^(this is )?(not needed|not required|not applicable|fine|ok|by design|expected|intended)( here| for now| for this (stack|construct|resource))?\.?$/i,
];

/** The shortest reason accepted: a sentence, not a label. */
export const MIN_REASON_LENGTH = 40;

/**
 * Why a reason fails the bar, or undefined when it is specific enough: at least one
 * sentence ({@link MIN_REASON_LENGTH} characters, several words) that is not one of the
 * generic phrases ("not needed", "false positive", ...).
 */
export function reasonProblem(reason: string): string | undefined {
  const trimmed = reason.trim();
  if (GENERIC_REASONS.some((re) => re.test(trimmed))) return 'is generic';
  if (trimmed.length < MIN_REASON_LENGTH) {
    return `is shorter than a sentence (${trimmed.length} < ${MIN_REASON_LENGTH} characters)`;
  }
  if (trimmed.split(/\s+/).length < 6) return 'has fewer than six words';
  return undefined;
}

/**
 * Acknowledges the same finding from several packs on one construct, with one reason.
 * Throws at synth when the reason would not pass review, so a generic reason never
 * reaches a template.
 */
export function acknowledge(scope: IConstruct, ids: readonly string[], reason: string): void {
  const problem = reasonProblem(reason);
  if (problem) {
    throw new Error(`Acknowledgement of ${ids.join(', ')} on ${scope.node.path}: the reason ${problem}`);
  }
  for (const id of ids) {
    Validations.of(scope).acknowledge({ id, reason });
  }
}

/** One acknowledgement found in a construct tree. */
export interface AcknowledgementRecord {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Lists every acknowledgement recorded below a scope (whoever made it). */
export function listAcknowledgements(scope: IConstruct): AcknowledgementRecord[] {
  const records: AcknowledgementRecord[] = [];
  for (const construct of scope.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        records.push({ path: construct.node.path, id, reason });
      }
    }
  }
  return records;
}

/**
 * A resolved IAM resource as cdk-nag names it in a finding (the `Resource::<name>` part of
 * an `AwsSolutions-IAM5[...]` id):
 * `<LogicalId.Attr>` for GetAtt, `<LogicalId>` for Ref, joins flattened.
 */
export function nagResourceName(value: unknown): string {
  if (typeof value === 'string') return value;
  const o = value as Record<string, unknown>;
  if (Array.isArray(o['Fn::GetAtt'])) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
  if (typeof o.Ref === 'string') return `<${o.Ref}>`;
  if (Array.isArray(o['Fn::Join'])) {
    const [separator, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map(nagResourceName).join(separator);
  }
  return JSON.stringify(value);
}
