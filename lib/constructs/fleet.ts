import { ArnFormat, Duration, Lazy, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
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
import { SERVICE_NODE_FLAGS } from '../../service/config';
import { acknowledge } from '../compliance';
import { BootSettings, FLEET_PATHS, SANDBOX_PORTS, renderBootScript } from '../fleet/boot-script';
import {
  ManagedPolicyGrantee,
  allowAutoScalingToEncrypt,
  secretId,
  secretPolicyArn,
} from '../fleet/instance-permissions';
import { serviceBundleAsset } from '../fleet/service-bundle';
import * as timings from '../fleet/timings';
import { allowLogsToUseKey } from '../kms';

/** The dimension every metric of the service's embedded-metric lines carries (service/metrics.ts). */
export const SERVICE_METRIC_DIMENSIONS = { Service: 'checkout' } as const;

/** Namespace of the CloudWatch agent's host metrics (memory, root disk) of the fleet. */
export const FLEET_HOST_METRICS_NAMESPACE = 'ResilientShop/Fleet';

/** The name of the launch lifecycle hook the boot script completes once the service is ready. */
export const LAUNCH_HOOK_NAME = 'checkout-ready';

/** What the fleet needs of the database tier (`Database` has all of it). */
export interface FleetDatabase {
  /** Host the service connects to: the proxy endpoint, or the cluster's writer endpoint. */
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
 * listener.
 *
 * - Launch template: AL2023 arm64 (latest, from the public SSM parameter), IMDSv2 with
 *   hop limit 1, encrypted gp3 root volume, detailed monitoring, no key pair (SSM Session
 *   Manager only), the user data of {@link renderBootScript}.
 * - Instance role, least privilege, in one customer managed policy: read its bundle, log
 *   in to the database as `checkout` (IAM), send to the two queues, write its log group,
 *   put host metrics to {@link FLEET_HOST_METRICS_NAMESPACE} only, read its two secrets,
 *   complete its own launch lifecycle action; plus AmazonSSMManagedInstanceCore.
 * - Target group on `/health/ready` (timings in lib/fleet/timings.ts), weighted random
 *   routing with anomaly mitigation, deregistration delay equal to the service's drain.
 * - Auto Scaling: ELB health checks, a launch lifecycle hook that holds each instance
 *   until the service is ready, launch-before-terminate maintenance, capacity
 *   rebalancing, AZ-impairment policy for zonal shift, CPU and request-count target
 *   tracking, failed-launch notifications, and an instance refresh on every launch
 *   template change (min healthy 100%, checkpoints, stopped by {@link addRefreshAlarms}).
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

    this.role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description:
        'Checkout fleet instances: bundle, database as checkout, queues, logs, metrics, secrets, SSM',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    this.instancePolicy = new iam.ManagedPolicy(this, 'InstancePolicy', {
      description: 'What a checkout fleet instance needs, and nothing else',
      roles: [this.role],
    });
    this.grantInstancePermissions(props);
    props.database.grantConnect(new ManagedPolicyGrantee(this.role, this.instancePolicy));

    const environment: Array<[string, string]> = [
      ['NODE_ENV', 'production'],
      ['PORT', String(appPort)],
      ['HOST', '0.0.0.0'],
      ['AWS_REGION', stack.region],
      ['DB_IAM_AUTH', 'true'],
      ['DB_HOST', props.database.endpoint],
      ['DB_PORT', Token.asString(props.database.connectionPort)],
      ['DB_USER', props.database.applicationUser],
      ['PAYMENT_URL', props.paymentGateway?.url ?? `http://127.0.0.1:${SANDBOX_PORTS.paymentGateway}`],
      [
        'RECOMMENDATIONS_URL',
        props.recommendationsUrl ?? `http://127.0.0.1:${SANDBOX_PORTS.recommendations}`,
      ],
      ['ORDER_EVENTS_QUEUE_URL', props.queues.orderEvents.queueUrl],
      ['PAYMENT_RETRY_QUEUE_URL', props.queues.paymentRetry.queueUrl],
      ['SHUTDOWN_DELAY_MS', String(timings.SERVICE_SHUTDOWN_DELAY.toMilliseconds())],
      ['DRAIN_TIMEOUT_MS', String(timings.SERVICE_DRAIN_TIMEOUT.toMilliseconds())],
      ['LOG_LEVEL', props.logLevel ?? 'info'],
    ];
    // RDS Proxy presents a certificate from a public CA; the cluster itself (no proxy:
    // the standby) presents one from the RDS CA, which Node.js does not trust by default.
    const trustRdsCa = props.database.proxy === undefined;
    if (trustRdsCa) environment.push(['NODE_EXTRA_CA_CERTS', FLEET_PATHS.rdsCaBundle]);

    this.bootSettings = {
      region: stack.region,
      appPort,
      bundle: { bucket: this.bundle.s3BucketName, key: this.bundle.s3ObjectKey },
      autoScalingGroupName: this.autoScalingGroupName,
      lifecycleHookName: LAUNCH_HOOK_NAME,
      environment,
      secrets: [
        { name: 'ADMIN_TOKEN', secretArn: secretId(this.adminTokenSecret) },
        ...(props.paymentGateway
          ? [{ name: 'PAYMENT_API_KEY', secretArn: secretId(props.paymentGateway.apiKeySecret) }]
          : []),
      ],
      sandbox,
      logGroupName: this.logGroup.logGroupName,
      hostMetricsNamespace: FLEET_HOST_METRICS_NAMESPACE,
      nodeFlags: SERVICE_NODE_FLAGS,
      stopTimeoutSeconds: timings.SERVICE_STOP_TIMEOUT.toSeconds(),
      readyDeadlineSeconds: timings.READY_DEADLINE.toSeconds(),
      trustRdsCa,
    };
    this.bootScript = renderBootScript(this.bootSettings);

    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
      instanceType,
      userData: ec2.UserData.custom(this.bootScript),
      role: this.role,
      securityGroup: props.securityGroup,
      httpEndpoint: true,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      // Only the host reaches the metadata service: a container or a forwarded request
      // one hop further gets no credentials.
      httpPutResponseHopLimit: 1,
      instanceMetadataTags: false,
      detailedMonitoring: true,
      ebsOptimized: true,
      instanceInitiatedShutdownBehavior: ec2.InstanceInitiatedShutdownBehavior.TERMINATE,
      blockDevices: [
        {
          // The AMI's 8 GiB plus room for five rotated 100 MB log files of each kind and the
          // packages; gp3's 3000 IOPS / 125 MB/s baseline does not depend on the size.
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(20, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'AutoScalingGroup', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate: this.launchTemplate,
      autoScalingGroupName: this.autoScalingGroupName,
      minCapacity,
      maxCapacity,
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: timings.HEALTH_CHECK_GRACE,
      }),
      defaultInstanceWarmup: timings.INSTANCE_WARMUP,
      // Launch the replacement before terminating, whatever the reason (health, rebalancing,
      // instance lifetime): capacity never dips below the desired count.
      minHealthyPercentage: 100,
      maxHealthyPercentage: 110,
      capacityRebalance: true,
      azCapacityDistributionStrategy: autoscaling.CapacityDistributionStrategy.BALANCED_BEST_EFFORT,
      // Every instance is replaced within 14 days: its OS packages and the secrets it read
      // at start are never older than that.
      maxInstanceLifetime: Duration.days(14),
      groupMetrics: [autoscaling.GroupMetrics.all()],
      notifications: props.notificationTopic
        ? [{ topic: props.notificationTopic, scalingEvents: autoscaling.ScalingEvents.ALL }]
        : undefined,
    });
    const cfnGroup = this.autoScalingGroup.node.defaultChild as autoscaling.CfnAutoScalingGroup;
    // In the group itself, not as a separate hook resource: a separate hook is created after
    // the group, and the instances of the first launch would skip it.
    cfnGroup.lifecycleHookSpecificationList = [
      {
        lifecycleHookName: LAUNCH_HOOK_NAME,
        lifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
        heartbeatTimeout: timings.LAUNCH_TIMEOUT.toSeconds(),
        defaultResult: 'ABANDON',
      },
    ];
    // cfn-lint 1.51's schema predates the AutoScalingInstanceRefresh update policy
    // (CloudFormation and aws-cdk-lib have it since mid-2026) and reports it as unknown
    // (E3016). Only that check is switched off, and only on this resource.
    cfnGroup.addMetadata('cfn-lint', { config: { ignore_checks: ['E3016'] } });
    if (zonalShift) {
      cfnGroup.availabilityZoneImpairmentPolicy = {
        zonalShiftEnabled: true,
        impairedZoneHealthCheckBehavior: 'IgnoreUnhealthy',
      };
    }
    cfnGroup.cfnOptions.updatePolicy = {
      autoScalingInstanceRefresh: {
        strategy: autoscaling.InstanceRefreshStrategy.ROLLING,
        preferences: {
          minHealthyPercentage: 100,
          maxHealthyPercentage: 110,
          instanceWarmup: timings.INSTANCE_WARMUP.toSeconds(),
          skipMatching: true,
          checkpointPercentages: [33, 66, 100],
          checkpointDelay: timings.REFRESH_BAKE_TIME.toSeconds(),
          bakeTime: timings.REFRESH_BAKE_TIME.toSeconds(),
          alarmSpecification: {
            alarms: Lazy.list(
              { produce: () => this.refreshAlarms.map((a) => a.alarmName) },
              { omitEmpty: true },
            ),
          },
        },
      },
    };
    if (props.notificationTopic?.masterKey instanceof kms.Key) {
      allowAutoScalingToEncrypt(props.notificationTopic.masterKey);
    }

    this.targetGroup = new elbv2.ApplicationTargetGroup(this, 'TargetGroup', {
      vpc: props.vpc,
      port: appPort,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.INSTANCE,
      targets: [this.autoScalingGroup],
      healthCheck: {
        path: '/health/ready',
        protocol: elbv2.Protocol.HTTP,
        port: 'traffic-port',
        interval: timings.HEALTH_CHECK_INTERVAL,
        timeout: timings.HEALTH_CHECK_TIMEOUT,
        healthyThresholdCount: timings.HEALTHY_THRESHOLD,
        unhealthyThresholdCount: timings.UNHEALTHY_THRESHOLD,
        healthyHttpCodes: '200',
      },
      deregistrationDelay: timings.DEREGISTRATION_DELAY,
      // Weighted random with anomaly mitigation sends less traffic to a target whose errors
      // and latency stand out (a gray failure the health check does not see). Slow start
      // does not combine with it, and is not needed: a target is ready when it registers.
      loadBalancingAlgorithmType: elbv2.TargetGroupLoadBalancingAlgorithmType.WEIGHTED_RANDOM,
      enableAnomalyMitigation: true,
    });
    props.listener.addTargetGroups('Checkout', { targetGroups: [this.targetGroup] });

    this.autoScalingGroup.scaleOnCpuUtilization('CpuTracking', { targetUtilizationPercent: cpuTarget });
    const requestTracking = this.autoScalingGroup.scaleOnRequestCount('RequestCountTracking', {
      targetRequestsPerMinute: requestsPerMinute,
    });
    // CDK makes the policy depend on the listener that its metric label already references;
    // cfn-lint reports the DependsOn as redundant (W3005). The reference alone orders creation.
    (requestTracking.node.defaultChild as autoscaling.CfnScalingPolicy).addDeletionOverride('DependsOn');

    this.acknowledgeFindings();
  }

  /**
   * Alarms that stop an instance refresh when one fires during it (CloudFormation then
   * rolls the stack back to the previous launch template, through another refresh). At
   * most 10, as Auto Scaling allows.
   */
  public addRefreshAlarms(...alarms: cloudwatch.IAlarm[]): void {
    if (this.refreshAlarms.length + alarms.length > 10) {
      throw new Error(
        `Fleet.addRefreshAlarms: an instance refresh watches at most 10 alarms, got ${this.refreshAlarms.length + alarms.length}`,
      );
    }
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

  private grantInstancePermissions(props: FleetProps): void {
    const stack = Stack.of(this);
    const policy = this.instancePolicy;
    policy.addStatements(
      new iam.PolicyStatement({
        sid: 'ReadServiceBundle',
        actions: ['s3:GetObject'],
        resources: [
          stack.formatArn({
            service: 's3',
            region: '',
            account: '',
            resource: this.bundle.s3BucketName,
            resourceName: this.bundle.s3ObjectKey,
          }),
        ],
      }),
      new iam.PolicyStatement({
        sid: 'SendOutboxMessages',
        actions: ['sqs:SendMessage'],
        resources: [props.queues.orderEvents.queueArn, props.queues.paymentRetry.queueArn],
      }),
      new iam.PolicyStatement({
        sid: 'WriteServiceLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [this.logGroup.logGroupArn],
      }),
      new iam.PolicyStatement({
        sid: 'PutHostMetrics',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': FLEET_HOST_METRICS_NAMESPACE } },
      }),
      new iam.PolicyStatement({
        sid: 'ReadServiceSecrets',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [
          secretPolicyArn(this.adminTokenSecret),
          ...(props.paymentGateway ? [secretPolicyArn(props.paymentGateway.apiKeySecret)] : []),
        ],
      }),
      new iam.PolicyStatement({
        sid: 'CompleteOwnLaunch',
        actions: ['autoscaling:CompleteLifecycleAction'],
        resources: [
          stack.formatArn({
            service: 'autoscaling',
            resource: 'autoScalingGroup',
            resourceName: `*:autoScalingGroupName/${this.autoScalingGroupName}`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    const secretKeys = [
      this.adminTokenSecret.encryptionKey,
      props.paymentGateway?.apiKeySecret.encryptionKey,
    ];
    const decryptVia = (service: string, keys: (kms.IKey | undefined)[], sid: string, actions: string[]) => {
      const arns = [...new Set(keys.filter((k): k is kms.IKey => k !== undefined).map((k) => k.keyArn))];
      if (arns.length === 0) return;
      policy.addStatements(
        new iam.PolicyStatement({
          sid,
          actions,
          resources: arns,
          conditions: { StringEquals: { 'kms:ViaService': `${service}.${stack.region}.amazonaws.com` } },
        }),
      );
    };
    decryptVia('secretsmanager', secretKeys, 'DecryptServiceSecrets', ['kms:Decrypt']);
    decryptVia(
      'sqs',
      [props.queues.orderEvents.encryptionMasterKey, props.queues.paymentRetry.encryptionMasterKey],
      'EncryptOutboxMessages',
      ['kms:GenerateDataKey', 'kms:Decrypt'],
    );
  }

  private acknowledgeFindings(): void {
    acknowledge(
      this.role,
      ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]'],
      'AmazonSSMManagedInstanceCore is the policy Systems Manager documents for Session Manager, the only way operators reach an instance (no SSH, no key pair).',
    );
    acknowledge(
      this.instancePolicy,
      ['AwsSolutions-IAM5[Resource::*]'],
      'cloudwatch:PutMetricData has no resource-level permissions; the statement is limited by its cloudwatch:namespace condition to the fleet host-metrics namespace.',
    );
    const stack = Stack.of(this);
    acknowledge(
      this.instancePolicy,
      [
        `AwsSolutions-IAM5[Resource::arn:${stack.partition}:autoscaling:${stack.region}:${stack.account}:autoScalingGroup:*:autoScalingGroupName/${this.autoScalingGroupName}]`,
      ],
      'An Auto Scaling group ARN holds an id AWS assigns at creation; the wildcard stands for that id only, and the group name after it pins the statement to this fleet.',
    );
  }
}
