import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

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
 * The SNS topic every alarm notifies: encrypted with a customer managed key that
 * CloudWatch may use, TLS-only publishing.
 */
export class AlarmTopic extends Construct {
  /** The topic; pass it to constructs that take an `alarmTopic`. */
  public readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlarmTopicProps = {}) {
    super(scope, id);
    const key = new kms.Key(this, 'Key', {
      description: 'Encrypts the alarm topic',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // CloudWatch publishes alarm notifications and must encrypt them with this key.
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.topic = new sns.Topic(this, 'Topic', {
      masterKey: key,
      enforceSSL: true,
      displayName: props.displayName ?? 'resilient-shop alarms',
    });
    for (const email of props.emails ?? [])
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
  }
}
