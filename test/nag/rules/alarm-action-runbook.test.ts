import { Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { RUNBOOK_BASE_CONTEXT, runbookAlarm } from '../../../lib/constructs/runbook-alarm';
import { RESILIENCE_RULES } from '../../../lib/nag/resilience-checks';
import { runbookOf } from '../../../lib/nag/rules/alarm-action-runbook';
import { resilienceFindings, resourcePath } from '../fixtures';

const RULE = RESILIENCE_RULES.alarmActionRunbook;
const metric = new cloudwatch.Metric({ namespace: 'Shop', metricName: 'Errors' });

/** An alarm built the project's way (runbook in the description), notifying a topic. */
function pagingAlarm(stack: Stack, id = 'Alarm'): cloudwatch.Alarm {
  const alarm = runbookAlarm(stack, id, 'fleet-alb-5xx', {
    metric,
    threshold: 1,
    evaluationPeriods: 1,
    summary: 'Checkout errors',
  });
  alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic(stack)));
  return alarm;
}

function topic(stack: Stack): sns.ITopic {
  return (stack.node.tryFindChild('Topic') as sns.Topic | undefined) ?? new sns.Topic(stack, 'Topic');
}

describe('AlarmActionRunbook: every alarm has an action and links its runbook', () => {
  test('an alarm with no action and no runbook link is reported for both', () => {
    // GIVEN a bare alarm
    let alarm!: cloudwatch.Alarm;
    const findings = resilienceFindings((stack) => {
      alarm = new cloudwatch.Alarm(stack, 'Alarm', { metric, threshold: 1, evaluationPeriods: 1 });
    });
    // THEN both gaps are reported
    expect(findings).toEqual([
      `${RULE}[no-action] at ${resourcePath(alarm)}`,
      `${RULE}[no-runbook] at ${resourcePath(alarm)}`,
    ]);
  });

  test('an alarm made with runbookAlarm() that notifies a topic passes', () => {
    expect(resilienceFindings((stack) => pagingAlarm(stack))).toEqual([]);
  });

  test('a runbook linked through the runbookBaseUrl context (a repository URL) passes', () => {
    const findings = resilienceFindings((stack) => {
      stack.node.setContext(RUNBOOK_BASE_CONTEXT, 'https://github.com/acme/shop/blob/main/docs/runbooks/');
      pagingAlarm(stack);
    });
    expect(findings).toEqual([]);
  });

  test('an alarm whose actions are disabled is reported although it lists one', () => {
    let alarm!: cloudwatch.Alarm;
    const findings = resilienceFindings((stack) => {
      alarm = new cloudwatch.Alarm(stack, 'Alarm', {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        actionsEnabled: false,
        alarmDescription: 'Checkout errors. Runbook: docs/runbooks/fleet-alb-5xx.md',
      });
      alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic(stack)));
    });
    expect(findings).toEqual([`${RULE}[actions-disabled] at ${resourcePath(alarm)}`]);
  });

  test('a description that names a runbook another way (not docs/runbooks/<name>.md) is reported', () => {
    let alarm!: cloudwatch.Alarm;
    const findings = resilienceFindings((stack) => {
      alarm = new cloudwatch.Alarm(stack, 'Alarm', {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        alarmDescription: 'Checkout errors. See the wiki page "Checkout 5xx".',
      });
      alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic(stack)));
    });
    expect(findings).toEqual([`${RULE}[no-runbook] at ${resourcePath(alarm)}`]);
  });

  describe('composite alarms', () => {
    function composite(stack: Stack, description?: string): cloudwatch.CompositeAlarm {
      const child = pagingAlarm(stack, 'Child');
      const alarm = new cloudwatch.CompositeAlarm(stack, 'Composite', {
        alarmRule: cloudwatch.AlarmRule.fromAlarm(child, cloudwatch.AlarmState.ALARM),
        alarmDescription: description,
      });
      alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic(stack)));
      return alarm;
    }

    test('a composite alarm without a runbook link is reported', () => {
      let alarm!: cloudwatch.CompositeAlarm;
      const findings = resilienceFindings((stack) => {
        alarm = composite(stack);
      });
      expect(findings).toEqual([`${RULE}[no-runbook] at ${resourcePath(alarm)}`]);
    });

    test('a composite alarm with an action and a runbook link passes', () => {
      const findings = resilienceFindings((stack) => {
        composite(stack, 'Checkout impaired. Runbook: docs/runbooks/fleet-checkout-impaired.md');
      });
      expect(findings).toEqual([]);
    });
  });

  test.each([
    ['Errors. Runbook: docs/runbooks/fleet-alb-5xx.md', 'fleet-alb-5xx'],
    [
      'Errors. Runbook: https://github.com/acme/shop/blob/main/docs/runbooks/queue-dead-letters.md',
      'queue-dead-letters',
    ],
    [
      {
        'Fn::Join': ['', [{ Ref: 'Queue' }, ': dead letters. Runbook: docs/runbooks/queue-dead-letters.md']],
      },
      'queue-dead-letters',
    ],
    ['Runbook: docs/runbooks/fleet-alb-5xx.md, then page the database owner', undefined],
    ['Errors. Runbook: runbooks/fleet-alb-5xx.md', undefined],
    [undefined, undefined],
  ])('runbookOf(%j) is %j', (description, runbook) => {
    expect(runbookOf(description)).toBe(runbook);
  });
});
