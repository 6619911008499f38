import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import {
  DAYS_TO_EXPIRY_METRIC,
  DEFAULT_PROBE_NAMESPACE,
  ENDPOINT_DIMENSION,
  PROBE_FAILED_METRIC,
  ProbeEndpoint,
  parseProbeEndpoint,
} from '../../lambda/certificate-probe/contract';
import { acknowledge } from '../compliance';
import { runbookAlarm } from './runbook-alarm';
import { ScheduledWorkerProps, scheduleWorker, validateScheduleInterval } from './scheduled-worker';
import { REPO_ROOT, WorkerFunction, WorkerVpcPlacement } from './worker-function';

/** Properties of {@link CertificateProbe}. */
export interface CertificateProbeProps extends ScheduledWorkerProps {
  /** Endpoints to probe, `host` or `host:port` (443 when omitted). */
  readonly endpoints: string[];

  /**
   * How often the probe runs; also the period of its alarms.
   *
   * @default Duration.hours(6)
   */
  readonly interval?: Duration;

  /**
   * The expiry alarm fires when a certificate has fewer days left than this.
   *
   * @default 30 - ACM renews 60 days ahead, so 30 days left means renewal has failed
   */
  readonly expiryThresholdDays?: number;

  /**
   * CloudWatch namespace of `DaysToExpiry` and `ProbeFailed`.
   *
   * @default 'ResilientShop/Certificates'
   */
  readonly namespace?: string;

  /**
   * How long one endpoint may take to complete a TLS handshake.
   *
   * @default Duration.seconds(5)
   */
  readonly connectTimeout?: Duration;

  /**
   * Run inside the VPC (the probe then reaches the endpoints through the NAT gateway, as
   * a customer would, from the outside). Its requests arrive from the NAT gateways'
   * Elastic IPs: an endpoint that admits only some CIDRs must admit those
   * (`LoadBalancer` does, given `vpcEgressIps: network.natGatewayPublicIps`), or the probe
   * times out and its failure alarm fires.
   *
   * @default - outside any VPC
   */
  readonly vpc?: WorkerVpcPlacement;
}

/**
 * A scheduled probe (lambda/certificate-probe) that TLS-connects to each endpoint and
 * publishes `DaysToExpiry` and `ProbeFailed` per endpoint (dimension `Endpoint`), with two
 * alarms per endpoint: fewer than 30 days left, and the probe failing (or not running).
 *
 * It exists because Route 53's HTTPS health checks do not validate certificates: an
 * expired certificate fails no health check, triggers no failover, and every browser
 * refuses the site. ACM renews DNS-validated certificates on its own, until a CNAME is
 * deleted or a certificate is imported; this probe is what notices.
 */
export class CertificateProbe extends Construct {
  /** The probe function. */
  public readonly worker: WorkerFunction;
  /** The schedule. */
  public readonly rule: events.Rule;
  /** The parsed endpoints. */
  public readonly endpoints: readonly ProbeEndpoint[];
  /** Per endpoint: fewer days left than the threshold. */
  public readonly expiryAlarms: cloudwatch.Alarm[] = [];
  /** Per endpoint: the probe failed twice in a row, or did not run. */
  public readonly failureAlarms: cloudwatch.Alarm[] = [];
  /** Every alarm. */
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: CertificateProbeProps) {
    super(scope, id);
    const interval = props.interval ?? Duration.hours(6);
    const threshold = props.expiryThresholdDays ?? 30;
    const namespace = props.namespace ?? DEFAULT_PROBE_NAMESPACE;
    const connectTimeout = props.connectTimeout ?? Duration.seconds(5);
    const timeout = Duration.seconds(30);
    if (props.endpoints.length === 0) {
      throw new Error('CertificateProbe endpoints is empty: list at least one host[:port] to probe');
    }
    validateScheduleInterval('CertificateProbe', interval);
    if (connectTimeout.toSeconds() >= timeout.toSeconds()) {
      throw new Error(
        `CertificateProbe connectTimeout ${connectTimeout.toSeconds()} s must be shorter than the probe's timeout ${timeout.toSeconds()} s`,
      );
    }
    this.endpoints = props.endpoints.map(parseProbeEndpoint);
    const labels = this.endpoints.map((e) => e.label);
    const repeated = labels.filter((l, i) => labels.indexOf(l) !== i);
    if (repeated.length > 0) {
      throw new Error(`CertificateProbe endpoints lists ${repeated.join(', ')} more than once`);
    }

    this.worker = new WorkerFunction(this, 'Worker', {
      entry: join(REPO_ROOT, 'lambda', 'certificate-probe', 'index.ts'),
      serviceName: 'certificate-probe',
      description: 'Reads the TLS certificate of each endpoint and publishes its days to expiry',
      timeout,
      memorySize: 256,
      // One run every few hours; one slot keeps a stuck run from piling up more.
      reservedConcurrency: 1,
      vpc: props.vpc,
      removalPolicy: props.removalPolicy,
      environment: {
        PROBE_ENDPOINTS: JSON.stringify(labels),
        PROBE_TIMEOUT_MS: String(connectTimeout.toMilliseconds()),
        POWERTOOLS_METRICS_NAMESPACE: namespace,
      },
    });
    // A policy of its own, so that its acknowledgement covers this statement alone.
    const publish = new iam.ManagedPolicy(this, 'PublishMetrics', {
      description: 'The certificate probe publishes its metrics to one namespace',
      roles: [this.worker.role],
      statements: [
        new iam.PolicyStatement({
          actions: ['cloudwatch:PutMetricData'],
          resources: ['*'],
          conditions: { StringEquals: { 'cloudwatch:namespace': namespace } },
        }),
      ],
    });
    this.worker.function.node.addDependency(publish);
    acknowledge(
      publish.node.defaultChild!,
      ['AwsSolutions-IAM5[Resource::*]'],
      'CloudWatch PutMetricData takes no resource ARN; the statement is scoped by the cloudwatch:namespace condition to the probe namespace alone.',
    );
    this.rule = scheduleWorker(this, this.worker, {
      description: 'Runs the certificate probe',
      interval,
      maxEventAge: Duration.hours(1),
      noLambdaDlqReason:
        'The schedule invokes the probe with an empty tick that holds nothing to replay; a failed run publishes no ProbeFailed value, which the probe-failure alarm treats as breaching, and the next tick runs it again.',
      noEventBusDlqReason:
        'A missed run needs no replay: the next scheduled run probes again, and runs that never happen leave ProbeFailed without data, which the probe-failure alarm treats as breaching.',
    });

    for (const endpoint of this.endpoints) {
      const scope = new Construct(this, endpoint.label);
      const dimensionsMap = { [ENDPOINT_DIMENSION]: endpoint.label };
      const expiring = runbookAlarm(scope, 'Expiring', 'certificate-probe-expiry', {
        metric: new cloudwatch.Metric({
          namespace,
          metricName: DAYS_TO_EXPIRY_METRIC,
          dimensionsMap,
          statistic: 'Minimum',
          period: interval,
        }),
        threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 1,
        summary: `The TLS certificate of ${endpoint.label} expires in fewer than ${threshold} days`,
        // A run can miss a period; silence must not flip the alarm to OK and back.
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
      });
      const failed = runbookAlarm(scope, 'ProbeFailed', 'certificate-probe-failed', {
        metric: new cloudwatch.Metric({
          namespace,
          metricName: PROBE_FAILED_METRIC,
          dimensionsMap,
          statistic: 'Maximum',
          period: interval,
        }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 2,
        summary: `The certificate probe could not read ${endpoint.label} twice in a row, or did not run`,
        // Every run publishes ProbeFailed (0 or 1); no data for two periods means no run.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
      this.expiryAlarms.push(expiring);
      this.failureAlarms.push(failed);
      this.alarms.push(expiring, failed);
    }
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }
}
