import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';
import type { WorkerFunction } from './worker-function';

/** Properties every scheduled worker construct takes (`InventoryReconciler`, `CertificateProbe`). */
export interface ScheduledWorkerProps {
  /**
   * Topic every alarm notifies (alarm and OK).
   *
   * @default - alarms without actions, exposed in `alarms`; wire them with `AlarmTopic.notify`
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * What happens to the log group and its key when the stack is deleted.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Checks the interval of a scheduled worker whose failure alarm evaluates two periods of
 * that interval: whole minutes (an EventBridge rate), from 1 minute to 12 hours (CloudWatch
 * evaluates at most one day).
 *
 * @param owner the construct's class, the first word of the error
 */
export function validateScheduleInterval(owner: string, interval: Duration): void {
  if (interval.toSeconds() < 60 || interval.toSeconds() > 12 * 3600 || interval.toSeconds() % 60 !== 0) {
    throw new Error(
      `${owner} interval ${interval.toHumanString()} must be whole minutes from 1 minute to 12 hours`,
    );
  }
}

/** Options of {@link scheduleWorker}. */
export interface ScheduleWorkerOptions {
  /** The rule's description. */
  readonly description: string;
  /** How often the rule invokes the function. */
  readonly interval: Duration;
  /**
   * How long EventBridge keeps retrying a tick it could not deliver (2 retries).
   */
  readonly maxEventAge: Duration;
  /**
   * Whether the rule runs.
   *
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * Why the function needs no dead-letter queue (NIST.800.53.R5-LambdaDLQ,
   * Serverless-LambdaDLQ): what a failed run leaves for its alarm, and that a tick holds
   * nothing to replay.
   */
  readonly noLambdaDlqReason: string;
  /** Why the rule's target needs no dead-letter queue (Serverless-EventBusDLQ): what a missed tick costs. */
  readonly noEventBusDlqReason: string;
}

/**
 * Invokes a worker on an EventBridge schedule (`Schedule`, under `scope`) with an empty
 * tick, and acknowledges the dead-letter-queue findings of the function and the rule
 * with the reasons given: a scheduled run reads its work from where it lives, so a lost
 * tick is redone by the next one, and the worker's failure alarm (missing data breaching)
 * reports runs that fail or never happen.
 */
export function scheduleWorker(
  scope: Construct,
  worker: WorkerFunction,
  options: ScheduleWorkerOptions,
): events.Rule {
  acknowledge(
    worker.function.node.defaultChild!,
    ['NIST.800.53.R5-LambdaDLQ', 'Serverless-LambdaDLQ'],
    options.noLambdaDlqReason,
  );
  const rule = new events.Rule(scope, 'Schedule', {
    description: options.description,
    schedule: events.Schedule.rate(options.interval),
    // Only when given: CDK's construct metadata (CDKMetadata) records which props were passed.
    ...(options.enabled === undefined ? {} : { enabled: options.enabled }),
    targets: [
      new targets.LambdaFunction(worker.function, { retryAttempts: 2, maxEventAge: options.maxEventAge }),
    ],
  });
  acknowledge(rule.node.defaultChild!, ['Serverless-EventBusDLQ'], options.noEventBusDlqReason);
  return rule;
}
