import { Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { IDEMPOTENCY_MARGIN, ResilientQueue } from '../../../lib/constructs/resilient-queue';
import { RESILIENCE_RULES } from '../../../lib/nag/resilience-checks';
import {
  IDEMPOTENCY_EXPIRY_VARIABLE,
  IDEMPOTENCY_TABLE_VARIABLE,
  LATE_RESEND_MARGIN_SECONDS,
  requiredLifetimeSeconds,
} from '../../../lib/nag/rules/idempotency-lifetime';
import { logicalId, resilienceFindings, resourcePath } from '../fixtures';

const RULE = RESILIENCE_RULES.idempotencyLifetime;
const DAY = 86_400;

interface Consumer {
  readonly fn: lambda.Function;
  readonly queue: sqs.Queue;
}

/**
 * A queue (7 days) with a DLQ (14 days), and a function consuming it with the given
 * environment. The function and queues satisfy the pack's other rules.
 */
function consumer(stack: Stack, environment: Record<string, string>, withDlq = true): Consumer {
  const dlq = withDlq
    ? new sqs.Queue(stack, 'Dlq', { enforceSSL: true, retentionPeriod: Duration.days(14) })
    : undefined;
  const queue = new sqs.Queue(stack, 'Queue', {
    enforceSSL: true,
    retentionPeriod: Duration.days(7),
    visibilityTimeout: Duration.seconds(180),
    deadLetterQueue: dlq ? { queue: dlq, maxReceiveCount: 5 } : undefined,
  });
  const fn = new lambda.Function(stack, 'Worker', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {};'),
    timeout: Duration.seconds(30),
    reservedConcurrentExecutions: 2,
    environment,
  });
  fn.addEventSource(new lambdaEventSources.SqsEventSource(queue, { reportBatchItemFailures: true }));
  return { fn, queue };
}

/** The project's lifetime for 7 days in the queue and 14 in the DLQ: 22 days. */
const PROJECT_LIFETIME = ResilientQueue.idempotencyLifetime(Duration.days(7), Duration.days(14)).toSeconds();

describe('IdempotencyLifetime: idempotency records outlive every copy of a message', () => {
  test('a consumer keeping records for Powertools’ one hour is reported, naming its queue', () => {
    // GIVEN records that expire after 3600 s, for a queue that can hand a message back after 22 days
    let c!: Consumer;
    const findings = resilienceFindings((stack) => {
      c = consumer(stack, {
        [IDEMPOTENCY_TABLE_VARIABLE]: 'idempotency',
        [IDEMPOTENCY_EXPIRY_VARIABLE]: '3600',
      });
    });
    // THEN the function is reported for that queue
    expect(findings).toEqual([`${RULE}[${logicalId(c.queue)}:expires-too-soon] at ${resourcePath(c.fn)}`]);
  });

  test('a lifetime of ResilientQueue.idempotencyLifetime (retention + DLQ retention + 1 day) passes', () => {
    const findings = resilienceFindings((stack) => {
      consumer(stack, { [IDEMPOTENCY_EXPIRY_VARIABLE]: String(PROJECT_LIFETIME) });
    });
    expect(findings).toEqual([]);
  });

  test('one second less than that is reported: the bound is exact', () => {
    let c!: Consumer;
    const findings = resilienceFindings((stack) => {
      c = consumer(stack, { [IDEMPOTENCY_EXPIRY_VARIABLE]: String(PROJECT_LIFETIME - 1) });
    });
    expect(findings).toEqual([`${RULE}[${logicalId(c.queue)}:expires-too-soon] at ${resourcePath(c.fn)}`]);
  });

  test('without a redrive policy no redrive can bring a message back: retention + 1 day is enough', () => {
    const findings = resilienceFindings((stack) => {
      const c = consumer(stack, { [IDEMPOTENCY_EXPIRY_VARIABLE]: String(8 * DAY) }, false);
      // This fixture's queue lacks a DLQ on purpose; only that is reported.
      return c;
    });
    expect(findings).toEqual([
      expect.stringMatching(/-QueueRedrive\[no-redrive-policy\] at Fixture\/Queue\//),
    ]);
  });

  test('a consumer that names an idempotency table but no lifetime is reported (Powertools keeps records one hour)', () => {
    let c!: Consumer;
    const findings = resilienceFindings((stack) => {
      c = consumer(stack, { [IDEMPOTENCY_TABLE_VARIABLE]: 'idempotency' });
    });
    expect(findings).toEqual([`${RULE}[${logicalId(c.queue)}:no-expiry] at ${resourcePath(c.fn)}`]);
  });

  test('a lifetime that is not a whole number of seconds is reported', () => {
    let c!: Consumer;
    const findings = resilienceFindings((stack) => {
      c = consumer(stack, { [IDEMPOTENCY_EXPIRY_VARIABLE]: '22 days' });
    });
    expect(findings).toEqual([`${RULE}[${logicalId(c.queue)}:expiry-unreadable] at ${resourcePath(c.fn)}`]);
  });

  test('a consumer that keeps no idempotency records is not checked', () => {
    expect(resilienceFindings((stack) => consumer(stack, { FULFILMENT_URL: 'https://example.com' }))).toEqual(
      [],
    );
  });

  test.each([
    [7 * DAY, 14 * DAY],
    [DAY, 4 * DAY],
    [60, 0],
  ])(
    'the rule requires what ResilientQueue.idempotencyLifetime gives (retention %i s, DLQ %i s)',
    (retention, deadLetterRetention) => {
      expect(requiredLifetimeSeconds(retention, deadLetterRetention)).toBe(
        ResilientQueue.idempotencyLifetime(
          Duration.seconds(retention),
          Duration.seconds(deadLetterRetention),
        ).toSeconds(),
      );
    },
  );

  test("the rule's late re-send margin is ResilientQueue's IDEMPOTENCY_MARGIN", () => {
    expect(LATE_RESEND_MARGIN_SECONDS).toBe(IDEMPOTENCY_MARGIN.toSeconds());
  });
});
