import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { TemplateModel, asArray, flatString } from '../template-model';

const ALARMS = ['AWS::CloudWatch::Alarm', 'AWS::CloudWatch::CompositeAlarm'];

/**
 * How an alarm description links its runbook, as `runbookAlarm()` writes it: it ends with
 * `Runbook: [<base>/]docs/runbooks/<name>.md`, where `<base>` is the
 * `resilient-shop:runbookBaseUrl` context value (a repository URL) when set.
 */
export const RUNBOOK_LINK = /(?:^|\s)Runbook: (?:\S*\/)?docs\/runbooks\/([a-z0-9][a-z0-9-]*)\.md\s*$/;

/**
 * The runbook an alarm description links (`<name>` of `docs/runbooks/<name>.md`), or
 * undefined when it links none. Intrinsics in the description (a queue name from a
 * `Ref`) do not hide the link.
 */
export function runbookOf(description: unknown): string | undefined {
  if (description === undefined) return undefined;
  return RUNBOOK_LINK.exec(flatString(description))?.[1];
}

/**
 * Every CloudWatch alarm pages someone, and tells them what to do.
 *
 * For every AWS::CloudWatch::Alarm and AWS::CloudWatch::CompositeAlarm, reports:
 *
 * - `[no-action]`: `AlarmActions` is empty, so entering ALARM notifies nobody and starts
 *   nothing (an SNS topic, an Auto Scaling policy, an EC2 or Systems Manager action all
 *   count);
 * - `[actions-disabled]`: `ActionsEnabled` is false, so the actions never run;
 * - `[no-runbook]`: `AlarmDescription` does not end with a link to its runbook,
 *   `Runbook: [<base>/]docs/runbooks/<name>.md` ({@link RUNBOOK_LINK}). The rule checks the
 *   link's form; test/nag/runbook-files.test.ts checks that each linked file exists.
 *
 * Why: an alarm without an action changes colour on a dashboard nobody watches, and an
 * alarm that pages without a runbook leaves the on-call engineer to work out at 3 a.m. what
 * the alarm means and which safe steps exist. The description is what the notification
 * e-mail and the console show first, so the link belongs there.
 *
 * AWS documentation: Amazon CloudWatch User Guide, "Using Amazon CloudWatch alarms" (alarm
 * actions) and "Create a composite alarm"; AWS CloudFormation, "AWS::CloudWatch::Alarm"
 * (`ActionsEnabled`, `AlarmActions`, `AlarmDescription`).
 */
export function alarmActionRunbook(node: CfnResource): NagRuleResult {
  if (!ALARMS.includes(node.cfnResourceType)) return NagRuleCompliance.NOT_APPLICABLE;
  const alarm = TemplateModel.of(node).resourceOf(node).properties;
  const findings: string[] = [];
  if (asArray(alarm.AlarmActions).length === 0) findings.push('no-action');
  if (alarm.ActionsEnabled === false || alarm.ActionsEnabled === 'false') findings.push('actions-disabled');
  if (runbookOf(alarm.AlarmDescription) === undefined) findings.push('no-runbook');
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
