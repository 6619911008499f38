import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';
import { Fleet } from './fleet';
import { LoadBalancer } from './load-balancer';
import { RUNBOOK_BASE_CONTEXT, runbookAlarm } from './runbook-alarm';

/** Properties of {@link FleetAlarms}. */
export interface FleetAlarmsProps {
  /** The front door: load balancer, web ACL, certificate. */
  readonly loadBalancer: LoadBalancer;
  /** The fleet behind it. */
  readonly fleet: Fleet;
  /** The AZs the fleet spans (one healthy-host alarm each when every AZ holds an instance). */
  readonly availabilityZones: string[];
  /** The fleet's minimum size: healthy hosts below it (per AZ or in all) alarm. */
  readonly minCapacity: number;

  /**
   * Topic every alarm notifies when it fires and when it recovers.
   *
   * @default - alarms without actions, in `alarms` for the caller to wire
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * Requests the web ACL may block in 5 minutes before it counts as a spike.
   *
   * @default 500 - a public storefront sees a steady trickle of scanners (a few blocked
   * requests a minute); 100 a minute for five minutes is a campaign or a client gone wrong
   */
  readonly wafBlockedThreshold?: number;

  /**
   * p99 target response time that alarms.
   *
   * @default Duration.seconds(2) - one payment attempt's timeout: a p99 above it means a
   * slow dependency is reaching one request in a hundred
   */
  readonly p99Threshold?: Duration;

  /**
   * Share of requests (percent) answered 5xx that alarms, for the load balancer's own 5xx
   * and the targets' 5xx alike.
   *
   * @default 1
   */
  readonly errorRatePercent?: number;
}

/** What one alarm of the table is. */
interface AlarmSpec {
  readonly id: string;
  readonly runbook: string;
  readonly summary: string;
  readonly metric: cloudwatch.IMetric;
  readonly threshold: number;
  readonly evaluationPeriods: number;
  readonly comparisonOperator?: cloudwatch.ComparisonOperator;
  readonly treatMissingData?: cloudwatch.TreatMissingData;
  /** Stops an instance refresh (a deploy) when it fires. */
  readonly stopsRefresh: boolean;
}

const ONE_MINUTE = Duration.minutes(1);

/**
 * The web tier's alarms, each linking its runbook in docs/runbooks/, from one table:
 *
 * | alarm | fires when | stops a deploy |
 * | --- | --- | --- |
 * | `fleet-alb-5xx` | load balancer 5xx > 1% of requests (its own 5xx included: a fleet with no target reads 100%), 3 minutes | yes |
 * | `fleet-target-5xx` | target 5xx > 1% of requests, 3 minutes | yes |
 * | `fleet-latency` | p99 target response time > 2 s, 3 minutes | yes |
 * | `fleet-unhealthy-hosts` | any unhealthy target for 5 minutes (longer than a replacement) | yes |
 * | `fleet-healthy-hosts` | healthy targets below the per-AZ minimum in an AZ (or below the minimum in all), 3 minutes | no |
 * | `fleet-healthy-hosts` | healthy targets in all AZs below what carries the load after one AZ's loss (the minimum less one AZ's share, at least 1), 3 minutes | no |
 * | `fleet-rejected-connections` | the load balancer refused a connection (its limit), 1 minute | no |
 * | `fleet-waf-blocked` | more than 500 blocked requests in 5 minutes | no |
 * | `fleet-circuit-breaker` | a payment circuit breaker open or half-open for 2 minutes | yes |
 * | `fleet-requests-shed` | requests shed in each of 5 minutes (scale-out not catching up) | no |
 * | `fleet-gateway-rejected` | the payment gateway refused a request of the service (401/403/400), 5 minutes | no |
 * | `fleet-outbox` | a message parked by the outbox relay (5 minutes), or the oldest pending one older than 5 minutes for 3 minutes | no |
 * | `fleet-certificate-expiry` | the certificate expires in under 45 days (ACM renews at 60); missing days keep the last state | no |
 *
 * Plus two composites without actions of their own (their members notify): "serving
 * impaired" (5xx, latency, circuit breaker), the outcome alarm of zonal autoshift practice
 * runs and a member of the region's "checkout impaired" (lib/constructs/regional-monitoring.ts);
 * and "capacity short" (any per-AZ healthy-host alarm), the practice runs' blocking alarm.
 */
export class FleetAlarms extends Construct {
  /** Every metric alarm (the composites are {@link servingImpaired} and {@link capacityShort}). */
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** The alarms that stop an instance refresh (also given to the fleet). */
  public readonly refreshAlarms: cloudwatch.Alarm[] = [];
  /** Healthy targets below the minimum, per AZ (or in all where the minimum is below one per AZ). */
  public readonly healthyHostAlarms: cloudwatch.Alarm[] = [];
  /**
   * Any healthy-host alarm: the fleet is already short in an AZ and cannot afford to lose
   * another AZ's share. The blocking alarm of zonal autoshift practice runs (ARC's
   * CloudFormation resource takes one blocking alarm, hence the composite). It has no
   * action of its own: its members notify.
   */
  public readonly capacityShort: cloudwatch.CompositeAlarm;
  /**
   * Healthy targets in all AZs below what carries the load once one AZ is lost: fewer
   * than that is more than an AZ's worth of capacity gone, which one AZ's loss (an AZ
   * experiment, a zonal shift) never causes on its own. A member of the region's
   * "checkout impaired".
   */
  public readonly staticStabilityAlarm: cloudwatch.Alarm;
  /**
   * The service answers badly: 5xx, latency, or payments deferred by the open breaker.
   * The outcome alarm of zonal autoshift practice runs (an AZ shifted away must not
   * impair serving). No action of its own: its members notify, and so does the region's
   * "checkout impaired", of which it is a member.
   */
  public readonly servingImpaired: cloudwatch.CompositeAlarm;

  constructor(scope: Construct, id: string, props: FleetAlarmsProps) {
    super(scope, id);
    const lb = props.loadBalancer.loadBalancer;
    const tg = props.fleet.targetGroup;
    const errorRate = props.errorRatePercent ?? 1;
    const p99 = props.p99Threshold ?? Duration.seconds(2);
    const wafBlocked = props.wafBlockedThreshold ?? 500;

    const rate = (label: string, errors: cloudwatch.IMetric, requests: cloudwatch.IMetric) =>
      new cloudwatch.MathExpression({
        label,
        expression: 'IF(requests > 0, 100 * errors / requests, 0)',
        usingMetrics: { errors, requests },
        period: ONE_MINUTE,
      });
    // RequestCount counts only the requests for which the load balancer chose a target
    // ("CloudWatch metrics for your Application Load Balancer"): the 503s it answers with no
    // target at all (a fleet with nothing registered) are outside it, and a rate over
    // RequestCount alone reads 0% in a total outage. The load balancer's own 5xx join the
    // denominator, so that outage reads 100%; when targets are chosen, the few 502/504s
    // counted twice lower the rate a little below the true one.
    const elbRate = (label: string, errors: cloudwatch.IMetric, requests: cloudwatch.IMetric) =>
      new cloudwatch.MathExpression({
        label,
        expression:
          'IF(FILL(requests, 0) + FILL(errors, 0) > 0, 100 * FILL(errors, 0) / (FILL(requests, 0) + FILL(errors, 0)), 0)',
        usingMetrics: { errors, requests },
        period: ONE_MINUTE,
      });
    const requests = lb.metrics.requestCount({ period: ONE_MINUTE, statistic: cloudwatch.Stats.SUM });
    const perAz = Math.floor(props.minCapacity / props.availabilityZones.length);
    // What is left when the AZ holding the most instances is lost (never below one).
    const afterAzLoss = Math.max(
      1,
      props.minCapacity - Math.ceil(props.minCapacity / props.availabilityZones.length),
    );

    const specs: AlarmSpec[] = [
      {
        id: 'Alb5xxRate',
        runbook: 'fleet-alb-5xx',
        summary: `Load balancer 5xx above ${errorRate}% of requests for 3 minutes (no healthy target, or targets refusing connections)`,
        metric: elbRate(
          'ALB 5xx %',
          lb.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, {
            period: ONE_MINUTE,
            statistic: cloudwatch.Stats.SUM,
          }),
          requests,
        ),
        threshold: errorRate,
        evaluationPeriods: 3,
        stopsRefresh: true,
      },
      {
        id: 'Target5xxRate',
        runbook: 'fleet-target-5xx',
        summary: `Checkout service 5xx above ${errorRate}% of requests for 3 minutes`,
        metric: rate(
          'Target 5xx %',
          tg.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
            period: ONE_MINUTE,
            statistic: cloudwatch.Stats.SUM,
          }),
          requests,
        ),
        threshold: errorRate,
        evaluationPeriods: 3,
        stopsRefresh: true,
      },
      {
        id: 'P99Latency',
        runbook: 'fleet-latency',
        summary: `p99 target response time above ${p99.toSeconds()} s for 3 minutes`,
        metric: tg.metrics.targetResponseTime({ period: ONE_MINUTE, statistic: cloudwatch.Stats.p(99) }),
        threshold: p99.toSeconds(),
        evaluationPeriods: 3,
        stopsRefresh: true,
      },
      {
        id: 'UnhealthyHosts',
        runbook: 'fleet-unhealthy-hosts',
        summary:
          'A target has failed its health check for 5 minutes (longer than Auto Scaling takes to replace it)',
        metric: tg.metrics.unhealthyHostCount({ period: ONE_MINUTE, statistic: cloudwatch.Stats.MAXIMUM }),
        threshold: 0,
        evaluationPeriods: 5,
        stopsRefresh: true,
      },
      ...(perAz >= 1
        ? props.availabilityZones.map((az, i): AlarmSpec => ({
            id: `HealthyHostsAz${i + 1}`,
            runbook: 'fleet-healthy-hosts',
            summary: `Fewer than ${perAz} healthy target(s) in ${az} for 3 minutes (the per-AZ minimum)`,
            metric: tg.metrics
              .healthyHostCount({ period: ONE_MINUTE, statistic: cloudwatch.Stats.MINIMUM })
              .with({
                dimensionsMap: {
                  TargetGroup: tg.targetGroupFullName,
                  LoadBalancer: lb.loadBalancerFullName,
                  AvailabilityZone: az,
                },
              }),
            threshold: perAz,
            evaluationPeriods: 3,
            comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treatMissingData: cloudwatch.TreatMissingData.BREACHING,
            stopsRefresh: false,
          }))
        : [
            {
              id: 'HealthyHosts',
              runbook: 'fleet-healthy-hosts',
              summary: `Fewer than ${props.minCapacity} healthy target(s) for 3 minutes (the fleet minimum)`,
              metric: tg.metrics.healthyHostCount({
                period: ONE_MINUTE,
                statistic: cloudwatch.Stats.MINIMUM,
              }),
              threshold: props.minCapacity,
              evaluationPeriods: 3,
              comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
              treatMissingData: cloudwatch.TreatMissingData.BREACHING,
              stopsRefresh: false,
            },
          ]),
      {
        id: 'HealthyHostsAfterAzLoss',
        runbook: 'fleet-healthy-hosts',
        summary: `Fewer than ${afterAzLoss} healthy target(s) in all AZs for 3 minutes: more capacity is gone than one AZ's share`,
        metric: tg.metrics.healthyHostCount({ period: ONE_MINUTE, statistic: cloudwatch.Stats.MINIMUM }),
        threshold: afterAzLoss,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        stopsRefresh: false,
      },
      {
        id: 'RejectedConnections',
        runbook: 'fleet-rejected-connections',
        summary: 'The load balancer rejected connections (it reached its connection limit)',
        metric: lb.metrics.rejectedConnectionCount({ period: ONE_MINUTE, statistic: cloudwatch.Stats.SUM }),
        threshold: 0,
        evaluationPeriods: 1,
        stopsRefresh: false,
      },
      {
        id: 'WafBlockedSpike',
        runbook: 'fleet-waf-blocked',
        summary: `The web ACL blocked more than ${wafBlocked} requests in 5 minutes`,
        metric: props.loadBalancer.metricWafBlockedRequests({ period: Duration.minutes(5) }),
        threshold: wafBlocked,
        evaluationPeriods: 1,
        stopsRefresh: false,
      },
      {
        id: 'CircuitBreakerOpen',
        runbook: 'fleet-circuit-breaker',
        summary:
          'The payment circuit breaker has been open for 2 minutes: orders are deferred to payment-retry',
        metric: props.fleet.metricCircuitBreakerOpen(),
        threshold: 1,
        evaluationPeriods: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        stopsRefresh: true,
      },
      {
        id: 'RequestsShed',
        runbook: 'fleet-requests-shed',
        summary:
          'The service has shed requests (503) in each of the last 5 minutes: capacity is not catching up',
        metric: props.fleet.metricRequestsShed(),
        threshold: 0,
        evaluationPeriods: 5,
        stopsRefresh: false,
      },
      {
        id: 'GatewayRejected',
        runbook: 'fleet-gateway-rejected',
        summary:
          "The payment gateway refused the service's requests (401/403/400: its API key or request shape): checkouts answer 503 and new orders are deferred",
        metric: props.fleet.metricService('PaymentRequestsRejected', {
          period: Duration.minutes(5),
          statistic: cloudwatch.Stats.SUM,
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        stopsRefresh: false,
      },
      {
        id: 'OutboxMessagesParked',
        runbook: 'fleet-outbox',
        summary: 'The outbox relay parked a message SQS refused for what it carries: it needs an operator',
        metric: props.fleet.metricService('OutboxMessagesParked', {
          period: Duration.minutes(5),
          statistic: cloudwatch.Stats.SUM,
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        stopsRefresh: false,
      },
      {
        id: 'OutboxBacklog',
        runbook: 'fleet-outbox',
        summary:
          'The oldest pending outbox message has waited over 5 minutes for 3 minutes: a destination is refusing (deferred orders are not reaching payment-retry)',
        metric: props.fleet.metricService('OutboxOldestPendingSeconds', {
          period: ONE_MINUTE,
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 300,
        evaluationPeriods: 3,
        stopsRefresh: false,
      },
      {
        id: 'CertificateExpiry',
        runbook: 'fleet-certificate-expiry',
        summary:
          'The load balancer certificate expires in under 45 days: ACM renewal (due at 60 days) has not happened',
        metric: props.loadBalancer.certificate.metricDaysToExpiry({
          period: Duration.days(1),
          statistic: cloudwatch.Stats.MINIMUM,
        }),
        threshold: 45,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        // ACM stops publishing DaysToExpiry once the certificate has expired, so "no data
        // is fine" would turn a certificate past its end back to OK. Missing days keep the
        // last state instead: the alarm has fired 45 days earlier and stays in ALARM; a new
        // certificate waits in INSUFFICIENT_DATA for its first daily value, without paging.
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
        stopsRefresh: false,
      },
    ];

    for (const spec of specs) {
      const alarm = runbookAlarm(this, spec.id, spec.runbook, {
        metric: spec.metric,
        threshold: spec.threshold,
        evaluationPeriods: spec.evaluationPeriods,
        summary: spec.summary,
        comparisonOperator: spec.comparisonOperator,
        treatMissingData: spec.treatMissingData,
      });
      this.alarms.push(alarm);
      if (spec.stopsRefresh) this.refreshAlarms.push(alarm);
      if (spec.runbook === 'fleet-healthy-hosts' && spec.id !== 'HealthyHostsAfterAzLoss') {
        this.healthyHostAlarms.push(alarm);
      }
    }
    props.fleet.addRefreshAlarms(...this.refreshAlarms);

    const byId = (id: string) => this.alarms.find((a) => a.node.id === id)!;
    const base = (this.node.tryGetContext(RUNBOOK_BASE_CONTEXT) as string | undefined) ?? 'docs/runbooks';
    this.staticStabilityAlarm = byId('HealthyHostsAfterAzLoss');
    this.servingImpaired = new cloudwatch.CompositeAlarm(this, 'ServingImpaired', {
      alarmRule: cloudwatch.AlarmRule.anyOf(
        ...['Alb5xxRate', 'Target5xxRate', 'P99Latency', 'CircuitBreakerOpen'].map((id) =>
          cloudwatch.AlarmRule.fromAlarm(byId(id), cloudwatch.AlarmState.ALARM),
        ),
      ),
      alarmDescription: `Serving impaired: 5xx, latency or deferred payments (the zonal autoshift practice-run outcome alarm). Runbook: ${base.replace(/\/$/, '')}/fleet-checkout-impaired.md`,
    });
    acknowledge(
      this.servingImpaired,
      ['ResilientShopResilience-AlarmActionRunbook[no-action]'],
      'Each member alarm notifies the alarm topic with its own runbook, and the region\'s "checkout impaired" composite, of which this is a member, notifies too; an action here would page a third time for one event.',
    );

    this.capacityShort = new cloudwatch.CompositeAlarm(this, 'CapacityShort', {
      alarmRule: cloudwatch.AlarmRule.anyOf(
        ...this.healthyHostAlarms.map((a) => cloudwatch.AlarmRule.fromAlarm(a, cloudwatch.AlarmState.ALARM)),
      ),
      alarmDescription: `Fleet short of healthy instances in an AZ: zonal autoshift practice runs do not start (its member alarms notify). Runbook: ${base.replace(/\/$/, '')}/fleet-healthy-hosts.md`,
    });
    acknowledge(
      this.capacityShort,
      ['ResilientShopResilience-AlarmActionRunbook[no-action]'],
      'This composite exists only as the blocking alarm of zonal autoshift practice runs; each member healthy-host alarm already notifies the alarm topic with the same runbook, so an action here would page twice for one event.',
    );

    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }
}
