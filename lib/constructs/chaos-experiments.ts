import { ArnFormat, Duration, RemovalPolicy, Stack, Tags, Token } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as fis from 'aws-cdk-lib/aws-fis';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge, nagResourceName } from '../compliance';
import { allowLogsToUseKey } from '../kms';
import { FaultInjectionLocation } from './worker-function';

/**
 * Tag key that marks the resources an experiment selects by tag and that carry no tag
 * of their own to select them by (the fleet's Auto Scaling group, the Aurora cluster).
 * Its value names the stack, so two deployments in one account and region never select
 * each other's resources.
 */
export const FIS_TARGET_TAG = 'resilient-shop:fis-target';

/** Key of the resource Metadata entry holding an experiment's {@link GameDayNotes}. */
export const GAME_DAY_METADATA = 'resilient-shop:game-day';

/**
 * The tag EC2 Auto Scaling puts on every instance it launches. Instances are selected by
 * it (and the IAM policies are conditioned on it) because nobody can set it by hand: no
 * instance can be tagged into an experiment's blast radius.
 */
export const ASG_INSTANCE_TAG = 'aws:autoscaling:groupName';

/** The key prefix under which FIS writes the fault configurations of Lambda actions. */
export const FAULT_CONFIG_PREFIX = 'FisConfigs/';

/** How long each experiment (or fault of the composed one) lasts. */
export const EXPERIMENT_DURATIONS = {
  /** The instances of one AZ stay stopped this long (unless Auto Scaling replaced them). */
  stopInstances: Duration.minutes(10),
  /** CPU stress on the fleet. */
  cpuStress: Duration.minutes(10),
  /** The application subnet of one AZ loses all traffic. */
  networkDisruption: Duration.minutes(5),
  /** Every invocation of the instrumented functions fails. */
  lambdaErrors: Duration.minutes(5),
  /** The AZ power interruption: instances down and launches failing in the AZ. */
  powerInterruption: Duration.minutes(30),
  /** Within it, every subnet of the AZ drops all traffic (connections time out, clients re-resolve). */
  powerSubnetDisruption: Duration.minutes(2),
  /** Within it, the zonal autoshift starts this long after the start (as AWS's scenario does). */
  autoshiftDelay: Duration.minutes(5),
} as const;

/** The AWS FIS SSM document that stresses CPU with stress-ng. */
export const CPU_STRESS_DOCUMENT = 'AWSFIS-Run-CPU-Stress';

/** The load the CPU stress puts on every vCPU, percent. */
export const CPU_STRESS_LOAD_PERCENT = 80;

/**
 * What the game-day document (docs/game-day.md, `npm run docs:game-day`) says about an
 * experiment. Kept in the template's resource Metadata so the document is rendered from
 * the synthesized template, next to the targets, actions and stop conditions it describes.
 */
export interface GameDayNotes {
  /** A short title. */
  readonly title: string;
  /** What the system is expected to do: the experiment tests this. */
  readonly hypothesis: string;
  /** Which resources are hit, and what is deliberately left alone. */
  readonly blastRadius: string;
  /** What must hold during and after the run; an item that does not hold is a finding. */
  readonly mustHold: readonly string[];
  /** Where to look while it runs. */
  readonly watch: readonly string[];
}

/** A function the Lambda experiment can fail: `WorkerFunction` is one. */
export interface FaultInjectableFunction {
  /** The function. */
  readonly function: lambda.IFunction;
  /** Adds the FIS extension layer and its environment, and lets the role read `location`. */
  enableFaultInjection(location: FaultInjectionLocation): void;
}

/** The functions of the Lambda experiment. */
export interface LambdaFaultTargets {
  /** Functions whose invocations fail during the experiment; they are instrumented here. */
  readonly functions: readonly FaultInjectableFunction[];
  /**
   * Further alarms that stop the experiment, such as the dead-letter alarms of the queues
   * the functions consume.
   *
   * @default - the `stopAlarm` only
   */
  readonly stopAlarms?: readonly cloudwatch.IAlarm[];
}

/** Properties of {@link ChaosExperiments}. */
export interface ChaosExperimentsProps {
  /**
   * The alarm that stops every experiment: customers are affected (the fleet's composite
   * "checkout impaired" alarm). Its description should link its runbook.
   */
  readonly stopAlarm: cloudwatch.IAlarm;
  /** The VPC: the AZ's subnets are the network experiments' targets. */
  readonly vpc: ec2.IVpc;
  /**
   * The AZ the zonal experiments impair. Choose the AZ of the database writer to include
   * a failover in the power interruption.
   */
  readonly availabilityZone: string;
  /** The checkout fleet's group; it must have been created in this app (it is tagged). */
  readonly autoScalingGroup: autoscaling.IAutoScalingGroup;
  /** The load balancer in front of the fleet: the resource the zonal autoshift moves traffic for. */
  readonly loadBalancer: elbv2.IApplicationLoadBalancer;

  /**
   * Whether the load balancer is enabled for zonal autoshift. The power interruption's
   * autoshift then shifts it as AWS would (`zonalAutoshiftStatus` ENABLED); otherwise it is
   * shifted anyway (ANY), which is a zonal shift all the same.
   *
   * @default false
   */
  readonly zonalAutoshiftEnabled?: boolean;

  /**
   * An Aurora cluster with at least one reader (FailoverDBCluster needs a replica to promote):
   * the failover experiment fails it over, and the power interruption does when its writer
   * is in the AZ. Must have been created in this app (it is tagged).
   *
   * @default - no failover experiment, and no failover in the power interruption
   */
  readonly failoverCluster?: rds.IDatabaseCluster;

  /**
   * The functions of the Lambda invocation-error experiment.
   *
   * @default - no Lambda experiment, no fault configuration bucket, no function instrumented
   */
  readonly lambdaFaults?: LambdaFaultTargets;

  /**
   * How long the experiments' logs are kept.
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * What happens to the log group, its key and the fault configuration bucket on stack
   * deletion.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** One experiment, as the constructor builds it. */
interface ExperimentSpec {
  /** Construct id (stable: renaming it replaces the template and its role). */
  readonly id: string;
  /** Kebab-case name: the template's `Name` tag is `<stack name>-<key>`. */
  readonly key: string;
  readonly notes: GameDayNotes;
  readonly targets: Record<string, fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty>;
  readonly actions: Record<string, fis.CfnExperimentTemplate.ExperimentTemplateActionProperty>;
  readonly statements: iam.PolicyStatement[];
  readonly stopAlarms?: readonly cloudwatch.IAlarm[];
  /** `skip` where a target may rightly resolve to nothing (the writer elsewhere). */
  readonly emptyTargetResolutionMode?: 'fail' | 'skip';
}

/** FIS rejects a longer description. */
const MAX_DESCRIPTION_LENGTH = 512;

const iso = (d: Duration): string => d.toIsoString();
const minutes = (d: Duration): number => d.toMinutes();

/**
 * Tier 8, chaos: AWS FIS experiment templates for the failures the platform is built to
 * survive, inert until someone starts one (they cost nothing until then):
 *
 * | experiment | fault | blast radius |
 * | --- | --- | --- |
 * | `stop-az-instances` | stop the fleet's instances of one AZ, start them after 10 min | one AZ's instances |
 * | `aurora-failover` | fail the Aurora cluster over to its reader | the cluster (with `failoverCluster`) |
 * | `fleet-cpu-stress` | 80% CPU on every fleet instance for 10 min (SSM, `AWSFIS-Run-CPU-Stress`) | the fleet |
 * | `az-network-disruption` | the application subnet of one AZ drops all traffic for 5 min | one subnet |
 * | `lambda-invocation-errors` | every invocation of the given functions fails for 5 min | those functions (with `lambdaFaults`) |
 * | `az-power-interruption` | a stand-in for AWS's "AZ Availability: Power Interruption" scenario, ending in a zonal autoshift | one AZ |
 *
 * Every template is stopped by `stopAlarm` (and the Lambda one by `lambdaFaults.stopAlarms`),
 * logs to a KMS-encrypted log group with retention, and runs as a role of its own that may
 * do what its actions need to their targets and nothing else (the role trusts FIS only for
 * experiments of this account and region). Instances are selected by the tag Auto Scaling
 * sets ({@link ASG_INSTANCE_TAG}) and one AZ where the fault is zonal; the group and the
 * cluster get {@link FIS_TARGET_TAG}. The game-day notes (hypothesis, blast radius, what
 * must hold) are in each template's Metadata ({@link GAME_DAY_METADATA}) and rendered into
 * docs/game-day.md by `npm run docs:game-day`.
 *
 * @see https://docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html
 */
export class ChaosExperiments extends Construct {
  /** The experiment templates, by key (`stop-az-instances`, ...). */
  public readonly templates: Readonly<Record<string, fis.CfnExperimentTemplate>>;
  /** The experiment roles, by key. */
  public readonly roles: Readonly<Record<string, iam.Role>>;
  /** Where every experiment logs (schema version 2). */
  public readonly logGroup: logs.LogGroup;
  /** Encrypts the log group. */
  public readonly logKey: kms.Key;
  /** Where FIS writes Lambda fault configurations (with `lambdaFaults` only). */
  public readonly faultConfigBucket?: s3.Bucket;
  /** The AZ the zonal experiments impair. */
  public readonly availabilityZone: string;

  private readonly props: ChaosExperimentsProps;
  private readonly asgName: string;
  private readonly asgTagValue: string;
  private readonly clusterTagValue: string;

  constructor(scope: Construct, id: string, props: ChaosExperimentsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const az = props.availabilityZone;
    this.props = props;
    this.availabilityZone = az;
    this.asgName = props.autoScalingGroup.autoScalingGroupName;
    this.asgTagValue = `${stack.stackName}/checkout-fleet`;
    this.clusterTagValue = `${stack.stackName}/database`;

    const vpcAzs = props.vpc.availabilityZones;
    if (!Token.isUnresolved(az) && !vpcAzs.some(Token.isUnresolved) && !vpcAzs.includes(az)) {
      throw new Error(
        `ChaosExperiments availabilityZone ${az} is not one of the VPC's AZs (${vpcAzs.join(', ')}): choose one of them`,
      );
    }
    if (props.lambdaFaults && props.lambdaFaults.functions.length === 0) {
      throw new Error(
        'ChaosExperiments lambdaFaults.functions is empty: give at least one function, or leave lambdaFaults out',
      );
    }
    this.tagTargets();

    this.logKey = new kms.Key(this, 'LogKey', {
      description: 'Encrypts the AWS FIS experiment logs',
      enableKeyRotation: true,
      removalPolicy,
    });
    allowLogsToUseKey(this.logKey, 'AllowCloudWatchLogsForExperimentLogs');
    this.logGroup = new logs.LogGroup(this, 'ExperimentLogs', {
      // Under /aws/vendedlogs/: CloudWatch Logs covers vended deliveries there with one
      // resource policy instead of one entry per log group (whose size is limited).
      logGroupName: `/aws/vendedlogs/fis/${stack.stackName}`,
      encryptionKey: this.logKey,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy,
    });

    if (props.lambdaFaults) {
      this.faultConfigBucket = this.createFaultConfigBucket(removalPolicy);
      for (const fn of props.lambdaFaults.functions) {
        fn.enableFaultInjection({ bucket: this.faultConfigBucket, prefix: FAULT_CONFIG_PREFIX });
      }
    }

    const specs: ExperimentSpec[] = [
      this.stopAzInstances(),
      ...(props.failoverCluster ? [this.auroraFailover(props.failoverCluster)] : []),
      this.fleetCpuStress(),
      this.azNetworkDisruption(),
      ...(props.lambdaFaults ? [this.lambdaInvocationErrors(props.lambdaFaults)] : []),
      this.azPowerInterruption(),
    ];
    const templates: Record<string, fis.CfnExperimentTemplate> = {};
    const roles: Record<string, iam.Role> = {};
    for (const spec of specs) {
      const { template, role } = this.createExperiment(spec);
      templates[spec.key] = template;
      roles[spec.key] = role;
    }
    this.templates = templates;
    this.roles = roles;
    const lambdaRole = roles['lambda-invocation-errors'];
    if (this.faultConfigBucket && lambdaRole) {
      // Whoever writes under the prefix makes the instrumented functions fail: FIS, as the
      // Lambda experiment's role, and nobody else.
      this.faultConfigBucket.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyTheExperimentWritesFaultConfigurations',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:PutObject', 's3:DeleteObject'],
          resources: [this.faultConfigBucket.arnForObjects('*')],
          conditions: { ArnNotEquals: { 'aws:PrincipalArn': lambdaRole.roleArn } },
        }),
      );
    }
  }

  private get stackName(): string {
    return Stack.of(this).stackName;
  }

  /** Tags the group and the cluster (the group's instances carry {@link ASG_INSTANCE_TAG} already). */
  private tagTargets(): void {
    const cfnGroup = this.props.autoScalingGroup.node.defaultChild;
    if (!(cfnGroup instanceof autoscaling.CfnAutoScalingGroup)) {
      throw new Error(
        'ChaosExperiments autoScalingGroup must be a group created in this app: the experiments tag it to select it',
      );
    }
    Tags.of(cfnGroup).add(FIS_TARGET_TAG, this.asgTagValue, { applyToLaunchedInstances: false });
    const cluster = this.props.failoverCluster;
    if (cluster) {
      const cfnCluster = cluster.node.defaultChild;
      if (!(cfnCluster instanceof rds.CfnDBCluster)) {
        throw new Error(
          'ChaosExperiments failoverCluster must be a cluster created in this app: the power interruption tags it to select it',
        );
      }
      Tags.of(cfnCluster).add(FIS_TARGET_TAG, this.clusterTagValue);
    }
  }

  /** Builds one template with its role and policy. */
  private createExperiment(spec: ExperimentSpec): { template: fis.CfnExperimentTemplate; role: iam.Role } {
    const stack = Stack.of(this);
    const scope = new Construct(this, spec.id);
    const role = new iam.Role(scope, 'Role', {
      assumedBy: new iam.ServicePrincipal('fis.amazonaws.com', {
        // Only FIS experiments of this account and region may assume it (confused deputy).
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({ service: 'fis', resource: 'experiment', resourceName: '*' }),
          },
        },
      }),
      description: `AWS FIS experiment ${spec.key}: its actions on its targets, and log delivery`,
    });
    const policy = new iam.ManagedPolicy(scope, 'Policy', {
      description: `What the ${spec.key} experiment does, and nothing else`,
      roles: [role],
      statements: [...spec.statements, ...this.logDeliveryStatements()],
    });
    this.acknowledgeWildcards(policy, [...spec.statements, ...this.logDeliveryStatements()]);

    const description = `${spec.notes.title}. Hypothesis: ${spec.notes.hypothesis}`;
    if (description.length > MAX_DESCRIPTION_LENGTH) {
      throw new Error(
        `ChaosExperiments ${spec.key}: the description is ${description.length} characters, FIS accepts ${MAX_DESCRIPTION_LENGTH}; shorten the title or hypothesis`,
      );
    }
    const stopAlarms = [this.props.stopAlarm, ...(spec.stopAlarms ?? [])];
    const template = new fis.CfnExperimentTemplate(scope, 'Template', {
      description,
      roleArn: role.roleArn,
      targets: spec.targets,
      actions: spec.actions,
      stopConditions: stopAlarms.map((alarm) => ({ source: 'aws:cloudwatch:alarm', value: alarm.alarmArn })),
      logConfiguration: {
        // Typed `any` by CDK, so written as CloudFormation spells it.
        cloudWatchLogsConfiguration: { LogGroupArn: this.logGroup.logGroupArn },
        logSchemaVersion: 2,
      },
      experimentOptions: {
        accountTargeting: 'single-account',
        emptyTargetResolutionMode: spec.emptyTargetResolutionMode ?? 'fail',
      },
      tags: { Name: `${this.stackName}-${spec.key}` },
    });
    // FIS validates the role's permissions only when an experiment starts; the policy
    // must exist by then, and by creation time is the earliest CloudFormation can promise.
    template.node.addDependency(policy);
    template.addMetadata(GAME_DAY_METADATA, spec.notes);
    return { template, role };
  }

  /** What FIS needs to deliver the experiment log to CloudWatch Logs (vended logs). */
  private logDeliveryStatements(): iam.PolicyStatement[] {
    const stack = Stack.of(this);
    return [
      new iam.PolicyStatement({
        sid: 'CreateLogDelivery',
        actions: ['logs:CreateLogDelivery'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'LetLogDeliveryWriteTheLogGroup',
        actions: ['logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups'],
        resources: [
          stack.formatArn({
            service: 'logs',
            resource: 'log-group',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    ];
  }

  // --- targets -------------------------------------------------------------------------

  /** The fleet's running instances in the AZ. */
  private instancesInAzTarget(): fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty {
    return {
      resourceType: 'aws:ec2:instance',
      resourceTags: { [ASG_INSTANCE_TAG]: this.asgName },
      filters: [
        { path: 'Placement.AvailabilityZone', values: [this.availabilityZone] },
        { path: 'State.Name', values: ['running'] },
      ],
      selectionMode: 'ALL',
    };
  }

  private subnetArns(subnets: readonly ec2.ISubnet[]): string[] {
    const stack = Stack.of(this);
    return subnets.map((s) =>
      stack.formatArn({ service: 'ec2', resource: 'subnet', resourceName: s.subnetId }),
    );
  }

  /** The application (private, with egress) subnets of the AZ. */
  private appSubnetsInAz(): ec2.ISubnet[] {
    return this.inAz(this.props.vpc.privateSubnets, 'private subnet with egress');
  }

  /** Every subnet of the AZ: public, application and data. */
  private allSubnetsInAz(): ec2.ISubnet[] {
    const vpc = this.props.vpc;
    return this.inAz([...vpc.publicSubnets, ...vpc.privateSubnets, ...vpc.isolatedSubnets], 'subnet');
  }

  private inAz(subnets: readonly ec2.ISubnet[], what: string): ec2.ISubnet[] {
    const found = subnets.filter((s) => s.availabilityZone === this.availabilityZone);
    if (found.length === 0) {
      throw new Error(`ChaosExperiments: the VPC has no ${what} in ${this.availabilityZone}`);
    }
    return found;
  }

  // --- permissions ---------------------------------------------------------------------

  private instanceArns(): string {
    return Stack.of(this).formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
  }

  /** Stop and start the group's instances, and start them again with their encrypted volumes. */
  private stopStartStatements(): iam.PolicyStatement[] {
    const stack = Stack.of(this);
    return [
      new iam.PolicyStatement({
        sid: 'StopAndStartFleetInstances',
        actions: ['ec2:StopInstances', 'ec2:StartInstances'],
        resources: [this.instanceArns()],
        conditions: { StringEquals: { [`aws:ResourceTag/${ASG_INSTANCE_TAG}`]: this.asgName } },
      }),
      new iam.PolicyStatement({
        // Starting an instance with an encrypted EBS volume makes EC2 create a grant on the
        // volume's key for the caller (the account's default EBS key: its ARN is not known here).
        sid: 'StartEncryptedVolumes',
        actions: ['kms:CreateGrant'],
        resources: [stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
        conditions: {
          StringEquals: { 'kms:ViaService': `ec2.${stack.region}.amazonaws.com` },
          Bool: { 'kms:GrantIsForAWSResource': 'true' },
        },
      }),
      this.describeStatement('DescribeInstances', ['ec2:DescribeInstances']),
    ];
  }

  private describeStatement(sid: string, actions: string[]): iam.PolicyStatement {
    return new iam.PolicyStatement({ sid, actions, resources: ['*'] });
  }

  private tagLookupStatement(): iam.PolicyStatement {
    return this.describeStatement('ResolveTargetsByTag', ['tag:GetResources']);
  }

  private failoverStatements(cluster: rds.IDatabaseCluster): iam.PolicyStatement[] {
    const stack = Stack.of(this);
    return [
      new iam.PolicyStatement({
        sid: 'FailOverTheCluster',
        actions: ['rds:FailoverDBCluster'],
        resources: [cluster.clusterArn],
      }),
      new iam.PolicyStatement({
        sid: 'DescribeClustersAndWriter',
        actions: ['rds:DescribeDBClusters', 'rds:DescribeDBInstances'],
        resources: [
          stack.formatArn({
            service: 'rds',
            resource: 'cluster',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
          stack.formatArn({
            service: 'rds',
            resource: 'db',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    ];
  }

  /**
   * What `aws:network:disrupt-connectivity` needs (AWSFaultInjectionSimulatorNetworkAccess,
   * scoped): clone the subnets' network ACL into one tagged `managedByFIS`, swap it in for
   * the target subnets, then swap the original back and delete the clone.
   */
  private networkStatements(subnets: readonly ec2.ISubnet[]): iam.PolicyStatement[] {
    const stack = Stack.of(this);
    const networkAcls = stack.formatArn({ service: 'ec2', resource: 'network-acl', resourceName: '*' });
    const vpcArn = stack.formatArn({ service: 'ec2', resource: 'vpc', resourceName: this.props.vpc.vpcId });
    return [
      new iam.PolicyStatement({
        sid: 'CreateFisNetworkAcl',
        actions: ['ec2:CreateNetworkAcl'],
        resources: [networkAcls],
        conditions: { StringEquals: { 'aws:RequestTag/managedByFIS': 'true' } },
      }),
      new iam.PolicyStatement({
        sid: 'CreateNetworkAclInTheVpc',
        actions: ['ec2:CreateNetworkAcl'],
        resources: [vpcArn],
      }),
      new iam.PolicyStatement({
        sid: 'TagFisNetworkAcl',
        actions: ['ec2:CreateTags'],
        resources: [networkAcls],
        conditions: {
          StringEquals: { 'ec2:CreateAction': 'CreateNetworkAcl', 'aws:RequestTag/managedByFIS': 'true' },
        },
      }),
      new iam.PolicyStatement({
        sid: 'EditAndDeleteFisNetworkAcl',
        actions: ['ec2:CreateNetworkAclEntry', 'ec2:DeleteNetworkAcl'],
        resources: [networkAcls, vpcArn],
        conditions: { StringEquals: { 'ec2:ResourceTag/managedByFIS': 'true' } },
      }),
      new iam.PolicyStatement({
        sid: 'SwapTargetSubnetsNetworkAcl',
        actions: ['ec2:ReplaceNetworkAclAssociation'],
        resources: [networkAcls, ...this.subnetArns(subnets)],
      }),
      this.describeStatement('DescribeNetwork', [
        'ec2:DescribeVpcs',
        'ec2:DescribeSubnets',
        'ec2:DescribeNetworkAcls',
        'ec2:DescribeManagedPrefixLists',
        'ec2:GetManagedPrefixListEntries',
      ]),
    ];
  }

  // --- experiments ---------------------------------------------------------------------

  private stopAzInstances(): ExperimentSpec {
    const az = this.availabilityZone;
    const d = EXPERIMENT_DURATIONS.stopInstances;
    return {
      id: 'StopAzInstances',
      key: 'stop-az-instances',
      notes: {
        title: `Stop the fleet's instances in ${az}`,
        hypothesis:
          'The load balancer stops routing to the stopped instances within 30 s (two failed health checks), ' +
          'the other AZs carry checkout meanwhile, and Auto Scaling replaces the instances (it counts a ' +
          'stopped instance unhealthy) before they are started again.',
        blastRadius: `The running instances of the fleet's Auto Scaling group in ${az}; nothing in the other AZs, no database, no Lambda.`,
        mustHold: [
          'Checkout 5xx stay below 1% of requests and p99 below 2 s (the thresholds of the composite alarm that stops the run).',
          'No lost orders: every 201 answered during the run is found by GET /v1/orders/:id afterwards, and order-events-dlq stays empty.',
          `Healthy targets are back at the fleet minimum within ${minutes(d)} minutes (Auto Scaling activity shows the replacements).`,
        ],
        watch: [
          'Target group HealthyHostCount per AZ, and Auto Scaling activity history.',
          'ALB 5xx and TargetResponseTime p99 (the FleetAlarms alarms).',
        ],
      },
      targets: { FleetInstancesInAz: this.instancesInAzTarget() },
      actions: {
        StopInstances: {
          actionId: 'aws:ec2:stop-instances',
          description: `Stop the fleet's instances in ${az}; start them after ${minutes(d)} minutes`,
          parameters: {
            startInstancesAfterDuration: iso(d),
            // Auto Scaling terminates the stopped instances it replaces: not a failure.
            completeIfInstancesTerminated: 'true',
          },
          targets: { Instances: 'FleetInstancesInAz' },
        },
      },
      statements: [...this.stopStartStatements(), this.tagLookupStatement()],
    };
  }

  private auroraFailover(cluster: rds.IDatabaseCluster): ExperimentSpec {
    return {
      id: 'AuroraFailover',
      key: 'aurora-failover',
      notes: {
        title: 'Fail the Aurora cluster over to its reader',
        hypothesis:
          'Aurora promotes the reader within about a minute; RDS Proxy keeps client connections and ' +
          'reconnects to the new writer, so checkout requests wait or get 503 with Retry-After, never a ' +
          '5xx storm, and no order is lost or charged twice.',
        blastRadius:
          'The Aurora cluster of this region (its writer restarts as a reader); the fleet and workers only through their connections.',
        mustHold: [
          'Checkout 5xx stay below 1% of requests and p99 below 2 s (the thresholds of the composite alarm that stops the run).',
          'No lost orders: every 201 answered during the run is found by GET /v1/orders/:id afterwards, and no order is charged twice (one charge per order id at the gateway).',
          'The database alarms (connections, replica lag) return to OK within 10 minutes.',
        ],
        watch: [
          'RDS events of the cluster (failover started and completed), and DatabaseConnections.',
          "ALB 5xx, the service's RequestsShed and CircuitBreakerOpen metrics.",
        ],
      },
      targets: {
        Cluster: {
          resourceType: 'aws:rds:cluster',
          resourceArns: [cluster.clusterArn],
          selectionMode: 'ALL',
        },
      },
      actions: {
        FailoverCluster: {
          actionId: 'aws:rds:failover-db-cluster',
          description: 'Fail the cluster over: its reader becomes the writer',
          targets: { Clusters: 'Cluster' },
        },
      },
      statements: [...this.failoverStatements(cluster), this.tagLookupStatement()],
    };
  }

  private fleetCpuStress(): ExperimentSpec {
    const d = EXPERIMENT_DURATIONS.cpuStress;
    return {
      id: 'FleetCpuStress',
      key: 'fleet-cpu-stress',
      notes: {
        title: `Stress every fleet instance's CPU to ${CPU_STRESS_LOAD_PERCENT}%`,
        hypothesis:
          'CPU target tracking (50%) adds instances within a few minutes; the new, unstressed instances take ' +
          'their share, and p99 latency stays below 2 s while the service sheds load (503 + Retry-After) rather ' +
          'than failing requests.',
        blastRadius: `Every running instance of the fleet (stress-ng through SSM Run Command, ${minutes(d)} minutes); instances launched during the run are not stressed.`,
        mustHold: [
          'Checkout 5xx stay below 1% of requests and p99 below 2 s (the thresholds of the composite alarm that stops the run).',
          'The group scales out during the run and back in after it (Auto Scaling activity history).',
          'No lost orders: every 201 answered during the run is found by GET /v1/orders/:id afterwards.',
        ],
        watch: [
          'CPUUtilization of the group, GroupInServiceInstances, and the RequestsShed metric.',
          'The SSM Run Command history of the stress command (one invocation per instance).',
        ],
      },
      targets: {
        FleetInstances: {
          resourceType: 'aws:ec2:instance',
          resourceTags: { [ASG_INSTANCE_TAG]: this.asgName },
          filters: [{ path: 'State.Name', values: ['running'] }],
          selectionMode: 'ALL',
        },
      },
      actions: {
        StressCpu: {
          actionId: 'aws:ssm:send-command',
          description: `Run ${CPU_STRESS_DOCUMENT} on every fleet instance for ${minutes(d)} minutes`,
          parameters: {
            documentArn: this.cpuStressDocumentArn(),
            documentParameters: JSON.stringify({
              DurationSeconds: String(d.toSeconds()),
              CPU: '0',
              LoadPercent: String(CPU_STRESS_LOAD_PERCENT),
              InstallDependencies: 'True',
            }),
            // FIS watches the command a minute longer than it runs.
            duration: iso(d.plus(Duration.minutes(1))),
          },
          targets: { Instances: 'FleetInstances' },
        },
      },
      statements: [
        new iam.PolicyStatement({
          sid: 'RunCpuStressDocument',
          actions: ['ssm:SendCommand'],
          resources: [this.cpuStressDocumentArn()],
        }),
        new iam.PolicyStatement({
          sid: 'RunOnFleetInstancesOnly',
          actions: ['ssm:SendCommand'],
          resources: [this.instanceArns()],
          conditions: { StringEquals: { [`ssm:resourceTag/${ASG_INSTANCE_TAG}`]: this.asgName } },
        }),
        this.describeStatement('FollowCommands', ['ssm:ListCommands', 'ssm:CancelCommand']),
        this.describeStatement('DescribeInstances', ['ec2:DescribeInstances']),
        this.tagLookupStatement(),
      ],
    };
  }

  private cpuStressDocumentArn(): string {
    return Stack.of(this).formatArn({
      service: 'ssm',
      account: '',
      resource: 'document',
      resourceName: CPU_STRESS_DOCUMENT,
    });
  }

  private azNetworkDisruption(): ExperimentSpec {
    const az = this.availabilityZone;
    const subnets = this.appSubnetsInAz();
    const d = EXPERIMENT_DURATIONS.networkDisruption;
    return {
      id: 'AzNetworkDisruption',
      key: 'az-network-disruption',
      notes: {
        title: `Cut the application subnet of ${az} off the network`,
        hypothesis:
          'The instances there fail their health checks and the load balancer routes around them within 30 s; ' +
          'worker invocations whose network interface is there time out and their messages are retried; ' +
          'callers of interface endpoints in that subnet retry on the other AZs.',
        blastRadius: `The private subnet with egress of ${az} (fleet instances, Lambda network interfaces, interface endpoints) for ${minutes(d)} minutes. The data subnet is left alone: a partition does not make Aurora fail over, the power interruption covers that.`,
        mustHold: [
          'Checkout 5xx stay below 1% of requests and p99 below 2 s (the thresholds of the composite alarm that stops the run).',
          'No lost orders: every 201 answered during the run is found by GET /v1/orders/:id afterwards, and order-events-dlq stays empty.',
          'The subnets have their own network ACL back after the run (FIS deletes the one tagged managedByFIS).',
        ],
        watch: [
          'Target group UnHealthyHostCount per AZ, ALB 5xx and p99.',
          'Age of the oldest message in order-events, Lambda errors of the workers.',
        ],
      },
      targets: {
        AppSubnetsInAz: {
          resourceType: 'aws:ec2:subnet',
          resourceArns: this.subnetArns(subnets),
          selectionMode: 'ALL',
        },
      },
      actions: {
        DisruptConnectivity: {
          actionId: 'aws:network:disrupt-connectivity',
          description: `Deny all traffic in and out of the application subnet of ${az} for ${minutes(d)} minutes`,
          parameters: { scope: 'all', duration: iso(d) },
          targets: { Subnets: 'AppSubnetsInAz' },
        },
      },
      statements: this.networkStatements(subnets),
    };
  }

  private lambdaInvocationErrors(faults: LambdaFaultTargets): ExperimentSpec {
    const bucket = this.faultConfigBucket!;
    const d = EXPERIMENT_DURATIONS.lambdaErrors;
    const functionArns = faults.functions.map((f) => f.function.functionArn);
    return {
      id: 'LambdaInvocationErrors',
      key: 'lambda-invocation-errors',
      notes: {
        title: 'Fail every invocation of the queue workers',
        hypothesis:
          'Each failed batch returns to its queue and is received again after the visibility timeout (6 x the ' +
          'function timeout); no message reaches a dead-letter queue within the run, and the backlog drains ' +
          'within one visibility timeout after it. Checkout is not affected: the outbox only enqueues.',
        blastRadius: `The invocations of the instrumented functions, before their handler runs (no side effect), for ${minutes(d)} minutes; the FIS extension takes up to a minute to pick the fault up and about 20 s to drop it.`,
        mustHold: [
          'No message in any dead-letter queue (the dead-letter alarm also stops the run).',
          'The age of the oldest order-events message is back under its alarm threshold within one visibility timeout after the run.',
          'Every order confirmed during the run is fulfilled once (one fulfilment per event id).',
        ],
        watch: [
          'Lambda Errors and Invocations of the workers, and their log lines from the AWS FIS extension.',
          'ApproximateAgeOfOldestMessage and ApproximateNumberOfMessagesVisible of order-events and its DLQ.',
        ],
      },
      targets: {
        Workers: { resourceType: 'aws:lambda:function', resourceArns: functionArns, selectionMode: 'ALL' },
      },
      actions: {
        FailInvocations: {
          actionId: 'aws:lambda:invocation-error',
          description: `Fail every invocation, before the handler runs, for ${minutes(d)} minutes`,
          parameters: { duration: iso(d), invocationPercentage: '100', preventExecution: 'true' },
          targets: { Functions: 'Workers' },
        },
      },
      statements: [
        new iam.PolicyStatement({
          sid: 'WriteFaultConfigurations',
          actions: ['s3:PutObject', 's3:DeleteObject'],
          resources: [bucket.arnForObjects(`${FAULT_CONFIG_PREFIX}*`)],
        }),
        new iam.PolicyStatement({
          sid: 'ReadTargetFunctions',
          actions: ['lambda:GetFunction'],
          resources: functionArns,
        }),
        this.tagLookupStatement(),
      ],
      stopAlarms: faults.stopAlarms,
    };
  }

  /**
   * A stand-in for AWS FIS's "AZ Availability: Power Interruption" scenario (a console
   * scenario, not a CloudFormation resource), with what this system runs: the instances of
   * the AZ stop and Auto Scaling cannot launch there, every subnet of the AZ drops traffic
   * for the first 2 minutes, the database fails over when its writer is there, and 5
   * minutes in a zonal autoshift moves the load balancer's traffic away until the end.
   *
   * @see https://docs.aws.amazon.com/fis/latest/userguide/az-availability-scenario.html
   */
  private azPowerInterruption(): ExperimentSpec {
    const stack = Stack.of(this);
    const az = this.availabilityZone;
    const cluster = this.props.failoverCluster;
    const total = EXPERIMENT_DURATIONS.powerInterruption;
    const subnetOutage = EXPERIMENT_DURATIONS.powerSubnetDisruption;
    const delay = EXPERIMENT_DURATIONS.autoshiftDelay;
    const subnets = this.allSubnetsInAz();
    const lbArn = this.props.loadBalancer.loadBalancerArn;
    const asgArnPattern = stack.formatArn({
      service: 'autoscaling',
      resource: 'autoScalingGroup',
      resourceName: `*:autoScalingGroupName/${this.asgName}`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const targets: Record<string, fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty> = {
      FleetInstancesInAz: this.instancesInAzTarget(),
      FleetGroup: {
        resourceType: 'aws:ec2:autoscaling-group',
        resourceTags: { [FIS_TARGET_TAG]: this.asgTagValue },
        selectionMode: 'ALL',
      },
      SubnetsInAz: {
        resourceType: 'aws:ec2:subnet',
        resourceArns: this.subnetArns(subnets),
        selectionMode: 'ALL',
      },
      LoadBalancer: {
        resourceType: 'aws:arc:zonal-shift-managed-resource',
        resourceArns: [lbArn],
        selectionMode: 'ALL',
      },
    };
    const actions: Record<string, fis.CfnExperimentTemplate.ExperimentTemplateActionProperty> = {
      StopInstances: {
        actionId: 'aws:ec2:stop-instances',
        description: `Power off the fleet's instances in ${az} for ${minutes(total)} minutes`,
        parameters: { startInstancesAfterDuration: iso(total), completeIfInstancesTerminated: 'true' },
        targets: { Instances: 'FleetInstancesInAz' },
      },
      PauseLaunchesInAz: {
        actionId: 'aws:ec2:asg-insufficient-instance-capacity-error',
        description: `Fail the group's launches in ${az} with InsufficientInstanceCapacity for ${minutes(total)} minutes`,
        parameters: { availabilityZoneIdentifiers: az, duration: iso(total), percentage: '100' },
        targets: { AutoScalingGroups: 'FleetGroup' },
      },
      DisruptSubnets: {
        actionId: 'aws:network:disrupt-connectivity',
        description: `Deny all traffic of every subnet of ${az} for the first ${minutes(subnetOutage)} minutes`,
        parameters: { scope: 'all', duration: iso(subnetOutage) },
        targets: { Subnets: 'SubnetsInAz' },
      },
      WaitBeforeAutoshift: {
        actionId: 'aws:fis:wait',
        description: `Let the impairment be detected for ${minutes(delay)} minutes, as AWS's autoshift would`,
        parameters: { duration: iso(delay) },
      },
      StartZonalAutoshift: {
        actionId: 'aws:arc:start-zonal-autoshift',
        description: `Shift the load balancer's traffic away from ${az} until the end`,
        parameters: {
          availabilityZoneIdentifier: az,
          duration: iso(total.minus(delay)),
          managedResourceTypes: 'ALB',
          zonalAutoshiftStatus: this.props.zonalAutoshiftEnabled ? 'ENABLED' : 'ANY',
        },
        targets: { ManagedResources: 'LoadBalancer' },
        startAfter: ['WaitBeforeAutoshift'],
      },
    };
    const statements = [
      ...this.stopStartStatements(),
      new iam.PolicyStatement({
        sid: 'FailFleetLaunchesInAz',
        actions: ['ec2:InjectApiError'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'ec2:FisActionId': 'aws:ec2:asg-insufficient-instance-capacity-error' },
          'ForAllValues:ArnLike': { 'ec2:FisTargetArns': [asgArnPattern] },
        },
      }),
      this.describeStatement('DescribeGroups', [
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeTags',
      ]),
      ...this.networkStatements(subnets),
      new iam.PolicyStatement({
        sid: 'ShiftTheLoadBalancer',
        actions: [
          'arc-zonal-shift:StartZonalShift',
          'arc-zonal-shift:UpdateZonalShift',
          'arc-zonal-shift:CancelZonalShift',
          'arc-zonal-shift:GetManagedResource',
        ],
        // Zonal shift authorizes on the resource identifier condition, not on Resource.
        resources: ['*'],
        conditions: { StringEquals: { 'arc-zonal-shift:ResourceIdentifier': lbArn } },
      }),
      this.describeStatement('ListManagedResources', ['arc-zonal-shift:ListManagedResources']),
      this.tagLookupStatement(),
    ];
    if (cluster) {
      targets.DatabaseWriterInAz = {
        resourceType: 'aws:rds:cluster',
        resourceTags: { [FIS_TARGET_TAG]: this.clusterTagValue },
        parameters: { writerAvailabilityZoneIdentifiers: az },
        selectionMode: 'ALL',
      };
      actions.FailoverDatabase = {
        actionId: 'aws:rds:failover-db-cluster',
        description: `Fail the cluster over if its writer is in ${az}`,
        targets: { Clusters: 'DatabaseWriterInAz' },
      };
      statements.push(...this.failoverStatements(cluster));
    }
    return {
      id: 'AzPowerInterruption',
      key: 'az-power-interruption',
      notes: {
        title: `Power interruption in ${az}, ending in a zonal autoshift`,
        hypothesis:
          'The other AZs carry checkout: the load balancer routes around the dark AZ, Auto Scaling launches ' +
          'the lost capacity in the other AZs, the database fails over if its writer was there, and the ' +
          "autoshift drains the AZ's load balancer node; errors stay below the alarm threshold.",
        blastRadius: `Everything of this stack in ${az}: the fleet's instances (stopped ${minutes(total)} min), the group's launches there (failing ${minutes(total)} min), all its subnets (no traffic for ${minutes(subnetOutage)} min), the load balancer's traffic there (shifted away after ${minutes(delay)} min)${cluster ? ', and the database writer if it is there' : ''}. The other AZs are untouched.`,
        mustHold: [
          'Checkout 5xx stay below 1% of requests and p99 below 2 s (the thresholds of the composite alarm that stops the run).',
          'No lost orders: every 201 answered during the run is found by GET /v1/orders/:id afterwards, and order-events-dlq stays empty.',
          `Healthy targets in the other AZs reach the fleet minimum within 10 minutes: Auto Scaling launches the replacements there once its launches in ${az} fail with InsufficientInstanceCapacity.`,
          'After the run: the zonal shift is gone, the subnets have their own network ACL back, and the fleet is balanced again over every AZ.',
        ],
        watch: [
          'HealthyHostCount per AZ, Auto Scaling activity history (InsufficientInstanceCapacity in the AZ).',
          'ARC zonal shifts of the load balancer, RDS events of the cluster, ALB 5xx and p99.',
        ],
      },
      targets,
      actions,
      statements,
      // The cluster resolves to nothing when its writer is elsewhere, and the AZ may hold no
      // instance (a one-instance fleet): skip those actions, run the rest.
      emptyTargetResolutionMode: 'skip',
    };
  }

  // --- fault configuration bucket --------------------------------------------------------

  /**
   * The bucket FIS writes Lambda fault configurations to and the FIS extension reads: S3
   * managed encryption, TLS only, no public access, objects expiring after a day (FIS
   * deletes them when the action ends; this only catches leftovers). Only the Lambda
   * experiment's role may write under the prefix: a bucket policy denies everyone else.
   */
  private createFaultConfigBucket(removalPolicy: RemovalPolicy): s3.Bucket {
    const bucket = new s3.Bucket(this, 'FaultConfigBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'ExpireLeftoverFaultConfigurations', expiration: Duration.days(1) }],
      removalPolicy,
    });
    acknowledge(
      bucket,
      ['AwsSolutions-S1', 'NIST.800.53.R5-S3BucketLoggingEnabled', 'PCI.DSS.321-S3BucketLoggingEnabled'],
      'The bucket holds only transient AWS FIS fault configurations; the only writer is the Lambda experiment role (its bucket policy denies everyone else), and every experiment is recorded in the FIS experiment log and by CloudTrail (StartExperiment).',
    );
    acknowledge(
      bucket,
      [
        'NIST.800.53.R5-S3BucketReplicationEnabled',
        'NIST.800.53.R5-S3BucketVersioningEnabled',
        'PCI.DSS.321-S3BucketReplicationEnabled',
        'PCI.DSS.321-S3BucketVersioningEnabled',
      ],
      'FIS needs one fault configuration bucket per region and writes each configuration for one experiment only; a replica in another region or an older version would never be read, and expired configurations are meant to disappear.',
    );
    acknowledge(
      bucket,
      ['NIST.800.53.R5-S3DefaultEncryptionKMS', 'PCI.DSS.321-S3DefaultEncryptionKMS'],
      'The objects are fault configurations (action, percentage, end time), not customer or cardholder data; S3 managed keys keep FIS and the FIS Lambda extension free of key grants.',
    );
    return bucket;
  }

  /**
   * Acknowledges each wildcard resource of an experiment policy (cdk-nag reports them one by
   * one), with why the statement cannot name its resource and what limits it instead.
   */
  private acknowledgeWildcards(policy: iam.ManagedPolicy, statements: readonly iam.PolicyStatement[]): void {
    const stack = Stack.of(this);
    const starActions = new Set<string>();
    const ids = new Map<string, string>();
    for (const statement of statements) {
      if (statement.effect !== iam.Effect.ALLOW) continue;
      for (const resource of statement.resources) {
        const flat = nagResourceName(stack.resolve(resource));
        if (!flat.includes('*')) continue;
        if (flat === '*') statement.actions.forEach((a) => starActions.add(a));
        ids.set(`AwsSolutions-IAM5[Resource::${flat}]`, wildcardReason(flat));
      }
    }
    const byReason = new Map<string, string[]>();
    for (const [id, reason] of ids) {
      const text =
        reason ||
        `Resource * is used only by ${[...starActions].sort().join(', ')}: IAM authorizes them on no narrower resource (the FIS fault injections among them are limited by their condition keys to this stack's targets).`;
      byReason.set(text, [...(byReason.get(text) ?? []), id]);
    }
    for (const [reason, ruleIds] of byReason) acknowledge(policy.node.defaultChild!, ruleIds, reason);
  }
}

/** Why a wildcard resource other than `*` cannot be narrowed (`*` is explained with its actions). */
function wildcardReason(resource: string): string {
  if (resource === '*') return '';
  if (resource.endsWith(':instance/*')) {
    return 'Instance ids change with every launch; the statement is limited by its aws:autoscaling:groupName tag condition to the instances Auto Scaling launched for this fleet, a tag nobody can set by hand.';
  }
  if (resource.endsWith(':key/*')) {
    return "Starting an instance with an encrypted volume needs a grant on the account's default EBS key, whose id the stack does not know; kms:ViaService (EC2) and kms:GrantIsForAWSResource limit it to the grant EC2 creates for the volume.";
  }
  if (resource.endsWith(':log-group:*')) {
    return 'CloudWatch Logs documents these log delivery permissions on log-group:* (vended logs): they let FIS attach the delivery resource policy to the experiment log group and read or write no log events.';
  }
  if (resource.endsWith(':network-acl/*')) {
    return 'FIS creates the network ACL it swaps in during the run, so its id is unknown; creating, editing and deleting are limited to ACLs tagged managedByFIS=true, and the association swap to the target subnets.';
  }
  if (resource.endsWith(':cluster:*') || resource.endsWith(':db:*')) {
    return "Read-only DescribeDBClusters and DescribeDBInstances, which FIS calls to resolve the cluster and its writer's AZ; the failover itself is allowed on this cluster only.";
  }
  if (resource.endsWith(`/${FAULT_CONFIG_PREFIX}*`)) {
    return 'FIS writes one fault configuration object per experiment under this prefix, with keys it generates; the prefix is all the fault configuration bucket holds.';
  }
  throw new Error(`ChaosExperiments: no reason recorded for the wildcard resource ${resource}`);
}
