import { join } from 'node:path';
import { Duration, Token, Tokenization } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import {
  DEFAULT_INVENTORY_NAMESPACE,
  RECONCILER_ENV,
  RECONCILER_METRICS,
  RECONCILER_SERVICE,
  SERVICE_DIMENSION,
  reconcilerMinimumTimeoutMs,
} from '../../lambda/inventory-reconciler/contract';
import { acknowledge } from '../compliance';
import type { FleetDatabase } from './fleet';
import { ResilientQueue } from './resilient-queue';
import { runbookAlarm } from './runbook-alarm';
import { ScheduledWorkerProps, scheduleWorker, validateScheduleInterval } from './scheduled-worker';
import { REPO_ROOT, RUNTIME_PROVIDED_MODULES, WorkerFunction, WorkerVpcPlacement } from './worker-function';

/**
 * The certificates a Lambda Node.js runtime ships for Amazon's own services, RDS's
 * certificate authorities among them. Since Node.js 20 the runtime no longer loads them
 * by default; a function that connects to an Aurora cluster directly (not through RDS
 * Proxy, whose certificate chains to a public CA) points `NODE_EXTRA_CA_CERTS` at them.
 */
export const LAMBDA_AMAZON_CA_BUNDLE = '/var/runtime/ca-cert.pem';

/**
 * What the reconciler's bundle leaves out: the runtime's SDK clients (it uses none),
 * `pg-native` (pg loads it only when asked to; it is not installed), and
 * `@aws-sdk/rds-signer`: service/db/connection.ts requires the SDK's Signer only when it is
 * given no signer, and the handler gives it lambda/shared/rds-auth-token.ts, so the
 * ~180 KB of credential providers the Signer pulls in are never loaded (docs/workers.md).
 */
export const RECONCILER_EXTERNAL_MODULES = [...RUNTIME_PROVIDED_MODULES, 'pg-native', '@aws-sdk/rds-signer'];

/** Properties of {@link InventoryReconciler}. */
export interface InventoryReconcilerProps extends ScheduledWorkerProps {
  /**
   * The database: the reconciler logs in as its application user with IAM auth, through
   * the proxy where there is one, else to the cluster (`Database` has all of it).
   */
  readonly database: FleetDatabase;

  /**
   * The `payment-retry` queue. The default hold time is derived from it, and a shorter
   * hold than its retention is refused.
   */
  readonly paymentRetryQueue: ResilientQueue;

  /** Where the function runs: the database is only reachable from inside the VPC. */
  readonly vpc: WorkerVpcPlacement;

  /**
   * How long a PENDING_PAYMENT order may wait untouched (since it was deferred, or since
   * the payment-retry worker last settled it) before it is cancelled and its reservation
   * released. At least the payment-retry queue's retention: a shorter hold would cancel
   * orders whose message is merely waiting behind a worker outage.
   *
   * @default ResilientQueue.idempotencyLifetime(paymentRetryQueue.retentionPeriod) - 22
   * days with the shipped queues: no copy of the order's PaymentDeferred message can
   * still exist by then (queue, then DLQ until 14 days after it was sent, then a redrive
   * with the queue's 7 days again, and a day's margin)
   */
  readonly holdTime?: Duration;

  /**
   * How often the reconciler runs; also the period of its alarms.
   *
   * @default Duration.minutes(15) - a release is due only after days, so minutes late
   * costs nothing; drift is reported within 15 minutes, and the recount, which reads
   * every order line, runs 96 times a day rather than 1 440
   */
  readonly interval?: Duration;

  /**
   * Whether the schedule runs. The function, its role and its network path exist either
   * way, and it can be invoked by hand. A run finds a read-only database (a global
   * secondary, a demoted primary) and skips, so the shipped stacks schedule it in both
   * regions: a promoted standby starts reconciling with no step in the failover.
   *
   * @default true
   */
  readonly enabled?: boolean;

  /**
   * The function's timeout.
   *
   * @default Duration.seconds(90) - a connection, batches of cancellations, and the drift
   * statement with its reserve (at least `reconcilerMinimumTimeoutMs()`, 75 s)
   */
  readonly timeout?: Duration;

  /**
   * CloudWatch namespace of the reconciler's metrics.
   *
   * @default 'ResilientShop/Inventory'
   */
  readonly namespace?: string;
}

/**
 * The scheduled inventory reconciler (lambda/inventory-reconciler): releases the
 * reservations of PENDING_PAYMENT orders that never completed within the hold time
 * (their payment-retry message died in the DLQ, or the gateway never took the charge),
 * cancelling each with an `OrderCancelled` event through the outbox, and reports inventory
 * drift (per SKU, available + held + sold against its last count) as `InventoryDrift`.
 *
 * - A `WorkerFunction` in the VPC with the workers' security group, logging in to the
 *   database as its application user with IAM auth (`grantConnect`), through RDS Proxy;
 *   where there is no proxy (the standby region) to the cluster, trusting the RDS
 *   certificate authorities the runtime ships ({@link LAMBDA_AMAZON_CA_BUNDLE}).
 * - Reserved concurrency 1: one run at a time by design, a stuck run cannot pile up more.
 *   Two at once would still be safe (each cancellation is fenced on its order's row).
 * - An EventBridge schedule, every `interval`; a tick that waits longer than one interval
 *   (throttled behind a slow run) is dropped, the next one does the same work.
 * - Metrics by EMF (Powertools Metrics): the function writes them to its log, CloudWatch
 *   extracts them. No `cloudwatch:PutMetricData` permission, no call to the monitoring
 *   endpoint from inside the VPC (the lean profile has no interface endpoints), and no
 *   API call that could fail a run after its cancellations committed.
 * - Alarms: drift not 0 ({@link driftAlarm}, docs/runbooks/inventory-drift.md); a failed
 *   run twice in a row, or no run ({@link failureAlarm}, inventory-reconciler-failed.md).
 */
export class InventoryReconciler extends Construct {
  /** The function, its role, log group and key. */
  public readonly worker: WorkerFunction;
  /** The schedule. */
  public readonly rule: events.Rule;
  /** The resolved hold time. */
  public readonly holdTime: Duration;
  /** The resolved interval. */
  public readonly interval: Duration;
  /** Fires when a run reports inventory drift. */
  public readonly driftAlarm: cloudwatch.Alarm;
  /** Fires when two runs in a row failed, or no run reported (while scheduled). */
  public readonly failureAlarm: cloudwatch.Alarm;
  /** Every alarm. */
  public readonly alarms: cloudwatch.Alarm[];

  private readonly namespace: string;

  constructor(scope: Construct, id: string, props: InventoryReconcilerProps) {
    super(scope, id);
    const queue = props.paymentRetryQueue;
    const holdTime = props.holdTime ?? ResilientQueue.idempotencyLifetime(queue.retentionPeriod);
    const interval = props.interval ?? Duration.minutes(15);
    const timeout = props.timeout ?? Duration.seconds(90);
    const enabled = props.enabled ?? true;
    this.namespace = props.namespace ?? DEFAULT_INVENTORY_NAMESPACE;
    this.validate(holdTime, interval, timeout, queue);
    this.holdTime = holdTime;
    this.interval = interval;

    const database = props.database;
    this.worker = new WorkerFunction(this, 'Worker', {
      entry: join(REPO_ROOT, 'lambda', 'inventory-reconciler', 'index.ts'),
      serviceName: RECONCILER_SERVICE,
      description: 'Releases the reservations of orders unpaid past the hold time; reports inventory drift',
      timeout,
      memorySize: 256,
      // One run at a time: a run that outlasts the interval delays the next tick instead
      // of adding a second connection and a second recount.
      reservedConcurrency: 1,
      vpc: props.vpc,
      removalPolicy: props.removalPolicy,
      environment: {
        [RECONCILER_ENV.holdMs]: String(holdTime.toMilliseconds()),
        POWERTOOLS_METRICS_NAMESPACE: this.namespace,
        DB_IAM_AUTH: 'true',
        DB_HOST: database.endpoint,
        // The cluster's port may be a token that resolves to a number; Lambda wants a string.
        DB_PORT: Tokenization.stringifyNumber(database.connectionPort),
        DB_USER: database.applicationUser,
        ...(database.proxy ? {} : { NODE_EXTRA_CA_CERTS: LAMBDA_AMAZON_CA_BUNDLE }),
      },
      bundling: { externalModules: RECONCILER_EXTERNAL_MODULES },
    });
    database.grantConnect(this.worker, database.applicationUser);
    // A tick older than one interval is redundant with the next (Lambda keeps an
    // asynchronous event 6 hours at most); a failed run is retried within that time, every
    // step being safe to repeat.
    this.worker.function.configureAsyncInvoke({
      maxEventAge: Duration.seconds(Math.min(interval.toSeconds(), 6 * 3600)),
      retryAttempts: 2,
    });
    acknowledge(
      this.worker.function.node.findChild('EventInvokeConfig').node.defaultChild!,
      ['Serverless-LambdaAsyncFailureDestination'],
      'The asynchronous events are empty schedule ticks: one that exhausts its retries leaves nothing to replay, its run published RunFailed 1 for the failure alarm, and the next tick does the same work.',
    );
    this.rule = scheduleWorker(this, this.worker, {
      description: 'Runs the inventory reconciler',
      interval,
      maxEventAge: interval,
      enabled,
      noLambdaDlqReason:
        'The schedule invokes the reconciler with an empty tick that holds nothing to replay; a failed run publishes RunFailed 1 (or nothing, which the failure alarm treats as breaching), and the next tick repeats the same work.',
      noEventBusDlqReason:
        'A missed tick needs no replay: the next tick releases the same orders and recounts the same ledger, and runs that never happen leave RunFailed without data, which the failure alarm treats as breaching.',
    });

    this.driftAlarm = runbookAlarm(this, 'Drift', 'inventory-drift', {
      metric: this.metric(RECONCILER_METRICS.drift),
      threshold: 0,
      evaluationPeriods: 1,
      summary: 'Inventory drift: stock available + held + sold differs from the last count for some SKUs',
      // A run can miss a period; silence must not flip the alarm to OK and back. A
      // reconciler that stops running is the failure alarm's to report.
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });
    this.failureAlarm = runbookAlarm(this, 'RunFailed', 'inventory-reconciler-failed', {
      metric: this.metric(RECONCILER_METRICS.runFailed),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 2,
      summary:
        'The inventory reconciler failed twice in a row, or did not run: reservations are not released',
      // Every run publishes RunFailed (0 or 1): no data for two periods means no run. An
      // unscheduled reconciler (the standby) reports nothing, and that is expected.
      treatMissingData: enabled
        ? cloudwatch.TreatMissingData.BREACHING
        : cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarms = [this.driftAlarm, this.failureAlarm];
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /** `InventoryDrift`: units the ledger cannot account for (maximum per interval). */
  public metricDrift(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(RECONCILER_METRICS.drift, props);
  }

  /** `OrdersCancelled`: orders whose reservation a run released (sum per interval). */
  public metricOrdersCancelled(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(RECONCILER_METRICS.ordersCancelled, { statistic: 'Sum', ...props });
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.namespace,
      metricName,
      dimensionsMap: { [SERVICE_DIMENSION]: RECONCILER_SERVICE },
      statistic: 'Maximum',
      period: this.interval,
      ...props,
    });
  }

  private validate(holdTime: Duration, interval: Duration, timeout: Duration, queue: ResilientQueue): void {
    validateScheduleInterval('InventoryReconciler', interval);
    const minimumMs = reconcilerMinimumTimeoutMs();
    if (timeout.toMilliseconds() < minimumMs || timeout.toSeconds() > Math.min(interval.toSeconds(), 900)) {
      throw new Error(
        `InventoryReconciler timeout ${timeout.toSeconds()} s must be from ${minimumMs / 1000} s (a connection, ` +
          `a batch, the last cancellation and the drift statement) to the interval (${interval.toSeconds()} s) ` +
          "and Lambda's 900 s",
      );
    }
    if (
      !Token.isUnresolved(queue.retentionPeriod) &&
      holdTime.toSeconds() < queue.retentionPeriod.toSeconds()
    ) {
      throw new Error(
        `InventoryReconciler holdTime ${holdTime.toHumanString()} is shorter than the ${queue.queueName} queue's ` +
          `retention ${queue.retentionPeriod.toHumanString()}: orders whose PaymentDeferred message is still waiting ` +
          'in the queue (a worker outage) would be cancelled; raise holdTime, or leave it unset to derive it from the queue',
      );
    }
  }
}
