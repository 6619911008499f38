import { Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { ResilientQueue } from '../../../lib/constructs/resilient-queue';
import { RESILIENCE_RULES } from '../../../lib/nag/resilience-checks';
import { logicalId, resilienceFindings, resourcePath } from '../fixtures';

const RULE = RESILIENCE_RULES.queueRedrive;

/** A TLS-only queue (the other packs' concern, kept out of the way). */
function queue(stack: Stack, id: string, props: sqs.QueueProps = {}): sqs.Queue {
  return new sqs.Queue(stack, id, { enforceSSL: true, ...props });
}

describe('QueueRedrive: every queue that is not a DLQ redrives to one that outlives it', () => {
  test('a queue with no redrive policy, used as nobody’s DLQ, is reported', () => {
    // GIVEN a queue on its own
    let orders!: sqs.Queue;
    const findings = resilienceFindings((stack) => {
      orders = queue(stack, 'Orders');
    });
    // THEN it is reported for its missing redrive policy
    expect(findings).toEqual([`${RULE}[no-redrive-policy] at ${resourcePath(orders)}`]);
  });

  test('a queue redriving to a DLQ that keeps messages longer passes, and the DLQ needs no DLQ', () => {
    const findings = resilienceFindings((stack) => {
      const dlq = queue(stack, 'OrdersDlq', { retentionPeriod: Duration.days(14) });
      queue(stack, 'Orders', { deadLetterQueue: { queue: dlq, maxReceiveCount: 5 } });
    });
    expect(findings).toEqual([]);
  });

  test('a standard queue whose DLQ keeps messages no longer than the queue is reported, naming the DLQ', () => {
    // GIVEN both at SQS's default 4 days: a message 4 days old expires in the DLQ on arrival
    let orders!: sqs.Queue;
    let dlq!: sqs.Queue;
    const findings = resilienceFindings((stack) => {
      dlq = queue(stack, 'OrdersDlq');
      orders = queue(stack, 'Orders', { deadLetterQueue: { queue: dlq, maxReceiveCount: 5 } });
    });
    expect(findings).toEqual([`${RULE}[${logicalId(dlq)}:dlq-retention] at ${resourcePath(orders)}`]);
  });

  test("a queue that is a function's asynchronous DLQ is a DLQ, not a queue missing one", () => {
    const findings = resilienceFindings((stack) => {
      new lambda.Function(stack, 'Worker', {
        runtime: lambda.Runtime.NODEJS_22_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => {};'),
        timeout: Duration.seconds(10),
        reservedConcurrentExecutions: 2,
        deadLetterQueue: queue(stack, 'WorkerDlq'),
      });
    });
    expect(findings).toEqual([]);
  });

  test('a DLQ whose redrive-allow policy admits named source queues only (byQueue) is a DLQ', () => {
    // GIVEN a DLQ for a source queue of another stack, so no redrive policy here names it
    const findings = resilienceFindings((stack) => {
      queue(stack, 'SharedDlq', {
        retentionPeriod: Duration.days(14),
        redriveAllowPolicy: {
          redrivePermission: sqs.RedrivePermission.BY_QUEUE,
          sourceQueues: [
            sqs.Queue.fromQueueArn(stack, 'Remote', 'arn:aws:sqs:us-east-1:111111111111:remote'),
          ],
        },
      });
    });
    expect(findings).toEqual([]);
  });

  test("the project's ResilientQueue passes (7 days in the queue, 14 in the DLQ)", () => {
    const findings = resilienceFindings((stack) => {
      new ResilientQueue(stack, 'OrderEvents', {
        consumerTimeout: Duration.seconds(30),
        queueProps: { queueName: 'order-events' },
        alarmTopic: new sns.Topic(stack, 'Alarms'),
      });
    });
    expect(findings).toEqual([]);
  });
});
