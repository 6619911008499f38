import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { WIRING_RULES } from '../../../lib/nag/wiring-checks';
import { logicalId, resourcePath, wiringFindings } from '../fixtures';

const RULE = WIRING_RULES.topicPublish;
const CLOUDWATCH = new iam.ServicePrincipal('cloudwatch.amazonaws.com');

function alarmOn(stack: Stack, topic: sns.ITopic): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(stack, 'Alarm', {
    metric: new cloudwatch.Metric({ namespace: 'Shop', metricName: 'Errors' }),
    threshold: 1,
    evaluationPeriods: 1,
  });
  alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic));
  return alarm;
}

function allowPublish(topic: sns.Topic, principal: iam.IPrincipal): void {
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [principal],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
    }),
  );
}

describe('TopicPublish: alarms and event rules can publish to their topic', () => {
  test('a topic policy holding only the TLS deny lets no alarm publish', () => {
    // GIVEN an alarm notifying a topic whose only policy statement is enforceSSL's deny
    let alarm!: cloudwatch.Alarm;
    let topic!: sns.Topic;
    const findings = wiringFindings((stack) => {
      topic = new sns.Topic(stack, 'Topic', { enforceSSL: true });
      alarm = alarmOn(stack, topic);
    });
    // THEN the alarm is reported, naming the topic and its policy
    expect(findings).toEqual([`${RULE}[${logicalId(topic)}:topic-policy] at ${resourcePath(alarm)}`]);
  });

  test('a topic policy that also allows CloudWatch to publish passes', () => {
    const findings = wiringFindings((stack) => {
      const topic = new sns.Topic(stack, 'Topic', { enforceSSL: true });
      allowPublish(topic, CLOUDWATCH);
      alarmOn(stack, topic);
    });
    expect(findings).toEqual([]);
  });

  test('a topic with no policy keeps the SNS default policy and passes', () => {
    expect(wiringFindings((stack) => alarmOn(stack, new sns.Topic(stack, 'Topic')))).toEqual([]);
  });

  test('an unconditional deny overrides the allow', () => {
    let topic!: sns.Topic;
    const findings = wiringFindings((stack) => {
      topic = new sns.Topic(stack, 'Topic');
      allowPublish(topic, CLOUDWATCH);
      topic.addToResourcePolicy(
        new iam.PolicyStatement({
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['sns:*'],
          resources: [topic.topicArn],
        }),
      );
      alarmOn(stack, topic);
    });
    expect(findings).toEqual([expect.stringContaining(`${RULE}[${logicalId(topic)}:topic-policy]`)]);
  });

  test('an encrypted topic whose key policy does not let CloudWatch use the key is reported', () => {
    // GIVEN a customer managed key granting CloudWatch kms:GenerateDataKey only (not GenerateDataKey*)
    let topic!: sns.Topic;
    let key!: kms.Key;
    const findings = wiringFindings((stack) => {
      key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
      key.grant(CLOUDWATCH, 'kms:Decrypt', 'kms:GenerateDataKey');
      topic = new sns.Topic(stack, 'Topic', { masterKey: key });
      alarmOn(stack, topic);
    });
    expect(findings).toEqual([
      expect.stringContaining(`${RULE}[${logicalId(topic)}:key-policy:${logicalId(key)}] at `),
    ]);
  });

  test('an encrypted topic whose key policy allows CloudWatch Decrypt and GenerateDataKey* passes', () => {
    const findings = wiringFindings((stack) => {
      const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
      key.grant(CLOUDWATCH, 'kms:Decrypt', 'kms:GenerateDataKey*');
      alarmOn(stack, new sns.Topic(stack, 'Topic', { masterKey: key }));
    });
    expect(findings).toEqual([]);
  });

  test('a topic encrypted with the AWS managed key alias/aws/sns is reported', () => {
    let topic!: sns.Topic;
    const findings = wiringFindings((stack) => {
      topic = new sns.Topic(stack, 'Topic', {
        masterKey: kms.Alias.fromAliasName(stack, 'Managed', 'alias/aws/sns'),
      });
      alarmOn(stack, topic);
    });
    expect(findings).toEqual([expect.stringContaining(`${RULE}[${logicalId(topic)}:aws-managed-key]`)]);
  });

  describe('EventBridge rule targets', () => {
    test('an L1 rule targeting an encrypted topic whose key lets only CloudWatch in is reported', () => {
      // GIVEN a rule written as L1, so nothing grants EventBridge on the topic's key
      let rule!: events.CfnRule;
      let topic!: sns.Topic;
      let key!: kms.Key;
      const findings = wiringFindings((stack) => {
        key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
        key.grant(CLOUDWATCH, 'kms:Decrypt', 'kms:GenerateDataKey*');
        topic = new sns.Topic(stack, 'Topic', { masterKey: key });
        rule = new events.CfnRule(stack, 'Rule', {
          scheduleExpression: 'rate(5 minutes)',
          targets: [{ id: 'Topic', arn: topic.topicArn }],
        });
      });
      // THEN the rule is reported for the key (the topic has no policy, so SNS's default applies)
      expect(findings).toEqual([
        `${RULE}[${logicalId(topic)}:key-policy:${logicalId(key)}] at ${resourcePath(rule)}`,
      ]);
    });

    test('the L2 SnsTopic target grants EventBridge on the topic and its key, and passes', () => {
      const findings = wiringFindings((stack) => {
        const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
        const topic = new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true });
        new events.Rule(stack, 'Rule', {
          schedule: events.Schedule.rate(Duration.minutes(5)),
          targets: [new targets.SnsTopic(topic)],
        });
      });
      expect(findings).toEqual([]);
    });
  });
});
