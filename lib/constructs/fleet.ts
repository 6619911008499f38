import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../../service/metrics';
import { acknowledge } from '../compliance';
import { addTargetTracking, createAutoScalingGroup, createTargetGroup } from '../fleet/auto-scaling';
import { BootSettings, renderBootScript } from '../fleet/boot-script';
import { allowAutoScalingToEncrypt, createInstanceRole } from '../fleet/instance-permissions';
import { addInstanceRefresh, checkRefreshAlarmCount } from '../fleet/instance-refresh';
import { createLaunchTemplate, fleetBootSettings } from '../fleet/launch-template';
import { serviceBundleAsset } from '../fleet/service-bundle';
import { allowLogsToUseKey } from '../kms';

/** The dimension every metric of the service's embedded-metric lines carries (service/metrics.ts). */
export const SERVICE_METRIC_DIMENSIONS = { Service: 'checkout' } as const;

/** Namespace of the CloudWatch agent's host metrics (memory, root disk) of the fleet. */
export const FLEET_HOST_METRICS_NAMESPACE = 'ResilientShop/Fleet';

/** The name of the launch lifecycle hook the boot script completes once the service is ready. */
export const LAUNCH_HOOK_NAME = 'checkout-ready';

/** What the fleet needs of the database tier (`Database` has all of it). */
export interface FleetDatabase {
  /** Host the service connects to: the proxy endpoint, or on a global secondary its instance (see Database.endpoint). */
  readonly endpoint: string;
  /** Port that goes with `endpoint`. */
  readonly connectionPort: number;
  /** The database user the service logs in as (IAM auth). */
  readonly applicationUser: string;
  /**
   * The proxy, when the service connects through one. Without one the fleet trusts the
   * RDS certificate authority: the cluster's certificate does not chain to a public CA,
   * RDS Proxy's does.
   */
  readonly proxy?: rds.IDatabaseProxy;
  /** Lets a principal connect as a database user with IAM auth. */
  grantConnect(grantee: iam.IGrantable, user?: string): iam.Grant;
}

/** The two queues the service's outbox publishes to. */
export interface FleetQueues {
  readonly orderEvents: sqs.IQueue;
  readonly paymentRetry: sqs.IQueue;
}

/** The real payment gateway. */
export interface PaymentGateway {
  /** Its base URL (https). */
  readonly url: string;
  /** The secret whose SecretString is the API key; the fleet reads it at every service start. */
  readonly apiKeySecret: secretsmanager.ISecret;
}

/** Properties of {@link Fleet}. */
export interface FleetProps {
  /** The VPC; instances go to its private subnets with egress. */
  readonly vpc: ec2.IVpc;
  /** The instances' security group (the app port from the load balancer only). */
  readonly securityGroup: ec2.ISecurityGroup;
  /** The HTTPS listener the fleet's target group is the default action of. */
  readonly listener: elbv2.ApplicationListener;
  /** The database the service connects to, as `checkout`, with IAM auth. */
  readonly database: FleetDatabase;
  /** The queues the outbox publishes to. */
  readonly queues: FleetQueues;

  /**
   * The instance type; must be Graviton (arm64): the fleet runs Amazon Linux 2023 for arm64.
   *
   * @default m7g.large
   */
  readonly instanceType?: ec2.InstanceType;

  /**
   * Fewest instances. Give at least one per AZ in production, so the loss of one AZ
   * leaves the others serving while Auto Scaling replaces the capacity.
   *
   * @default 3
   */
  readonly minCapacity?: number;

  /**
   * Most instances (scaling out stops here).
   *
   * @default 12
   */
  readonly maxCapacity?: number;

  /**
   * Port the service listens on.
   *
   * @default 8080
   */
  readonly appPort?: number;

  /**
   * The real payment gateway. Required unless `sandbox` is true.
   *
   * @default - none: only valid with `sandbox`
   */
  readonly paymentGateway?: PaymentGateway;

  /**
   * The recommendation engine's base URL. Required unless `sandbox` is true.
   *
   * @default - none: only valid with `sandbox`
   */
  readonly recommendationsUrl?: string;

  /**
   * Runs the bundled fake payment gateway and recommendation engine as systemd units of
   * their own on every instance, and points the service at them. NOT FOR PRODUCTION: the
   * fake gateway approves every charge.
   *
   * @default false
   */
  readonly sandbox?: boolean;

  /**
   * The secret holding the admin routes' bearer token (at least 32 characters).
   *
   * @default - a generated 48-character secret, encrypted with the fleet's key
   */
  readonly adminTokenSecret?: secretsmanager.ISecret;

  /**
   * Topic that receives Auto Scaling's launch and termination notifications (and their failures).
   * When it is encrypted with a key of this app, the key is opened to Auto Scaling's
   * service-linked role.
   *
   * @default - no notifications
   */
  readonly notificationTopic?: sns.ITopic;

  /**
   * Average CPU target of the CPU tracking policy.
   *
   * @default 50 - with one third of the fleet gone (an AZ), the rest runs at 75%
   */
  readonly cpuTargetPercent?: number;

  /**
   * Requests per minute per instance the request-count tracking policy aims for.
   *
   * @default 6000 - 100 requests/s: about a third of what one process sustained in the
   * benchmark (docs/checkout-service.md), so losing an AZ (x1.5) stays far below it
   */
  readonly requestsPerInstancePerMinute?: number;

  /**
   * The service's log level.
   *
   * @default 'info'
   */
  readonly logLevel?: string;

  /**
   * Lets ARC zonal shift (started by an operator, or by autoshift on the load balancer's
   * resource group) treat an AZ as impaired for the group: new capacity launches in the
   * other AZs, scale-in stops, and unhealthy instances in that AZ are left alone.
   *
   * @default true
   */
  readonly zonalShift?: boolean;

  /**
   * How long the service's logs are kept.
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * What happens to the log group, the fleet's key and a generated admin secret on
   * stack deletion.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * The service bundle.
   *
   * @default - built from `service/` by the local esbuild at synth
   */
  readonly bundle?: s3assets.Asset;
}

/**
 * Tier 3, the web fleet: the checkout service on an Auto Scaling group of Amazon Linux
 * 2023 Graviton instances in the VPC's private subnets, behind the load balancer's HTTPS
 * listener. The parts live in lib/fleet/, one concern each, and this class wires them:
 *
 * - Launch template ({@link createLaunchTemplate}, lib/fleet/launch-template.ts): AL2023
 *   arm64 (latest, from the public SSM parameter), IMDSv2 with hop limit 1, encrypted gp3
 *   root volume, detailed monitoring, no key pair (SSM Session Manager only), the user
 *   data of {@link renderBootScript} rendered from {@link fleetBootSettings}.
 * - Instance role ({@link createInstanceRole}, lib/fleet/instance-permissions.ts), least
 *   privilege, in one customer managed policy: read its bundle, log in to the database as
 *   `checkout` (IAM), send to the two queues, write its log group, put host metrics to
 *   {@link FLEET_HOST_METRICS_NAMESPACE} only, read its two secrets, complete its own
 *   launch lifecycle action; plus AmazonSSMManagedInstanceCore.
 * - Target group and scaling (lib/fleet/auto-scaling.ts): `/health/ready` (timings in
 *   lib/fleet/timings.ts), weighted random routing with anomaly mitigation, deregistration
 *   delay equal to the service's drain; ELB health checks, a launch lifecycle hook that
 *   holds each instance until the service is ready, launch-before-terminate maintenance,
 *   capacity rebalancing, AZ-impairment policy for zonal shift, CPU and request-count
 *   target tracking, launch and termination notifications.
 * - Instance refresh (lib/fleet/instance-refresh.ts) on every launch template change:
 *   min healthy 100%, checkpoints, stopped by {@link addRefreshAlarms}.
 */
export class Fleet extends Construct {
  /** The Auto Scaling group. */
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** The group's fixed name (runbooks and the boot script use it). */
  public readonly autoScalingGroupName: string;
  /** The target group behind the listener. */
  public readonly targetGroup: elbv2.ApplicationTargetGroup;
  /** The launch template. */
  public readonly launchTemplate: ec2.LaunchTemplate;
  /** The instance role. */
  public readonly role: iam.Role;
  /** The managed policy with every permission of the instance role. */
  public readonly instancePolicy: iam.ManagedPolicy;
  /** The service's log group (JSON lines; its embedded-metric lines become metrics). */
  public readonly logGroup: logs.LogGroup;
  /** Encrypts the log group and a generated admin secret. */
  public readonly key: kms.Key;
  /** The admin routes' bearer token. */
  public readonly adminTokenSecret: secretsmanager.ISecret;
  /** The service bundle. */
  public readonly bundle: s3assets.Asset;
  /** What the boot script was rendered from (tokens included). */
  public readonly bootSettings: BootSettings;
  /** The boot script (user data), tokens included. */
  public readonly bootScript: string;
  /** Whether the instances run the sandbox fakes. */
  public readonly sandbox: boolean;
  private readonly refreshAlarms: cloudwatch.IAlarm[] = [];

  constructor(scope: Construct, id: string, props: FleetProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const instanceType = props.instanceType ?? new ec2.InstanceType('m7g.large');
    const minCapacity = props.minCapacity ?? 3;
    const maxCapacity = props.maxCapacity ?? 12;
    const appPort = props.appPort ?? 8080;
    const sandbox = props.sandbox ?? false;
    const cpuTarget = props.cpuTargetPercent ?? 50;
    const requestsPerMinute = props.requestsPerInstancePerMinute ?? 6_000;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const zonalShift = props.zonalShift ?? true;
    this.sandbox = sandbox;

    if (!sandbox && (!props.paymentGateway || !props.recommendationsUrl)) {
      throw new Error(
        'Fleet needs paymentGateway and recommendationsUrl unless sandbox is true (the sandbox runs fakes of both)',
      );
    }
    if (sandbox && (props.paymentGateway || props.recommendationsUrl)) {
      throw new Error(
        'Fleet sandbox runs its own fakes: give either sandbox or paymentGateway/recommendationsUrl, not both',
      );
    }
    if (
      !Token.isUnresolved(minCapacity) &&
      !Token.isUnresolved(maxCapacity) &&
      (minCapacity < 1 || maxCapacity < minCapacity)
    ) {
      throw new Error(
        `Fleet capacity must satisfy 1 <= minCapacity <= maxCapacity, got ${minCapacity} and ${maxCapacity}`,
      );
    }
    if (instanceType.architecture !== ec2.InstanceArchitecture.ARM_64) {
      throw new Error(
        `Fleet instanceType ${instanceType} is not Graviton (arm64): choose one such as m7g.large`,
      );
    }

    this.key = new kms.Key(this, 'Key', {
      description: 'Encrypts the checkout fleet log group and admin token',
      enableKeyRotation: true,
      removalPolicy,
    });
    allowLogsToUseKey(this.key, 'AllowCloudWatchLogsForFleetLogs');
    this.logGroup = new logs.LogGroup(this, 'ServiceLogs', {
      logGroupName: `/${stack.stackName}/checkout`,
      encryptionKey: this.key,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy,
    });
    this.adminTokenSecret = props.adminTokenSecret ?? this.createAdminTokenSecret(removalPolicy);
    this.bundle = props.bundle ?? serviceBundleAsset(this, 'Bundle');
    this.autoScalingGroupName = `${stack.stackName}-checkout`;

    const instanceRole = createInstanceRole(this, props, {
      bundle: this.bundle,
      logGroup: this.logGroup,
      adminTokenSecret: this.adminTokenSecret,
      autoScalingGroupName: this.autoScalingGroupName,
      hostMetricsNamespace: FLEET_HOST_METRICS_NAMESPACE,
    });
    this.role = instanceRole.role;
    this.instancePolicy = instanceRole.policy;

    this.bootSettings = fleetBootSettings(this, props, {
      appPort,
      sandbox,
      bundle: this.bundle,
      autoScalingGroupName: this.autoScalingGroupName,
      lifecycleHookName: LAUNCH_HOOK_NAME,
      adminTokenSecret: this.adminTokenSecret,
      logGroup: this.logGroup,
      hostMetricsNamespace: FLEET_HOST_METRICS_NAMESPACE,
    });
    this.bootScript = renderBootScript(this.bootSettings);
    this.launchTemplate = createLaunchTemplate(this, {
      instanceType,
      bootScript: this.bootScript,
      role: this.role,
      securityGroup: props.securityGroup,
    });

    this.autoScalingGroup = createAutoScalingGroup(this, {
      vpc: props.vpc,
      launchTemplate: this.launchTemplate,
      autoScalingGroupName: this.autoScalingGroupName,
      minCapacity,
      maxCapacity,
      lifecycleHookName: LAUNCH_HOOK_NAME,
      zonalShift,
      notificationTopic: props.notificationTopic,
    });
    addInstanceRefresh(this.autoScalingGroup, () => this.refreshAlarms);
    if (props.notificationTopic?.masterKey instanceof kms.Key) {
      allowAutoScalingToEncrypt(props.notificationTopic.masterKey);
    }

    this.targetGroup = createTargetGroup(this, { vpc: props.vpc, appPort, group: this.autoScalingGroup });
    props.listener.addTargetGroups('Checkout', { targetGroups: [this.targetGroup] });
    addTargetTracking(this.autoScalingGroup, {
      cpuTargetPercent: cpuTarget,
      requestsPerInstancePerMinute: requestsPerMinute,
    });
  }

  /**
   * Alarms that stop an instance refresh when one fires during it (CloudFormation then
   * rolls the stack back to the previous launch template, through another refresh). At
   * most 10, as Auto Scaling allows.
   */
  public addRefreshAlarms(...alarms: cloudwatch.IAlarm[]): void {
    checkRefreshAlarmCount('Fleet.addRefreshAlarms', this.refreshAlarms.length + alarms.length);
    this.refreshAlarms.push(...alarms);
  }

  /** The alarms an instance refresh watches. */
  public get refreshAlarmList(): readonly cloudwatch.IAlarm[] {
    return [...this.refreshAlarms];
  }

  /** A metric of the service's embedded-metric lines (namespace ResilientShop/Checkout, Service=checkout). */
  public metricService(metricName: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { ...SERVICE_METRIC_DIMENSIONS },
      period: Duration.minutes(1),
      ...props,
    });
  }

  /** 1 while the payment circuit breaker of any process is open or half-open (Maximum). */
  public metricCircuitBreakerOpen(props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.metricService('CircuitBreakerOpen', { statistic: cloudwatch.Stats.MAXIMUM, ...props });
  }

  /** Requests the service answered 503 + Retry-After to shed load (Sum). */
  public metricRequestsShed(props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.metricService('RequestsShed', { statistic: cloudwatch.Stats.SUM, ...props });
  }

  private createAdminTokenSecret(removalPolicy: RemovalPolicy): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, 'AdminToken', {
      description: 'Bearer token of the checkout service admin routes (read by the fleet at service start)',
      encryptionKey: this.key,
      removalPolicy,
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
    });
    acknowledge(
      secret,
      [
        'AwsSolutions-SMG4',
        'NIST.800.53.R5-SecretsManagerRotationEnabled',
        'PCI.DSS.321-SecretsManagerRotationEnabled',
      ],
      'The admin token is read by the service at start; a rotation Lambda would change it without restarting the fleet, locking operators out. It is rotated by putting a new value and running an instance refresh (docs/runbooks/fleet-instance-refresh.md); instances also never live past 14 days.',
    );
    return secret;
  }
}
