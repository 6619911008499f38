import { join } from 'node:path';
import { Duration, RemovalPolicy, Token, Tokenization } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  GATEWAY_REJECTED_METRIC,
  PAYMENT_RETRY_BATCH_SIZE,
  PAYMENT_RETRY_METRICS_NAMESPACE,
  PAYMENT_RETRY_SERVICE,
  recordWorstCaseMs,
} from '../../lambda/payment-retry/contract';
import type { FleetDatabase, PaymentGateway } from './fleet';
import { ResilientQueue } from './resilient-queue';
import { runbookAlarm } from './runbook-alarm';
import { REPO_ROOT, RUNTIME_PROVIDED_MODULES, WorkerFunction, WorkerVpcPlacement } from './worker-function';

/**
 * What the worker's bundle leaves out: the SDK clients the runtime provides
 * ({@link RUNTIME_PROVIDED_MODULES}); @aws-sdk/rds-signer, because the worker signs its IAM
 * tokens itself (lambda/shared/rds-auth-token.ts) and the service's pool then never
 * requires it (about 210 KB of credential providers it would bring); and pg-native, pg's
 * optional native binding, which pg requires only when asked for it.
 */
export const PAYMENT_RETRY_EXTERNAL_MODULES = [
  ...RUNTIME_PROVIDED_MODULES,
  '@aws-sdk/rds-signer',
  'pg-native',
];

/** The worker's timeout unless told otherwise; its queue's consumerTimeout must be at least this. */
export const PAYMENT_RETRY_TIMEOUT = Duration.seconds(60);

/**
 * The Amazon CA certificates the Lambda Node.js runtimes (20 and later) ship but do not
 * load unless `NODE_EXTRA_CA_CERTS` names them; the RDS certificate authorities are among
 * them ("CA certificate loading", AWS Lambda Developer Guide:
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html#nodejs-certificate-loading).
 */
export const LAMBDA_RUNTIME_CA_CERTIFICATES = '/var/runtime/ca-cert.pem';

/** Properties of {@link PaymentRetryWorker}. */
export interface PaymentRetryWorkerProps {
  /** The `payment-retry` queue (its visibility timeout must fit this worker's timeout). */
  readonly queue: ResilientQueue;

  /**
   * The idempotency table (partition key `id`, TTL attribute `expiration`): the region's
   * own table, or in the standby region the replica of the primary's global table.
   */
  readonly idempotencyTable: dynamodb.ITable;

  /**
   * The database the checkout service uses (`Database` satisfies it). The worker logs in as
   * its application user with IAM auth: through RDS Proxy where there is one, otherwise
   * (the standby) to the cluster, trusting the RDS CAs of the Lambda runtime.
   */
  readonly database: FleetDatabase;

  /** Where the function runs: the VPC and the workers' security group, which reaches the proxy (or the cluster). */
  readonly vpc: WorkerVpcPlacement;

  /**
   * The real payment gateway: its https URL and the secret whose SecretString is its API
   * key (read at the first charge, and again every 5 minutes). Required unless `sandbox`.
   *
   * @default - none: only valid with `sandbox`
   */
  readonly paymentGateway?: PaymentGateway;

  /**
   * Charges through the service's fake gateway, run inside the function (it approves
   * every charge whose token is not `tok_decline`), as the sandbox fleet does. NOT FOR
   * PRODUCTION.
   *
   * @default false
   */
  readonly sandbox?: boolean;

  /**
   * The function's timeout. At least the longest a record can take (the API key, a
   * connection, the order's row lock, a charge with every retry, the settling statement:
   * `recordWorstCaseMs()` of lambda/payment-retry/contract.ts, 39 s), and at most the
   * queue's consumerTimeout (its visibility timeout is 6 x that).
   *
   * @default PAYMENT_RETRY_TIMEOUT (60 s)
   */
  readonly timeout?: Duration;

  /**
   * Reserved concurrency: a bulkhead in front of the database and the gateway. Each
   * invocation works up to 10 records at once, each on its own database connection with
   * one gateway call in flight, so the worker never holds more than 10 x this many
   * connections or calls.
   *
   * @default 2 - at most 20 database connections through the proxy and 20 charges in
   * flight, whatever the backlog: about 40 deferred orders a second at a 0.5 s gateway,
   * a backlog of 10,000 in about 5 minutes, while the gateway recovering from the outage
   * that deferred them serves new checkouts first. 2 is also the smallest maximum
   * concurrency an SQS event source accepts.
   */
  readonly reservedConcurrency?: number;

  /**
   * Topic the worker's alarms notify (alarm and OK).
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
 * The `payment-retry` worker (lambda/payment-retry): the consumer of the queue the
 * checkout defers orders to. For each `PaymentDeferred` message it charges the
 * PENDING_PAYMENT order through the service's own payment client (order id as the
 * gateway's idempotency key; timeout, retries with full jitter, circuit breaker), then
 * confirms it, or on a decline releases its reservation, in one fenced statement with its
 * event in the service's outbox; an order no longer PENDING_PAYMENT is left alone.
 * Failures are batch item failures, retried by SQS and dead-lettered after
 * maxReceiveCount; each order is worked once, keyed on its `orderId` in the idempotency
 * table for the queue's {@link ResilientQueue.idempotencyLifetime}.
 *
 * Its role may: consume the queue; get, put, update and delete idempotency records; connect
 * to the database as the application user with IAM auth; read the gateway's API key
 * secret. It runs in the VPC with the workers' security group.
 *
 * Alarms, each linking its runbook: invocations failing for 15 minutes, any throttle, and
 * any charge the gateway refused (`PaymentRequestsRejected`: a bad API key). The queue's
 * own alarms (dead letters, message age) belong to the {@link ResilientQueue}.
 */
export class PaymentRetryWorker extends Construct {
  /** The function and its role, log group and key. */
  public readonly worker: WorkerFunction;
  /** Invocations failed (init errors, timeouts, whole batches failed) in each of 3 periods of 5 minutes. */
  public readonly errorsAlarm: cloudwatch.Alarm;
  /** Any invocation throttled in 5 minutes. */
  public readonly throttlesAlarm: cloudwatch.Alarm;
  /** Any charge the gateway refused as a request (401/403/400) in 5 minutes. */
  public readonly gatewayRejectedAlarm: cloudwatch.Alarm;
  /** Every alarm of the worker. */
  public readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: PaymentRetryWorkerProps) {
    super(scope, id);
    const timeout = props.timeout ?? PAYMENT_RETRY_TIMEOUT;
    const sandbox = props.sandbox ?? false;
    const gateway = props.paymentGateway;
    if (!sandbox && !gateway) {
      throw new Error(
        'PaymentRetryWorker needs paymentGateway unless sandbox is true (the sandbox charges through the fake gateway)',
      );
    }
    if (sandbox && gateway) {
      throw new Error(
        'PaymentRetryWorker sandbox runs the fake gateway: give either sandbox or paymentGateway, not both',
      );
    }
    if (gateway && !Token.isUnresolved(gateway.url) && !/^https:\/\/[^/\s]+/.test(gateway.url)) {
      throw new Error(
        `PaymentRetryWorker paymentGateway.url must be an https:// URL (the API key travels with every charge), got "${gateway.url}"`,
      );
    }
    const worstCaseSeconds = Math.ceil(recordWorstCaseMs() / 1000);
    if (!Token.isUnresolved(timeout) && timeout.toSeconds() <= worstCaseSeconds) {
      throw new Error(
        `PaymentRetryWorker timeout ${timeout.toSeconds()} s must be longer than the ${worstCaseSeconds} s one record can take ` +
          '(API key, connection, row lock, a charge with every retry, the settling statement: lambda/payment-retry/contract.ts)',
      );
    }

    const database = props.database;
    this.worker = new WorkerFunction(this, 'Worker', {
      entry: join(REPO_ROOT, 'lambda', 'payment-retry', 'index.ts'),
      serviceName: PAYMENT_RETRY_SERVICE,
      description:
        'Charges orders the checkout deferred; confirms them, or releases their stock on a decline',
      timeout,
      memorySize: 256,
      reservedConcurrency: props.reservedConcurrency ?? 2,
      vpc: props.vpc,
      removalPolicy: props.removalPolicy,
      bundling: { externalModules: PAYMENT_RETRY_EXTERNAL_MODULES },
      environment: {
        POWERTOOLS_METRICS_NAMESPACE: PAYMENT_RETRY_METRICS_NAMESPACE,
        IDEMPOTENCY_TABLE_NAME: props.idempotencyTable.tableName,
        IDEMPOTENCY_EXPIRES_AFTER_SECONDS: String(props.queue.idempotencyLifetime.toSeconds()),
        DB_HOST: database.endpoint,
        DB_PORT: Tokenization.stringifyNumber(database.connectionPort),
        DB_USER: database.applicationUser,
        // RDS Proxy presents a certificate from a public CA; the cluster itself (no proxy:
        // the standby) one from the RDS CAs, which Node.js trusts only when told to.
        ...(database.proxy === undefined ? { NODE_EXTRA_CA_CERTS: LAMBDA_RUNTIME_CA_CERTIFICATES } : {}),
        ...(gateway
          ? {
              PAYMENT_URL: gateway.url,
              PAYMENT_API_KEY_SECRET_ID:
                gateway.apiKeySecret.secretFullArn ?? gateway.apiKeySecret.secretName,
            }
          : { PAYMENT_SANDBOX: 'true' }),
      },
    });

    props.idempotencyTable.grant(
      this.worker,
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
    );
    database.grantConnect(this.worker, database.applicationUser);
    gateway?.apiKeySecret.grantRead(this.worker);
    this.worker.consume(props.queue, { batchSize: PAYMENT_RETRY_BATCH_SIZE });

    const fn = this.worker.function;
    this.errorsAlarm = runbookAlarm(this, 'Errors', 'payment-retry-errors', {
      metric: fn.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }),
      threshold: 0,
      evaluationPeriods: 3,
      summary: `${PAYMENT_RETRY_SERVICE} worker: invocations failing in each of 15 minutes (init error, timeout, or every record of a batch failed)`,
    });
    this.throttlesAlarm = runbookAlarm(this, 'Throttles', 'payment-retry-throttles', {
      metric: fn.metricThrottles({ statistic: 'Sum', period: Duration.minutes(5) }),
      threshold: 0,
      evaluationPeriods: 1,
      summary: `${PAYMENT_RETRY_SERVICE} worker: invocations throttled (each one counts a receive toward the dead-letter queue)`,
    });
    this.gatewayRejectedAlarm = runbookAlarm(this, 'GatewayRejected', 'payment-retry-gateway-rejected', {
      metric: new cloudwatch.Metric({
        namespace: PAYMENT_RETRY_METRICS_NAMESPACE,
        metricName: GATEWAY_REJECTED_METRIC,
        dimensionsMap: { service: PAYMENT_RETRY_SERVICE },
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      threshold: 0,
      evaluationPeriods: 1,
      summary: `${PAYMENT_RETRY_SERVICE} worker: the payment gateway refused charges as requests (401/403/400: its API key)`,
    });
    this.alarms = [this.errorsAlarm, this.throttlesAlarm, this.gatewayRejectedAlarm];
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }
}
