import { Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import { WIRING_PACK, WIRING_RULES, WiringChecks } from '../../lib/nag/wiring-checks';
import { logicalId, wiringFindings } from './fixtures';

/** An alarm notifying a topic whose policy only denies publishing without TLS. */
function silencedAlarm(stack: Stack): { alarm: cloudwatch.Alarm; topic: sns.Topic } {
  const topic = new sns.Topic(stack, 'Topic', { enforceSSL: true });
  const alarm = new cloudwatch.Alarm(stack, 'Alarm', {
    metric: new cloudwatch.Metric({ namespace: 'Shop', metricName: 'Errors' }),
    threshold: 1,
    evaluationPeriods: 1,
  });
  alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic));
  return { alarm, topic };
}

describe('the WiringChecks pack', () => {
  test('reports under its own plugin name, with Pack-Rule ids', () => {
    const pack = new WiringChecks();
    expect(pack.name).toBe(WIRING_PACK);
    expect(pack.readPackName).toBe(WIRING_PACK);
    expect(Object.values(WIRING_RULES)).toEqual([
      'ResilientShopWiring-TopicPublish',
      'ResilientShopWiring-EndpointReach',
      'ResilientShopWiring-DbConnectAuth',
      'ResilientShopWiring-KeyPolicyPrincipal',
    ]);
  });

  test('a finding acknowledged on its resource with the exact Pack-Rule[finding] id is not reported', () => {
    // GIVEN the failing fixture of TopicPublish, acknowledged on the alarm
    const findings = wiringFindings((stack) => {
      const { alarm, topic } = silencedAlarm(stack);
      Validations.of(alarm).acknowledge({
        id: `${WIRING_RULES.topicPublish}[${logicalId(topic)}:topic-policy]`,
        reason: 'Fixture: the acknowledgement id the pack prints must silence exactly this finding.',
      });
    });
    // THEN nothing is reported
    expect(findings).toEqual([]);
  });

  test('acknowledging the bare rule id does not silence a finding that carries a detail', () => {
    const findings = wiringFindings((stack) => {
      const { alarm } = silencedAlarm(stack);
      Validations.of(alarm).acknowledge({
        id: WIRING_RULES.topicPublish,
        reason: 'Fixture: a bare rule id must not hide a finding about a specific topic.',
      });
    });
    expect(findings).toEqual([expect.stringContaining(`${WIRING_RULES.topicPublish}[`)]);
  });

  test('validating a tree twice reads the changed template the second time', () => {
    // GIVEN a silenced alarm, validated once
    const stack = new Stack(undefined, 'Twice', { env: { account: '111111111111', region: 'us-east-1' } });
    const { topic } = silencedAlarm(stack);
    const pack = new WiringChecks();
    expect(pack.validateScope(stack).success).toBe(false);
    // WHEN the topic policy is fixed THEN the same pack sees the fix
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
      }),
    );
    expect(pack.validateScope(stack)).toEqual({ success: true, violations: [] });
  });
});
