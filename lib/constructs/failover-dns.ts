import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { runbookAlarm } from './runbook-alarm';

/**
 * The only region where Route 53 publishes health-check metrics (`AWS/Route53`
 * `HealthCheckStatus`), so the only region where an alarm on them can live
 * (Amazon Route 53 Developer Guide, "Monitoring health check status and getting
 * notifications").
 */
export const ROUTE53_METRICS_REGION = 'us-east-1';

/**
 * The health-checker regions: all eight Route 53 offers, listed so the template does
 * not change when AWS adds one. Route 53 calls an endpoint healthy while more than 18% of
 * its checkers do; over eight regions the checkers of one region (12.5%) cannot keep a
 * region that the rest of the world cannot reach "healthy", and two regions on their own
 * (25%) can, so a network partition that cuts off a single checker region never moves
 * traffic (Route 53 Developer Guide, "How Amazon Route 53 determines whether a health
 * check is healthy").
 */
export const HEALTH_CHECKER_REGIONS: readonly string[] = [
  'us-east-1',
  'us-west-1',
  'us-west-2',
  'eu-west-1',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-northeast-1',
  'sa-east-1',
];

/**
 * How long resolvers may cache an answer for the failover name. Alias records carry no
 * TTL of their own: an alias to another record of the zone takes that record's TTL, and
 * the regional records are aliases to Application Load Balancers, whose TTL Route 53
 * fixes at 60 s (Route 53 FAQ, "Do I need to adjust the TTL of my records in order to use
 * DNS Failover?").
 */
export const LOAD_BALANCER_ALIAS_TTL = Duration.seconds(60);

/** Seconds between two requests of one health checker, unless told otherwise. */
export const DEFAULT_REQUEST_INTERVAL_SECONDS = 10;

/** Consecutive failures that make a checker see the endpoint unhealthy, unless told otherwise. */
export const DEFAULT_FAILURE_THRESHOLD = 3;

/** The region's own name, `<region>.<domain>`, as `LoadBalancer` names it by default. */
export function regionalDomainName(region: string, domainName: string): string {
  return `${region}.${domainName}`;
}

/** One side of the failover pair. */
export interface FailoverEndpoint {
  /** The region it runs in (descriptions and the health check's name). */
  readonly region: string;
  /**
   * The region's own name: an A alias to its load balancer in the same hosted zone
   * (`LoadBalancer.regionalDomainName`). The health check calls it and the failover
   * record aliases it. A literal string: a token here would be a cross-region reference.
   */
  readonly regionalDomainName: string;
}

/** Properties of {@link FailoverDns}. */
export interface FailoverDnsProps {
  /** The hosted zone of every name involved. */
  readonly hostedZone: route53.IHostedZone;
  /** The public name clients use (such as `shop.example.com`). */
  readonly domainName: string;
  /** Where traffic goes while its health check passes. */
  readonly primary: FailoverEndpoint;
  /** Where traffic goes when the primary's health check fails. */
  readonly secondary: FailoverEndpoint;

  /**
   * The path the health checks request over HTTPS.
   *
   * @default '/health/ready' - 200 only while the service is started, not draining, and its
   * database answers; the load balancer's target group checks the same path
   */
  readonly healthCheckPath?: string;

  /**
   * Seconds between two requests of one health checker: 10 or 30.
   *
   * @default Duration.seconds(10) - "fast": detection in a third of the time for about one
   * dollar a month more per health check; cannot be changed once created
   */
  readonly requestInterval?: Duration;

  /**
   * Consecutive failed (or passed) requests that turn one checker's view of the
   * endpoint unhealthy (or healthy again), 1 to 10.
   *
   * @default 3 - one or two lost requests (a deploy's instance swap, a packet loss) do
   * not move traffic; three in a row, 30 s at the fast interval, do
   */
  readonly failureThreshold?: number;

  /**
   * The regions whose health checkers call the endpoints (at least three).
   *
   * @default HEALTH_CHECKER_REGIONS - all eight
   */
  readonly checkerRegions?: readonly string[];

  /**
   * Topic the health-check alarms notify when they fire and when they recover. It must be
   * in us-east-1 with the alarms.
   *
   * @default - alarms without actions, in `alarms` for the caller to wire
   */
  readonly alarmTopic?: sns.ITopic;
}

/** What the failover time is made of, in seconds. */
export interface FailoverTiming {
  /** Request interval x failure threshold: until Route 53 calls the primary unhealthy. */
  readonly detectionSeconds: number;
  /** How long resolvers keep answering with the primary after that. */
  readonly ttlSeconds: number;
  /** The worst case for a client that resolves the name again: detection + TTL. */
  readonly totalSeconds: number;
}

/** Detection + TTL, the time until a client resolving the name again is sent to the standby. */
export function failoverTiming(
  intervalSeconds: number,
  failureThreshold: number,
  ttlSeconds: number,
): FailoverTiming {
  const detectionSeconds = intervalSeconds * failureThreshold;
  return { detectionSeconds, ttlSeconds, totalSeconds: detectionSeconds + ttlSeconds };
}

/**
 * An alias to another record of the same hosted zone (`Route53RecordTarget` leaves
 * `EvaluateTargetHealth` unset, which a failover alias may not).
 */
class RecordInZone implements route53.IAliasRecordTarget {
  constructor(private readonly name: string) {}

  bind(_record: route53.IRecordSet, zone?: route53.IHostedZone): route53.AliasRecordTargetConfig {
    if (!zone) throw new Error(`FailoverDns: an alias to ${this.name} needs the hosted zone`);
    return { dnsName: this.name, hostedZoneId: zone.hostedZoneId, evaluateTargetHealth: true };
  }
}

/**
 * DNS failover between two regions with Route 53:
 *
 * - an HTTPS health check per region on `https://<region>.<domain>/health/ready`, by name
 *   with SNI (the load balancer's certificate carries the regional name), from
 *   {@link HEALTH_CHECKER_REGIONS}, every 10 s, unhealthy after 3 failures;
 * - failover alias records for the public name: PRIMARY to the primary's regional name
 *   with its health check, SECONDARY to the standby's with its health check too; both
 *   evaluate target health, so each also inherits its load balancer's health (no healthy
 *   target, no answer). When both are unhealthy Route 53 answers with the primary;
 * - an alarm per health check on `HealthCheckStatus`, which exists only in us-east-1
 *   ({@link ROUTE53_METRICS_REGION}): the construct refuses another region.
 *
 * The records alias the regional records, not the load balancers: both are in the same
 * hosted zone, so the standby's load balancer (another region, another stack) is never
 * referenced, and the stack synthesizes with no cross-region reference. The cost is none:
 * an alias to a record of the zone is answered in one lookup and takes that record's
 * TTL ({@link LOAD_BALANCER_ALIAS_TTL}). The regional records must evaluate their load
 * balancer's health for SECONDARY's target health to mean anything (`LoadBalancer` does).
 *
 * The records are A only: the load balancers are IPv4 (no dualstack), so an AAAA alias
 * would never answer.
 */
export class FailoverDns extends Construct {
  /** The primary region's health check. */
  public readonly primaryHealthCheck: route53.HealthCheck;
  /** The standby region's health check. */
  public readonly secondaryHealthCheck: route53.HealthCheck;
  /** The PRIMARY failover record. */
  public readonly primaryRecord: route53.ARecord;
  /** The SECONDARY failover record. */
  public readonly secondaryRecord: route53.ARecord;
  /** One alarm per health check: primary, then secondary. */
  public readonly alarms: cloudwatch.Alarm[];
  /** Detection + TTL, as configured. */
  public readonly timing: FailoverTiming;

  constructor(scope: Construct, id: string, props: FailoverDnsProps) {
    super(scope, id);
    const path = props.healthCheckPath ?? '/health/ready';
    const interval = props.requestInterval ?? Duration.seconds(DEFAULT_REQUEST_INTERVAL_SECONDS);
    const failureThreshold = props.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD;
    const checkerRegions = props.checkerRegions ?? HEALTH_CHECKER_REGIONS;
    const region = Stack.of(this).region;

    if (Token.isUnresolved(region) || region !== ROUTE53_METRICS_REGION) {
      throw new Error(
        `FailoverDns must be in ${ROUTE53_METRICS_REGION}, got ${region}: Route 53 publishes health-check metrics only there, so its alarms must live there`,
      );
    }
    const intervalSeconds = interval.toSeconds();
    if (intervalSeconds !== 10 && intervalSeconds !== 30) {
      throw new Error(
        `FailoverDns requestInterval must be 10 or 30 seconds (Route 53's two), got ${intervalSeconds}`,
      );
    }
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1 || failureThreshold > 10) {
      throw new Error(
        `FailoverDns failureThreshold must be a whole number from 1 to 10, got ${failureThreshold}`,
      );
    }
    if (checkerRegions.length < 3) {
      throw new Error(
        `FailoverDns needs at least 3 checkerRegions (Route 53's minimum), got ${checkerRegions.length}`,
      );
    }
    if (!path.startsWith('/')) {
      throw new Error(`FailoverDns healthCheckPath must start with "/", got "${path}"`);
    }
    for (const endpoint of [props.primary, props.secondary]) {
      if (Token.isUnresolved(endpoint.regionalDomainName)) {
        throw new Error(
          'FailoverDns regionalDomainName must be a literal name, not a token: a reference to another stack would need crossRegionReferences',
        );
      }
    }
    if (props.primary.regionalDomainName === props.secondary.regionalDomainName) {
      throw new Error(
        `FailoverDns primary and secondary must have different regional names, both are ${props.primary.regionalDomainName}`,
      );
    }
    const zoneName = props.hostedZone.zoneName;
    if (!Token.isUnresolved(zoneName)) {
      for (const name of [
        props.domainName,
        props.primary.regionalDomainName,
        props.secondary.regionalDomainName,
      ]) {
        if (name !== zoneName && !name.endsWith(`.${zoneName}`)) {
          throw new Error(
            `FailoverDns: ${name} is not in hosted zone ${zoneName}; an alias can only target its own zone`,
          );
        }
      }
    }

    const healthCheck = (id: string, endpoint: FailoverEndpoint, role: string) => {
      const check = new route53.HealthCheck(this, id, {
        type: route53.HealthCheckType.HTTPS,
        fqdn: endpoint.regionalDomainName,
        port: 443,
        resourcePath: path,
        enableSNI: true,
        requestInterval: interval,
        failureThreshold,
        regions: [...checkerRegions],
        measureLatency: false,
      });
      // The console lists health checks by their Name tag.
      (check.node.defaultChild as route53.CfnHealthCheck).healthCheckTags = [
        { key: 'Name', value: `${role} ${endpoint.region}: ${endpoint.regionalDomainName}${path}` },
      ];
      return check;
    };
    this.primaryHealthCheck = healthCheck('PrimaryHealthCheck', props.primary, 'primary');
    this.secondaryHealthCheck = healthCheck('SecondaryHealthCheck', props.secondary, 'standby');

    const record = (
      id: string,
      endpoint: FailoverEndpoint,
      failover: route53.Failover,
      check: route53.IHealthCheck,
    ) =>
      new route53.ARecord(this, id, {
        zone: props.hostedZone,
        recordName: props.domainName,
        target: route53.RecordTarget.fromAlias(new RecordInZone(endpoint.regionalDomainName)),
        failover,
        healthCheck: check,
        // Stable: a changed set identifier replaces the record.
        setIdentifier: failover === route53.Failover.PRIMARY ? 'primary' : 'secondary',
        comment: `${failover} of ${props.domainName}: ${endpoint.region}`,
      });
    this.primaryRecord = record(
      'PrimaryRecord',
      props.primary,
      route53.Failover.PRIMARY,
      this.primaryHealthCheck,
    );
    this.secondaryRecord = record(
      'SecondaryRecord',
      props.secondary,
      route53.Failover.SECONDARY,
      this.secondaryHealthCheck,
    );

    this.timing = failoverTiming(intervalSeconds, failureThreshold, LOAD_BALANCER_ALIAS_TTL.toSeconds());
    this.alarms = [
      this.healthAlarm(
        'PrimaryUnhealthy',
        this.primaryHealthCheck,
        `Route 53 health check of the primary ${props.primary.regionalDomainName}${path} is failing: ` +
          `${props.domainName} now answers with the standby ${props.secondary.region}, whose database is read-only until promoted`,
      ),
      this.healthAlarm(
        'SecondaryUnhealthy',
        this.secondaryHealthCheck,
        `Route 53 health check of the standby ${props.secondary.regionalDomainName}${path} is failing: ` +
          'the standby region cannot take the traffic if the primary fails',
      ),
    ];
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /**
   * `HealthCheckStatus` of a health check: 1 healthy, 0 unhealthy, per minute (the
   * minimum, so one unhealthy sample in the minute counts).
   */
  public static metricHealthCheckStatus(healthCheck: route53.IHealthCheck): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Route53',
      metricName: 'HealthCheckStatus',
      dimensionsMap: { HealthCheckId: healthCheck.healthCheckId },
      statistic: cloudwatch.Stats.MINIMUM,
      period: Duration.minutes(1),
      region: ROUTE53_METRICS_REGION,
    });
  }

  private healthAlarm(id: string, check: route53.IHealthCheck, summary: string): cloudwatch.Alarm {
    return runbookAlarm(this, id, 'region-failover', {
      metric: FailoverDns.metricHealthCheckStatus(check),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      summary,
      // Route 53 reports every minute while the health check exists: silence means the
      // health check is gone or broken, and with it the failover.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
  }
}
