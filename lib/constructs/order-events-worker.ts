import { join } from 'node:path';
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { ResilientQueue } from './resilient-queue';
import { REPO_ROOT, WorkerFunction, WorkerVpcPlacement } from './worker-function';

/** The worker's timeout unless told otherwise; its queue's consumerTimeout must match. */
export const ORDER_EVENTS_TIMEOUT = Duration.seconds(30);

/** Properties of {@link OrderEventsWorker}. */
export interface OrderEventsWorkerProps {
  /** The `order-events` queue (its visibility timeout must fit this worker's timeout). */
  readonly queue: ResilientQueue;

  /**
   * The idempotency table (partition key `id`, TTL attribute `expiration`): the region's
   * own table, or in the standby region the replica of the primary's global table.
   */
  readonly idempotencyTable: dynamodb.ITable;

  /**
   * HTTPS endpoint each event is POSTed to (with the event id as `Idempotency-Key`).
   *
   * @default - no endpoint: each event is applied as one structured log record
   */
  readonly fulfilmentUrl?: string;

  /**
   * How long one fulfilment request may take, connect to last byte.
   *
   * @default Duration.seconds(5)
   */
  readonly fulfilmentTimeout?: Duration;

  /**
   * The function's timeout.
   *
   * @default ORDER_EVENTS_TIMEOUT (30 s) - records of a batch run in parallel, so a batch
   * takes about one fulfilment timeout at worst
   */
  readonly timeout?: Duration;

  /**
   * Reserved concurrency: at most this many batches at once, whatever the backlog.
   *
   * @default 5 - about 10 events per second per 1 s fulfilment call, per slot
   */
  readonly reservedConcurrency?: number;

  /**
   * Run inside the VPC.
   *
   * @default - outside any VPC
   */
  readonly vpc?: WorkerVpcPlacement;

  /**
   * What happens to the log group and its key when the stack is deleted.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The `order-events` worker (lambda/order-events): consumes the queue with batch item
 * failures and applies each event once, keyed on its `eventId` in the idempotency table
 * for the queue's {@link ResilientQueue.idempotencyLifetime}. Its role may read and write
 * idempotency records (get, put, update, delete: what Powertools' DynamoDB layer calls)
 * and consume the queue, nothing more.
 */
export class OrderEventsWorker extends Construct {
  /** The function and its role, log group and key. */
  public readonly worker: WorkerFunction;

  constructor(scope: Construct, id: string, props: OrderEventsWorkerProps) {
    super(scope, id);
    const timeout = props.timeout ?? ORDER_EVENTS_TIMEOUT;
    const fulfilmentTimeout = props.fulfilmentTimeout ?? Duration.seconds(5);
    const url = props.fulfilmentUrl;
    if (url !== undefined && !Token.isUnresolved(url) && !/^https:\/\/[^/\s]+/.test(url)) {
      throw new Error(
        `OrderEventsWorker fulfilmentUrl must be an https:// URL (the workers' security group lets only 443 out), got "${url}"`,
      );
    }
    if (fulfilmentTimeout.toSeconds() >= timeout.toSeconds()) {
      throw new Error(
        `OrderEventsWorker fulfilmentTimeout ${fulfilmentTimeout.toSeconds()} s must be shorter than the function's timeout ${timeout.toSeconds()} s`,
      );
    }

    this.worker = new WorkerFunction(this, 'Worker', {
      entry: join(REPO_ROOT, 'lambda', 'order-events', 'index.ts'),
      serviceName: 'order-events',
      description: 'Applies each order event once (fulfilment request or log record)',
      timeout,
      memorySize: 256,
      reservedConcurrency: props.reservedConcurrency ?? 5,
      vpc: props.vpc,
      removalPolicy: props.removalPolicy,
      environment: {
        IDEMPOTENCY_TABLE_NAME: props.idempotencyTable.tableName,
        IDEMPOTENCY_EXPIRES_AFTER_SECONDS: String(props.queue.idempotencyLifetime.toSeconds()),
        FULFILMENT_TIMEOUT_MS: String(fulfilmentTimeout.toMilliseconds()),
        POWERTOOLS_METRICS_NAMESPACE: 'ResilientShop/Workers',
        ...(url ? { FULFILMENT_URL: url } : {}),
      },
    });
    props.idempotencyTable.grant(
      this.worker,
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
    );
    this.worker.consume(props.queue);
  }
}
