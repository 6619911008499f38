import { Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as fis from 'aws-cdk-lib/aws-fis';
import { RESILIENCE_RULES } from '../../../lib/nag/resilience-checks';
import { resilienceFindings, resourcePath } from '../fixtures';

const RULE = RESILIENCE_RULES.fisStopCondition;

/** An experiment that stops one tagged instance, with the given stop conditions. */
function experiment(
  stack: Stack,
  stopConditions: fis.CfnExperimentTemplate.ExperimentTemplateStopConditionProperty[],
): fis.CfnExperimentTemplate {
  return new fis.CfnExperimentTemplate(stack, 'Experiment', {
    description: 'Stop one checkout instance',
    roleArn: 'arn:aws:iam::111111111111:role/fis',
    stopConditions,
    targets: {
      Instances: {
        resourceType: 'aws:ec2:instance',
        resourceTags: { app: 'shop' },
        selectionMode: 'COUNT(1)',
      },
    },
    actions: {
      Stop: {
        actionId: 'aws:ec2:stop-instances',
        parameters: { startInstancesAfterDuration: 'PT5M' },
        targets: { Instances: 'Instances' },
      },
    },
  });
}

describe('FisStopCondition: every experiment stops on a CloudWatch alarm', () => {
  test("an experiment with FIS's 'none' stop condition is reported", () => {
    // GIVEN an experiment that runs for its whole duration whatever happens
    let template!: fis.CfnExperimentTemplate;
    const findings = resilienceFindings((stack) => {
      template = experiment(stack, [{ source: 'none' }]);
    });
    // THEN it is reported
    expect(findings).toEqual([`${RULE} at ${resourcePath(template)}`]);
  });

  test('an alarm stop condition without the alarm ARN does not count', () => {
    let template!: fis.CfnExperimentTemplate;
    const findings = resilienceFindings((stack) => {
      template = experiment(stack, [{ source: 'aws:cloudwatch:alarm' }]);
    });
    expect(findings).toEqual([`${RULE} at ${resourcePath(template)}`]);
  });

  test('an experiment stopped by an alarm passes', () => {
    const findings = resilienceFindings((stack) => {
      // An L1 alarm with an action and a runbook, so the alarm rule has nothing to say.
      const alarm = new cloudwatch.CfnAlarm(stack, 'Impaired', {
        namespace: 'Shop',
        metricName: 'Errors',
        statistic: 'Sum',
        period: 60,
        evaluationPeriods: 1,
        threshold: 1,
        comparisonOperator: 'GreaterThanOrEqualToThreshold',
        alarmActions: ['arn:aws:sns:us-east-1:111111111111:oncall'],
        alarmDescription: 'Checkout impaired. Runbook: docs/runbooks/fleet-checkout-impaired.md',
      });
      experiment(stack, [{ source: 'aws:cloudwatch:alarm', value: alarm.attrArn }]);
    });
    expect(findings).toEqual([]);
  });
});
