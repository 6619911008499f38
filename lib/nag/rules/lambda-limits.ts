import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { TemplateModel } from '../template-model';

/**
 * Every Lambda function states how long it may run and how many copies may run at once.
 *
 * For every AWS::Lambda::Function (CDK's internal handlers included: they are plain
 * CfnResources of that type, which cdk-nag's own Lambda rules skip), reports:
 *
 * - `[no-timeout]`: no `Timeout`, so Lambda's default of 3 seconds applies, whatever the
 *   function's callers and queue visibility timeout assume;
 * - `[no-reserved-concurrency]`: no `ReservedConcurrentExecutions`, so the function shares
 *   the account's unreserved pool with every other function.
 *
 * A function that should not have one states why with an acknowledgement of that exact
 * id on the function (the CDK custom-resource handlers, for example).
 *
 * Why: reserved concurrency is a bulkhead both ways. A backlog or a retry storm on one
 * function cannot take the concurrency the others need (a throttled SQS consumer's receives
 * count toward its DLQ), and a function cannot multiply its load on a shared dependency (the
 * database's connections) past what was sized. An explicit timeout is what every other
 * setting is derived from: the queue's visibility timeout (6 x), the caller's own timeout,
 * the alarm on duration.
 *
 * AWS documentation: AWS Lambda Developer Guide, "Configuring reserved concurrency for a
 * function" and "Configure Lambda function timeout" (default 3 seconds); "Using Lambda with
 * Amazon SQS" (visibility timeout at least six times the function's timeout).
 */
export function lambdaLimits(node: CfnResource): NagRuleResult {
  if (node.cfnResourceType !== 'AWS::Lambda::Function') return NagRuleCompliance.NOT_APPLICABLE;
  const fn = TemplateModel.of(node).resourceOf(node).properties;
  const findings: string[] = [];
  if (fn.Timeout === undefined) findings.push('no-timeout');
  if (fn.ReservedConcurrentExecutions === undefined) findings.push('no-reserved-concurrency');
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
