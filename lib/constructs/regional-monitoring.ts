import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as sns from 'aws-cdk-lib/aws-sns';
import { DefaultDashboardFactory, MonitoringFacade } from 'cdk-monitoring-constructs';
import { Construct } from 'constructs';
import { Database } from './database';
import { Fleet } from './fleet';
import { FleetAlarms } from './fleet-alarms';
import { LoadBalancer } from './load-balancer';
import { ResilientQueue } from './resilient-queue';
import { RUNBOOK_BASE_CONTEXT } from './runbook-alarm';
import { WorkerFunction } from './worker-function';

/** A worker on the dashboard: its function and the title of its section. */
export interface MonitoredWorker {
  readonly title: string;
  readonly worker: WorkerFunction;
}

/** A custom metric on the dashboard: the certificate probe's, the reconciler's. */
export interface MonitoredMetric {
  readonly label: string;
  readonly metric: cloudwatch.IMetric;
}

/** Properties of {@link RegionalMonitoring}. */
export interface RegionalMonitoringProps {
  /** The topic the composite notifies (its members notify it already). */
  readonly alarmTopic: sns.ITopic;
  readonly loadBalancer: LoadBalancer;
  readonly fleet: Fleet;
  readonly fleetAlarms: FleetAlarms;
  /** The AZs of the fleet: one healthy-host line each on the dashboard. */
  readonly availabilityZones: string[];
  readonly database: Database;
  /** The region's queues, each with its DLQ. */
  readonly queues: Record<string, ResilientQueue>;
  readonly workers: MonitoredWorker[];
  /**
   * The idempotency table the workers use (the global table, or its replica here).
   *
   * @default - no table section
   */
  readonly idempotencyTable?: dynamodb.ITableV2;
  /** Certificate days-to-expiry lines beside the load balancer certificate's. */
  readonly certificateMetrics: MonitoredMetric[];
  /** Worker metrics without an alarm of their own shape: inventory drift, probe failures. */
  readonly workerMetrics: MonitoredMetric[];
  /** Every alarm of the region, for the alarm status widget at the top of the dashboard. */
  readonly alarms: cloudwatch.IAlarm[];
}

const ONE_MINUTE = Duration.minutes(1);

/**
 * The region's alarms in one place and its dashboard.
 *
 * **Checkout impaired** (`CheckoutImpaired`, a composite that notifies the alarm topic
 * when it fires and when it recovers; runbook `fleet-checkout-impaired`): any of
 * - serving impaired (load balancer or service 5xx, p99 latency, the payment breaker
 *   open: deferrals rising), `FleetAlarms/ServingImpaired`;
 * - healthy hosts below what carries the load after one AZ's loss;
 * - a dead letter in any queue's DLQ;
 * - the database writer unavailable through RDS Proxy for longer than a failover (where
 *   a proxy runs: not in the standby, whose cluster is read-only until promoted).
 * It is the stop condition of every FIS experiment of the region
 * (lib/constructs/chaos-experiments.ts): an experiment does not start while it is in
 * ALARM, and stops when it goes there.
 *
 * **Dashboard** `<stack name>` (CloudWatch dashboards are global to the account, so the
 * stack name keeps the regions apart), built with cdklabs' cdk-monitoring-constructs:
 * alarm status of every alarm of the region on top, then traffic, errors and latency of
 * the load balancer, fleet per AZ, service (breaker, shedding, deferrals, outbox),
 * database, queues and DLQs, workers, idempotency table, web ACL, certificates. What came
 * from where: the library has no Application Load Balancer monitoring outside its
 * Fargate patterns, so the load-balancer, per-AZ and service widgets are written here
 * (`addWidget`); the Auto Scaling group, Aurora, SQS with DLQ, Lambda, DynamoDB, WAF and
 * ACM sections are the library's. The library creates no alarm here: every alarm of the
 * app is written with its runbook link in its tier's construct (`runbookAlarm`), tested
 * there, and checked by the resilience rule pack.
 */
export class RegionalMonitoring extends Construct {
  /** Customers are affected: see the class description. Notifies the alarm topic. */
  public readonly checkoutImpaired: cloudwatch.CompositeAlarm;
  /** The alarms the composite is made of. */
  public readonly impairmentAlarms: cloudwatch.IAlarm[];
  /** The region's dashboard. */
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: RegionalMonitoringProps) {
    super(scope, id);
    const base = (this.node.tryGetContext(RUNBOOK_BASE_CONTEXT) as string | undefined) ?? 'docs/runbooks';

    this.impairmentAlarms = [
      props.fleetAlarms.servingImpaired,
      props.fleetAlarms.staticStabilityAlarm,
      ...Object.values(props.queues).map((q) => q.deadLettersAlarm),
      ...(props.database.writerUnavailableAlarm ? [props.database.writerUnavailableAlarm] : []),
    ];
    this.checkoutImpaired = new cloudwatch.CompositeAlarm(this, 'CheckoutImpaired', {
      alarmRule: cloudwatch.AlarmRule.anyOf(
        ...this.impairmentAlarms.map((a) => cloudwatch.AlarmRule.fromAlarm(a, cloudwatch.AlarmState.ALARM)),
      ),
      alarmDescription: `Checkout impaired: 5xx, latency or deferred payments, capacity below one AZ's loss, a dead letter, or the database writer unavailable (stops every FIS experiment). Runbook: ${base.replace(/\/$/, '')}/fleet-checkout-impaired.md`,
    });
    const action = new cloudwatchActions.SnsAction(props.alarmTopic);
    this.checkoutImpaired.addAlarmAction(action);
    this.checkoutImpaired.addOkAction(action);

    const stackName = Stack.of(this).stackName;
    const dashboards = new DefaultDashboardFactory(this, 'Dashboards', {
      dashboardNamePrefix: stackName,
      createDashboard: true,
      createSummaryDashboard: false,
      createAlarmDashboard: false,
      detailDashboardRange: Duration.hours(3),
    });
    const facade = new MonitoringFacade(this, 'Facade', {
      dashboardFactory: dashboards,
      alarmFactoryDefaults: { alarmNamePrefix: stackName, actionsEnabled: true },
      metricFactoryDefaults: {},
    });

    facade.addLargeHeader(`${stackName}: checkout platform (${Stack.of(this).region})`);
    facade.addWidget(
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms of the region (each description links its runbook)',
        alarms: [this.checkoutImpaired, ...props.alarms],
        width: 24,
        height: Math.min(12, 2 + Math.ceil((props.alarms.length + 1) / 4)),
        sortBy: cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
      }),
    );

    this.addFrontDoor(facade, props);
    this.addService(facade, props.fleet);

    facade.addMediumHeader('Fleet');
    facade.monitorAutoScalingGroup({
      autoScalingGroup: props.fleet.autoScalingGroup,
      humanReadableName: 'Checkout fleet',
      alarmFriendlyName: 'Fleet',
    });

    facade.addMediumHeader('Database');
    facade.monitorAuroraCluster({
      cluster: props.database.cluster,
      humanReadableName: 'Aurora cluster',
      alarmFriendlyName: 'Aurora',
    });

    facade.addMediumHeader('Queues and dead-letter queues');
    for (const [name, q] of Object.entries(props.queues)) {
      facade.monitorSqsQueueWithDlq({
        queue: q.queue,
        deadLetterQueue: q.deadLetterQueue,
        humanReadableName: name,
        alarmFriendlyName: name,
      });
    }

    facade.addMediumHeader('Workers');
    for (const w of props.workers) {
      facade.monitorLambdaFunction({
        lambdaFunction: w.worker.function,
        humanReadableName: w.title,
        alarmFriendlyName: w.title,
      });
    }
    if (props.workerMetrics.length > 0) {
      facade.monitorCustom({
        humanReadableName: 'Worker outcomes',
        alarmFriendlyName: 'WorkerOutcomes',
        metricGroups: [
          {
            title: 'Inventory drift and probe failures',
            metrics: props.workerMetrics.map((m) => this.asMetric(m)),
          },
        ],
      });
    }
    if (props.idempotencyTable) {
      facade.monitorDynamoTable({
        table: props.idempotencyTable,
        humanReadableName: 'Idempotency table',
        alarmFriendlyName: 'IdempotencyTable',
      });
    }

    facade.addMediumHeader('Edge: web ACL and certificates');
    facade.monitorWebApplicationFirewallAclV2({
      acl: props.loadBalancer.webAcl,
      region: Stack.of(this).region,
      humanReadableName: 'Web ACL',
      alarmFriendlyName: 'WebAcl',
    });
    facade.monitorCertificate({
      certificate: props.loadBalancer.certificate,
      humanReadableName: 'Load balancer certificate (ACM)',
      alarmFriendlyName: 'Certificate',
    });
    if (props.certificateMetrics.length > 0) {
      facade.monitorCustom({
        humanReadableName: 'Certificates seen by the probe',
        alarmFriendlyName: 'CertificateProbe',
        metricGroups: [
          {
            title: 'Days to expiry per endpoint',
            metrics: props.certificateMetrics.map((m) => this.asMetric(m)),
          },
        ],
      });
    }

    this.dashboard = dashboards.dashboard!;
  }

  /** Traffic, errors, latency and healthy hosts per AZ: what the library lacks for an ALB. */
  private addFrontDoor(facade: MonitoringFacade, props: RegionalMonitoringProps): void {
    const lb = props.loadBalancer.loadBalancer;
    const tg = props.fleet.targetGroup;
    const sum = { period: ONE_MINUTE, statistic: cloudwatch.Stats.SUM };
    facade.addMediumHeader('Traffic, errors, latency');
    facade.addWidget(
      new cloudwatch.GraphWidget({
        title: 'Requests and 5xx (per minute)',
        width: 8,
        left: [
          lb.metrics.requestCount({ ...sum, label: 'requests' }),
          lb.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { ...sum, label: 'load balancer 5xx' }),
          tg.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { ...sum, label: 'service 5xx' }),
          tg.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_4XX_COUNT, { ...sum, label: 'service 4xx' }),
        ],
      }),
    );
    facade.addWidget(
      new cloudwatch.GraphWidget({
        title: 'Target response time',
        width: 8,
        left: ['p50', 'p90', 'p99'].map((p) =>
          tg.metrics.targetResponseTime({ period: ONE_MINUTE, statistic: p, label: p }),
        ),
      }),
    );
    facade.addWidget(
      new cloudwatch.GraphWidget({
        title: 'Healthy targets per AZ',
        width: 8,
        left: props.availabilityZones.map((az) =>
          tg.metrics
            .healthyHostCount({ period: ONE_MINUTE, statistic: cloudwatch.Stats.MINIMUM, label: az })
            .with({
              dimensionsMap: {
                TargetGroup: tg.targetGroupFullName,
                LoadBalancer: lb.loadBalancerFullName,
                AvailabilityZone: az,
              },
            }),
        ),
        right: [
          lb.metrics.rejectedConnectionCount({ ...sum, label: 'rejected connections' }),
          tg.metrics.unhealthyHostCount({
            period: ONE_MINUTE,
            statistic: cloudwatch.Stats.MAXIMUM,
            label: 'unhealthy targets',
          }),
        ],
      }),
    );
  }

  /** The checkout service's own metrics (namespace of the fleet's `metricService`). */
  private addService(facade: MonitoringFacade, fleet: Fleet): void {
    const sum = (name: string, label: string) =>
      fleet.metricService(name, { period: ONE_MINUTE, statistic: cloudwatch.Stats.SUM, label });
    facade.addMediumHeader('Checkout service');
    facade.addWidget(
      new cloudwatch.GraphWidget({
        title: 'Outcomes (per minute)',
        width: 8,
        left: [
          sum('OrdersConfirmed', 'confirmed'),
          sum('PaymentsDeclined', 'declined'),
          sum('OrdersPendingPayment', 'deferred to payment-retry'),
          sum('OutOfStock', 'out of stock'),
          sum('IdempotentReplays', 'idempotent replays'),
        ],
      }),
    );
    facade.addWidget(
      new cloudwatch.GraphWidget({
        title: 'Payment breaker and shedding',
        width: 8,
        left: [
          sum('RequestsShed', 'requests shed (503)'),
          sum('PaymentDeferredCircuitOpen', 'deferred: breaker open'),
          sum('PaymentDeferredRetriesExhausted', 'deferred: retries exhausted'),
          sum('PaymentDeferredBulkheadFull', 'deferred: bulkhead full'),
          sum('PaymentRequestsRejected', 'gateway rejected the request'),
        ],
        right: [
          fleet.metricCircuitBreakerOpen({ period: ONE_MINUTE, label: 'breaker open (1) / closed (0)' }),
        ],
        rightYAxis: { min: 0, max: 1 },
      }),
    );
    facade.addWidget(
      new cloudwatch.GraphWidget({
        title: 'Outbox and database conflicts',
        width: 8,
        left: [
          sum('OutboxPublished', 'published'),
          sum('OutboxPublishFailures', 'publish failures'),
          sum('OutboxMessagesParked', 'parked (rejected by SQS)'),
          sum('StuckOrdersDeferred', 'stuck orders deferred'),
          sum('DatabaseConflictRetries', 'serialization / deadlock retries'),
          sum('CheckoutLeasesLost', 'leases lost'),
        ],
      }),
    );
  }

  private asMetric(m: MonitoredMetric): cloudwatch.Metric | cloudwatch.MathExpression {
    if (!(m.metric instanceof cloudwatch.Metric || m.metric instanceof cloudwatch.MathExpression)) {
      throw new Error(`RegionalMonitoring: ${m.label} is neither a Metric nor a MathExpression`);
    }
    return m.metric.with({ label: m.label });
  }
}
