import { Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';
import { runbookAlarm } from './runbook-alarm';

/** How long the dead-letter queue keeps a message: 14 days, the SQS maximum. */
export const DEAD_LETTER_RETENTION = Duration.days(14);

/** Visibility timeout per second of consumer timeout: the factor AWS Lambda documents for SQS sources. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** What {@link idempotencyLifetime} adds beyond retention and redrive: a producer's late re-send. */
export const IDEMPOTENCY_MARGIN = Duration.days(1);

/** The longest visibility timeout SQS accepts. */
const MAX_VISIBILITY_TIMEOUT = Duration.hours(12);

/** Properties of the queue that callers may set; the construct owns the rest (see README). */
export type ResilientQueueOptions = Omit<
  sqs.QueueProps,
  | 'deadLetterQueue'
  | 'encryption'
  | 'encryptionMasterKey'
  | 'enforceSSL'
  | 'visibilityTimeout'
  | 'fifo'
  | 'contentBasedDeduplication'
  | 'deduplicationScope'
  | 'fifoThroughputLimit'
  | 'redriveAllowPolicy'
>;

/** Properties of {@link ResilientQueue}. */
export interface ResilientQueueProps {
  /**
   * The timeout of the function that consumes the queue. The visibility timeout is
   * derived from it.
   */
  readonly consumerTimeout: Duration;

  /**
   * The consumer's batching window (an SQS event source's `maxBatchingWindow`), which
   * Lambda adds to the time a received message stays in flight.
   *
   * @default Duration.seconds(0)
   */
  readonly consumerBatchingWindow?: Duration;

  /**
   * How long a received message stays hidden from other consumers. Must be at least 6 x
   * `consumerTimeout` + `consumerBatchingWindow` (AWS Lambda's rule for SQS sources: a
   * throttled or retried batch must not reappear while a copy is still being processed).
   *
   * @default - exactly 6 x consumerTimeout + consumerBatchingWindow
   */
  readonly visibilityTimeout?: Duration;

  /**
   * Receives after which a message moves to the dead-letter queue. At least 5 lets a
   * throttled Lambda poller's returned receives pass without losing the message to the DLQ.
   *
   * @default 5
   */
  readonly maxReceiveCount?: number;

  /**
   * Further queue settings (`queueName`, `retentionPeriod`, `removalPolicy`, ...). The DLQ
   * is named `<queueName>-dlq`; the removal policy applies to the DLQ and the key too.
   *
   * @default - a name derived from the construct path; 7 days of retention (a week of
   * consumer outage before a message expires unread, leaving it at least 7 of the DLQ's 14
   * days after); removed with the stack
   */
  readonly queueProps?: ResilientQueueOptions;

  /**
   * The customer managed key for both queues. A given key's policy must let the account's
   * IAM policies grant its use (the default key policy does).
   *
   * @default - a new key with yearly rotation
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * How old the oldest waiting message may get before the age alarm fires.
   *
   * @default Duration.minutes(15)
   */
  readonly maxMessageAge?: Duration;

  /**
   * Topic both alarms notify (alarm and OK).
   *
   * @default - alarms without actions, exposed in `alarms`; wire them with `AlarmTopic.notify`
   */
  readonly alarmTopic?: sns.ITopic;
}

/**
 * Tier 5: an SQS queue with its dead-letter queue, built so that no message is lost
 * silently and no message is retried forever.
 *
 * - SSE-KMS with a customer managed key shared by both queues; producers and consumers get
 *   the key through grants in their own policies (`grantSend`, `grantConsume`), so the key
 *   policy names no role. CloudWatch alarms need nothing from the key: SQS publishes its
 *   queue metrics itself, and alarm notifications use the alarm topic's own key;
 * - TLS only (a queue policy denies requests without `aws:SecureTransport`), on both queues;
 * - a redrive policy (`maxReceiveCount`, default 5) to a DLQ that keeps messages 14 days
 *   and accepts dead letters from this queue only (a redrive-allow policy naming it);
 * - a visibility timeout of at least 6 x the consumer's timeout, refused otherwise;
 * - alarms on any message in the DLQ and on the age of the oldest waiting message, each
 *   linking its runbook.
 *
 * The source queue needs a literal name: the DLQ's redrive-allow policy names the source
 * queue's ARN, and a reference to the queue itself would make the two depend on each other.
 */
export class ResilientQueue extends Construct {
  /**
   * An idempotency record lifetime that outlasts every copy of a message: a copy can sit
   * in the source queue and then the DLQ until the DLQ's retention runs out (a standard
   * queue keeps the original enqueue time in its DLQ), and a redrive then makes it a new
   * message with the source queue's full retention again. One day more covers a producer
   * that re-sends late. Records that expire sooner let a redriven copy be applied twice.
   */
  public static idempotencyLifetime(
    retention: Duration,
    deadLetterRetention = DEAD_LETTER_RETENTION,
  ): Duration {
    return Duration.seconds(
      retention.toSeconds() + deadLetterRetention.toSeconds() + IDEMPOTENCY_MARGIN.toSeconds(),
    );
  }

  /** The queue producers send to and the consumer reads. */
  public readonly queue: sqs.Queue;
  /** Where messages go after `maxReceiveCount` failed receives. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The key encrypting both queues. */
  public readonly encryptionKey: kms.IKey;
  /** The source queue's name (the `<queue>` argument of `npm run redrive`). */
  public readonly queueName: string;
  /** The resolved visibility timeout. */
  public readonly visibilityTimeout: Duration;
  /** The resolved consumer timeout. */
  public readonly consumerTimeout: Duration;
  /** The resolved maxReceiveCount. */
  public readonly maxReceiveCount: number;
  /** The source queue's retention. */
  public readonly retentionPeriod: Duration;
  /** Fires when any message is in the DLQ. */
  public readonly deadLettersAlarm: cloudwatch.Alarm;
  /** Fires when the oldest waiting message is older than `maxMessageAge`. */
  public readonly oldestMessageAlarm: cloudwatch.Alarm;
  /** Both alarms. */
  public readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: ResilientQueueProps) {
    super(scope, id);
    const options = props.queueProps ?? {};
    const batchingWindow = props.consumerBatchingWindow ?? Duration.seconds(0);
    const required = Duration.seconds(
      VISIBILITY_TIMEOUT_FACTOR * props.consumerTimeout.toSeconds() + batchingWindow.toSeconds(),
    );
    const visibilityTimeout = props.visibilityTimeout ?? required;
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    const retentionPeriod = options.retentionPeriod ?? Duration.days(7);
    const removalPolicy = options.removalPolicy ?? RemovalPolicy.DESTROY;
    const maxMessageAge = props.maxMessageAge ?? Duration.minutes(15);
    const queueName = options.queueName ?? Names.uniqueResourceName(this, { maxLength: 76, separator: '-' });
    this.validate(queueName, props.consumerTimeout, batchingWindow, visibilityTimeout, required);
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
      throw new Error(
        `ResilientQueue ${queueName}: maxReceiveCount must be a whole number from 1 to 1000, got ${maxReceiveCount}`,
      );
    }
    if (
      !Token.isUnresolved(retentionPeriod) &&
      retentionPeriod.toSeconds() >= DEAD_LETTER_RETENTION.toSeconds()
    ) {
      throw new Error(
        `ResilientQueue ${queueName}: retentionPeriod ${retentionPeriod.toHumanString()} must be shorter than the DLQ's ${DEAD_LETTER_RETENTION.toHumanString()}: ` +
          'a standard queue keeps the original enqueue time in its DLQ, so the message would expire there on arrival',
      );
    }
    this.queueName = queueName;
    this.visibilityTimeout = visibilityTimeout;
    this.consumerTimeout = props.consumerTimeout;
    this.maxReceiveCount = maxReceiveCount;
    this.retentionPeriod = retentionPeriod;

    this.encryptionKey =
      props.encryptionKey ??
      new kms.Key(this, 'Key', {
        description: `Encrypts the ${queueName} queue and its dead-letter queue`,
        enableKeyRotation: true,
        // The key serves only these queues: it goes (or stays) with them.
        removalPolicy,
      });
    const sourceArn = Stack.of(this).formatArn({ service: 'sqs', resource: queueName });
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      queueName: `${queueName}-dlq`,
      retentionPeriod: DEAD_LETTER_RETENTION,
      removalPolicy,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.encryptionKey,
      enforceSSL: true,
      redriveAllowPolicy: {
        redrivePermission: sqs.RedrivePermission.BY_QUEUE,
        sourceQueues: [sqs.Queue.fromQueueArn(this, 'Source', sourceArn)],
      },
    });
    acknowledge(
      this.deadLetterQueue.node.defaultChild!,
      ['Serverless-SQSRedrivePolicy'],
      'This is the dead-letter queue itself: a message that reaches it waits 14 days for an operator (its alarm fires on any message) and goes back with npm run redrive; a further DLQ would only hide it.',
    );
    this.queue = new sqs.Queue(this, 'Queue', {
      ...options,
      queueName,
      retentionPeriod,
      removalPolicy,
      visibilityTimeout,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.encryptionKey,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });

    this.deadLettersAlarm = runbookAlarm(this, 'DeadLetters', 'queue-dead-letters', {
      metric: this.metricDeadLetters(),
      threshold: 0,
      evaluationPeriods: 1,
      summary: `${queueName}: messages in its dead-letter queue ${queueName}-dlq (they failed ${maxReceiveCount} receives)`,
      // SQS stops publishing a queue's metrics after six hours without activity, messages
      // or not: silence must keep the alarm where it is, not turn it OK.
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });
    this.oldestMessageAlarm = runbookAlarm(this, 'OldestMessageAge', 'queue-message-age', {
      metric: this.metricOldestMessageAge(),
      threshold: maxMessageAge.toSeconds(),
      evaluationPeriods: 3,
      summary: `${queueName}: oldest message waiting longer than ${maxMessageAge.toHumanString()} for 3 minutes (consumer lag)`,
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });
    this.alarms = [this.deadLettersAlarm, this.oldestMessageAlarm];
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /** The idempotency record lifetime for this queue's consumer: {@link ResilientQueue.idempotencyLifetime}. */
  public get idempotencyLifetime(): Duration {
    return ResilientQueue.idempotencyLifetime(this.retentionPeriod);
  }

  /** Lets a principal send to the queue (and encrypt with its key). */
  public grantSend(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grantSendMessages(grantee);
  }

  /** Lets a principal receive, delete and change the visibility of messages (and decrypt them). */
  public grantConsume(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grantConsumeMessages(grantee);
  }

  /**
   * Lets an operator role run `npm run redrive` for this queue: start, list and cancel a
   * message move task from the DLQ back to the queue, which SQS performs with the caller's
   * permissions (receive and delete on the DLQ, send to the queue, the key for both).
   */
  public grantRedrive(grantee: iam.IGrantable): iam.Grant {
    const dlq = this.deadLetterQueue.queueArn;
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: [
        'sqs:StartMessageMoveTask',
        'sqs:ListMessageMoveTasks',
        'sqs:CancelMessageMoveTask',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
      ],
      resourceArns: [dlq],
    });
    this.queue.grant(grantee, 'sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl');
    this.encryptionKey.grantEncryptDecrypt(grantee);
    return grant;
  }

  /** Messages waiting in the DLQ (maximum per minute). */
  public metricDeadLetters(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      statistic: 'Maximum',
      period: Duration.minutes(1),
      ...props,
    });
  }

  /** Age in seconds of the oldest message waiting in the queue (maximum per minute). */
  public metricOldestMessageAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateAgeOfOldestMessage({
      statistic: 'Maximum',
      period: Duration.minutes(1),
      ...props,
    });
  }

  /** Messages waiting in the queue, not yet received (maximum per minute). */
  public metricBacklog(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateNumberOfMessagesVisible({
      statistic: 'Maximum',
      period: Duration.minutes(1),
      ...props,
    });
  }

  private validate(
    queueName: string,
    consumerTimeout: Duration,
    batchingWindow: Duration,
    visibilityTimeout: Duration,
    required: Duration,
  ): void {
    if (Token.isUnresolved(queueName)) {
      throw new Error(
        `ResilientQueue ${this.node.path}: queueName must be a literal: the DLQ's redrive-allow policy names the queue's ARN`,
      );
    }
    if (queueName.length > 76 || !/^[A-Za-z0-9_-]+$/.test(queueName)) {
      throw new Error(
        `ResilientQueue queueName "${queueName}" must be 1-76 letters, digits, - or _ (the DLQ adds "-dlq" within SQS's 80)`,
      );
    }
    if ([consumerTimeout, batchingWindow, visibilityTimeout].some((d) => Token.isUnresolved(d))) return;
    const window = batchingWindow.toSeconds() > 0 ? ` + batching window ${batchingWindow.toSeconds()} s` : '';
    if (visibilityTimeout.toSeconds() < required.toSeconds()) {
      throw new Error(
        `ResilientQueue ${queueName}: visibilityTimeout ${visibilityTimeout.toSeconds()} s is less than ` +
          `${VISIBILITY_TIMEOUT_FACTOR} x the consumer's timeout ${consumerTimeout.toSeconds()} s${window} = ${required.toSeconds()} s; ` +
          `raise visibilityTimeout to at least ${required.toSeconds()} s, or leave it unset to derive it`,
      );
    }
    if (visibilityTimeout.toSeconds() > MAX_VISIBILITY_TIMEOUT.toSeconds()) {
      throw new Error(
        `ResilientQueue ${queueName}: visibilityTimeout ${visibilityTimeout.toSeconds()} s (from the consumer's timeout ` +
          `${consumerTimeout.toSeconds()} s) exceeds SQS's 12-hour maximum; shorten the consumer's timeout`,
      );
    }
  }
}
