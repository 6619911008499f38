import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';

/** Properties of {@link AlarmTopic}. */
export interface AlarmTopicProps {
  /**
   * Addresses that receive every alarm (each must confirm the subscription e-mail).
   *
   * @default - no subscription
   */
  readonly emails?: string[];

  /**
   * The sender name e-mail and SMS subscribers see.
   *
   * @default 'resilient-shop alarms'
   */
  readonly displayName?: string;
}

/**
 * The services that publish to the alarm topic: CloudWatch (alarm and OK actions) and
 * EventBridge (rules for events that have no metric, such as a failed secret rotation).
 */
export const ALARM_PUBLISHERS = ['cloudwatch.amazonaws.com', 'events.amazonaws.com'] as const;

/**
 * The SNS topic every alarm notifies: encrypted with a customer managed key, TLS-only.
 *
 * A topic policy replaces SNS's default policy, so the TLS deny that `enforceSSL` writes
 * would, alone, leave nobody allowed to publish ("no resource-based policy allows the
 * SNS:Publish action"). The policy therefore also allows each of
 * {@link ALARM_PUBLISHERS} to publish, only on behalf of this account
 * (`aws:SourceAccount`), and the key policy lets the same services encrypt the messages
 * (SNS server-side encryption needs `kms:GenerateDataKey*` and `kms:Decrypt` from the
 * publisher; "Enable compatibility between event sources from AWS services and encrypted
 * topics" in the Amazon SNS developer guide gives exactly these statements, with no
 * condition on the key side: SNS calls KMS for the publisher, and the topic policy is
 * where the source account is checked).
 */
export class AlarmTopic extends Construct {
  /** The topic; pass it to constructs that take an `alarmTopic`. */
  public readonly topic: sns.Topic;
  /** The key that encrypts the topic's messages. */
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: AlarmTopicProps = {}) {
    super(scope, id);
    const account = Stack.of(this).account;
    this.key = new kms.Key(this, 'Key', {
      description: 'Encrypts the alarm topic',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.topic = new sns.Topic(this, 'Topic', {
      masterKey: this.key,
      enforceSSL: true,
      displayName: props.displayName ?? 'resilient-shop alarms',
    });
    for (const service of ALARM_PUBLISHERS) {
      const publisher = new iam.ServicePrincipal(service);
      this.key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: `Allow${service.split('.')[0]}ToEncryptAlarms`,
          principals: [publisher],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
        }),
      );
      this.topic.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: `Allow${service.split('.')[0]}ToPublish`,
          principals: [publisher],
          actions: ['sns:Publish'],
          resources: [this.topic.topicArn],
          conditions: { StringEquals: { 'aws:SourceAccount': account } },
        }),
      );
    }
    for (const email of props.emails ?? []) {
      const subscription = this.topic.addSubscription(new subscriptions.EmailSubscription(email));
      acknowledge(
        subscription.node.defaultChild!,
        ['Serverless-SNSRedrivePolicy'],
        'A dead-letter queue of undelivered alarm e-mails would itself need an alarm, sent to this same topic; the alarms keep their state and history in CloudWatch, which the runbooks start from.',
      );
    }
  }

  /** Makes each alarm notify the topic when it fires and when it recovers. */
  public notify(...alarms: cloudwatch.IAlarm[]): void {
    const action = new cloudwatchActions.SnsAction(this.topic);
    for (const alarm of alarms) {
      if (!(alarm instanceof cloudwatch.Alarm || alarm instanceof cloudwatch.CompositeAlarm)) {
        throw new Error(`AlarmTopic.notify: ${alarm.node.path} is not an alarm this app created`);
      }
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
  }
}
