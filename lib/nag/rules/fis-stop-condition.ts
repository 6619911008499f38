import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { TemplateModel, asArray, asObject } from '../template-model';

/** The stop-condition source that stops an experiment when a CloudWatch alarm fires. */
export const ALARM_STOP_CONDITION = 'aws:cloudwatch:alarm';

/**
 * Every AWS FIS experiment template is stopped by a CloudWatch alarm.
 *
 * For every AWS::FIS::ExperimentTemplate, one `StopConditions` entry must have `Source`
 * `aws:cloudwatch:alarm` and a `Value` (the alarm's ARN). Otherwise the template is reported
 * (`NON_COMPLIANT`, no detail). A `Source` of `none` (FIS's "no stop condition") does not
 * count.
 *
 * Why: an experiment injects real faults into a real account (terminates instances, fails
 * over the database, throttles functions) and runs for its whole duration unless something
 * stops it. A stop condition on the alarm that says customers are affected (here, the
 * composite "checkout impaired" alarm) ends the experiment the moment the blast radius is
 * larger than planned, instead of when its duration runs out.
 *
 * AWS documentation: AWS Fault Injection Service User Guide, "Stop conditions for AWS FIS";
 * AWS FIS API Reference, "CreateExperimentTemplateStopConditionInput" (source
 * `aws:cloudwatch:alarm` with the alarm's ARN as value, or `none`).
 */
export function fisStopCondition(node: CfnResource): NagRuleResult {
  if (node.cfnResourceType !== 'AWS::FIS::ExperimentTemplate') return NagRuleCompliance.NOT_APPLICABLE;
  const template = TemplateModel.of(node).resourceOf(node);
  const stoppedByAlarm = asArray(template.properties.StopConditions)
    .map(asObject)
    .some((c) => c.Source === ALARM_STOP_CONDITION && c.Value !== undefined && c.Value !== '');
  return stoppedByAlarm ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
}
