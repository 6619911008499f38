import { ArnFormat, CfnResource, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import { acknowledge } from '../compliance';
import { Construct } from 'constructs';
import { allowLogsToUseKey } from '../kms';
import { RUNBOOK_BASE_CONTEXT, runbookAlarm } from './runbook-alarm';

/**
 * The Aurora PostgreSQL version a cluster runs unless told otherwise. The app takes it
 * from config (`database.engineVersion`), the same for both regions: a global database
 * needs one version everywhere, and upgrades go standby first
 * (docs/runbooks/database-engine-upgrade.md).
 */
export const DEFAULT_AURORA_POSTGRES_VERSION = '16.8';

/** The Aurora PostgreSQL engine of a `major.minor` version such as `16.8`. */
export function auroraPostgresEngine(version: string): rds.IClusterEngine {
  const match = /^(\d+)\.(\d+)$/.exec(version);
  if (!match) {
    throw new Error(`Aurora PostgreSQL version "${version}" must be major.minor, such as "16.8"`);
  }
  return rds.DatabaseClusterEngine.auroraPostgres({
    version: rds.AuroraPostgresEngineVersion.of(version, match[1]),
  });
}

/**
 * `max_connections` of Aurora PostgreSQL Serverless v2 at a 4 ACU maximum, from the
 * "Maximum connections for Aurora Serverless v2" table of the Aurora user guide: 823.
 * It is lower than the provisioned formula (LEAST(memory / 9531392, 5000) gives 901 for
 * 8 GiB) because it is computed from the instance's usable memory. Confirm on a running
 * cluster with `SHOW max_connections`.
 */
export const SERVERLESS_MAX_CONNECTIONS = 823;

/** The largest Aurora Serverless v2 capacity of the lean profile (2 GiB of memory per ACU). */
export const SERVERLESS_MAX_ACU = 4;

/** The PostgreSQL port RDS Proxy listens on; the proxy cannot use another one. */
export const RDS_PROXY_PORT = 5432;

/** How this region's cluster takes part in an Aurora Global Database. */
export type GlobalRole =
  | { readonly role: 'primary'; readonly globalClusterIdentifier: string }
  | { readonly role: 'secondary'; readonly globalClusterIdentifier: string };

/** Properties of {@link Database}. */
export interface DatabaseProps {
  /** VPC whose isolated subnets hold the cluster and the proxy. */
  readonly vpc: ec2.IVpc;
  /**
   * The cluster's security group: reachable from the proxy and the rotation function, or
   * (a region with no proxy) from the groups the caller admits, see `SecurityGroups`.
   */
  readonly securityGroup: ec2.ISecurityGroup;
  /** RDS Proxy's security group (reachable from the app and Lambda groups only). */
  readonly proxySecurityGroup: ec2.ISecurityGroup;
  /** The AZs, in order: the writer goes to the first, reader n to AZ n+1 (wrapping). */
  readonly availabilityZones: string[];

  /**
   * The cluster's port. Must not be 5432: scans for PostgreSQL look there first.
   *
   * @default 5433
   */
  readonly port?: number;

  /**
   * Instance type of the writer and readers, without the `db.` prefix. Ignored when
   * `serverless` is true.
   *
   * @default 'r7g.large'
   */
  readonly instanceType?: string;

  /**
   * How many readers. Each is a failover target in its own AZ; with 0 there is no
   * automatic failover to a warm instance (Aurora recreates the writer instead).
   *
   * @default 1
   */
  readonly readers?: number;

  /**
   * Aurora Serverless v2 (0.5 to 4 ACU) instead of provisioned instances: the lean
   * profile's choice.
   *
   * @default false
   */
  readonly serverless?: boolean;

  /**
   * Aurora PostgreSQL `major.minor` version. Every member of a global database must run
   * the same one; change it in config and deploy the standby before the primary.
   *
   * @default '16.8'
   */
  readonly engineVersion?: string;

  /**
   * Days of automated backups and point-in-time recovery (1 to 35).
   *
   * @default 35
   */
  readonly backupRetentionDays?: number;

  /**
   * The customer managed key for storage, the secret, Performance Insights and logs.
   * A given key must allow the regional CloudWatch Logs principal.
   *
   * @default - a new key with yearly rotation
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * Whether the cluster and its data outlive `cdk destroy`: deletion protection on,
   * and a final snapshot when the cluster is removed from the stack.
   *
   * @default true
   */
  readonly protectData?: boolean;

  /**
   * Global Database role. Without one the cluster stands alone.
   *
   * @default - not part of a global database
   */
  readonly global?: GlobalRole;

  /**
   * The database user the service and workers connect as through the proxy (IAM auth).
   *
   * @default 'checkout'
   */
  readonly applicationUser?: string;

  /**
   * Topic every alarm of the tier notifies (alarm and OK).
   *
   * @default - alarms without actions, exposed in `alarms` for the caller to wire
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * Regions that receive a read-only replica of the master secret, kept in step with
   * every rotation. Give the standby region: after a regional failover the migration job
   * reads the master credentials there (the fleet and workers log in with IAM and need
   * no secret). Replicas are encrypted with that region's `aws/secretsmanager` key, as no
   * customer key of that region exists before the standby stack; their `host` still names
   * the primary's cluster (see docs/runbooks/region-failover.md).
   *
   * @default - no replicas
   */
  readonly secretReplicaRegions?: string[];

  /**
   * How many connections the connections alarm fires at.
   *
   * @default - about 60% of max_connections: 1000 for a provisioned cluster (about 55% of
   * the 1802 of a 16 GiB r7g.large), and 493 for Serverless v2 at its maximum of
   * {@link SERVERLESS_MAX_ACU} ACU (60% of {@link SERVERLESS_MAX_CONNECTIONS})
   */
  readonly connectionsAlarmThreshold?: number;
}

/**
 * Tier 4: Aurora PostgreSQL that fails over on its own, behind RDS Proxy.
 *
 * - writer and readers pinned to distinct AZs (a reader is promoted in about 30 s when
 *   the writer or its AZ fails), isolated subnets, a non-default port;
 * - storage, secret, Performance Insights and log group under one customer managed key;
 * - IAM authentication, `rds.force_ssl`, deletion protection and a final snapshot;
 * - 35-day point-in-time recovery; PostgreSQL logs to an encrypted group kept one year;
 * - a generated master secret rotated every 30 days by the Secrets Manager rotation
 *   function (Aurora's own managed password is not supported for global databases),
 *   optionally replicated to the standby region;
 * - RDS Proxy (TLS required, IAM auth, 5 s borrow timeout) in front, primary only; it
 *   listens on {@link RDS_PROXY_PORT} (`proxyPort`), the only port RDS Proxy offers;
 * - alarms for CPU, memory, connections, replica lag, global lag, deadlocks and local
 *   storage, each linking its runbook, notifying `alarmTopic` when one is given.
 */
export class Database extends Construct {
  /** The Aurora cluster. */
  public readonly cluster: rds.DatabaseCluster;
  /** The proxy the service and the workers connect to (undefined on a secondary). */
  public readonly proxy?: rds.DatabaseProxy;
  /** The master secret (undefined on a secondary: it shares the primary's users). */
  public readonly secret?: secretsmanager.ISecret;
  /** The key encrypting everything the construct stores. */
  public readonly encryptionKey: kms.IKey;
  /** The global cluster (primary only). */
  public readonly globalCluster?: rds.CfnGlobalCluster;
  /**
   * The writer is unavailable through RDS Proxy for longer than a failover (only where a
   * proxy runs). A member of the region's "checkout impaired" composite.
   */
  public writerUnavailableAlarm?: cloudwatch.Alarm;
  /** The tier's alarms (with the topic's actions when `alarmTopic` was given). */
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** The cluster's port (what the proxy and the rotation function connect to). */
  public readonly port: number;
  /** The port clients connect to on {@link endpoint}: the proxy's. */
  public readonly proxyPort = RDS_PROXY_PORT;
  /** The user `grantConnect` grants. */
  public readonly applicationUser: string;
  /** The master user (owner of the schema; migrations run as this user). */
  public readonly masterUser = 'shop_admin';
  /** The rotation function's security group (primary only); it must reach Secrets Manager. */
  public readonly rotationSecurityGroup?: ec2.SecurityGroup;
  /** The EventBridge rule that reports a failed or abandoned rotation (primary only). */
  public readonly rotationFailureRule?: events.Rule;
  /** Whether this is the secondary of a global database (read-only until promoted). */
  private readonly isGlobalSecondary: boolean;
  /** Whether members auto-upgrade minor versions (never for a global database member). */
  public readonly autoMinorVersionUpgrade: boolean;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const port = props.port ?? 5433;
    const readers = props.readers ?? 1;
    const serverless = props.serverless ?? false;
    const retentionDays = props.backupRetentionDays ?? 35;
    const protect = props.protectData ?? true;
    const instanceType = props.instanceType ?? 'r7g.large';
    const engine = auroraPostgresEngine(props.engineVersion ?? DEFAULT_AURORA_POSTGRES_VERSION);
    // Aurora upgrades a global database's secondaries before its primary and refuses the
    // reverse order; an automatic minor upgrade would also move real clusters away from
    // the template's version. Global members upgrade only through a deploy.
    const autoMinorVersionUpgrade = !props.global;
    this.isGlobalSecondary = props.global?.role === 'secondary';
    this.autoMinorVersionUpgrade = autoMinorVersionUpgrade;
    this.port = port;
    this.applicationUser = props.applicationUser ?? 'checkout';

    if (!Token.isUnresolved(port) && (port === 5432 || port < 1150 || port > 65535)) {
      throw new Error(`Database port ${port} is not allowed: use 1150-65535 and not 5432, such as 5433`);
    }
    if (!Number.isInteger(readers) || readers < 0 || readers > 15) {
      throw new Error(`Database readers must be a whole number from 0 to 15, got ${readers}`);
    }
    if (!Number.isInteger(retentionDays) || retentionDays < 1 || retentionDays > 35) {
      throw new Error(`Database backupRetentionDays must be 1 to 35 (Aurora's range), got ${retentionDays}`);
    }
    if (props.global?.role === 'secondary' && (props.secretReplicaRegions ?? []).length > 0) {
      throw new Error(
        'Database secretReplicaRegions is for the primary: a global secondary has no secret of its own to replicate',
      );
    }
    if (props.availabilityZones.length < 2) {
      throw new Error(`Database needs at least 2 availabilityZones, got ${props.availabilityZones.length}`);
    }

    const removalPolicy = protect ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY;
    this.encryptionKey =
      props.encryptionKey ??
      new kms.Key(this, 'Key', {
        description: 'Aurora storage, secret, Performance Insights and PostgreSQL logs',
        enableKeyRotation: true,
        // Retained in every profile: AWS Backup's Aurora recovery points (retained with
        // their vault) and final snapshots stay encrypted with the cluster's key, and
        // would become unrestorable once it is deleted.
        removalPolicy: RemovalPolicy.RETAIN,
      });
    const stack = Stack.of(this);
    if (this.encryptionKey instanceof kms.Key) {
      allowLogsToUseKey(this.encryptionKey, 'AllowCloudWatchLogsForDatabaseLogs');
    }

    // The cluster identifier is fixed so its log group can be created (encrypted, with
    // retention) before RDS would create an unencrypted one on first log export.
    const clusterIdentifier = `${stack.stackName}-aurora`
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .slice(0, 63);
    const logGroup = new logs.LogGroup(this, 'PostgresLogs', {
      logGroupName: `/aws/rds/cluster/${clusterIdentifier}/postgresql`,
      encryptionKey: this.encryptionKey,
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: protect ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });

    const parameterGroup = new rds.ParameterGroup(this, 'ClusterParameters', {
      engine,
      description: 'TLS only, connection and statement logging for audits',
      parameters: {
        'rds.force_ssl': '1',
        log_connections: '1',
        log_disconnections: '1',
        log_lock_waits: '1',
        log_min_duration_statement: '1000',
        deadlock_timeout: '1000',
      },
    });

    const azs = props.availabilityZones;
    const common = {
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: this.encryptionKey,
      performanceInsightRetention: rds.PerformanceInsightRetention.DEFAULT,
      autoMinorVersionUpgrade,
      publiclyAccessible: false,
    };
    const instanceProps = (az: string, promotionTier?: number): rds.ProvisionedClusterInstanceProps => ({
      ...common,
      instanceType: new ec2.InstanceType(instanceType),
      availabilityZone: az,
      promotionTier,
    });
    const writer = serverless
      ? rds.ClusterInstance.serverlessV2('Writer', common)
      : rds.ClusterInstance.provisioned('Writer', instanceProps(azs[0]));
    const readerInstances = serverless
      ? Array.from({ length: readers }, (_, i) =>
          rds.ClusterInstance.serverlessV2(`Reader${i + 1}`, { ...common, scaleWithWriter: true }),
        )
      : Array.from({ length: readers }, (_, i) =>
          rds.ClusterInstance.provisioned(`Reader${i + 1}`, instanceProps(azs[(i + 1) % azs.length], 1)),
        );

    const secondary = props.global?.role === 'secondary';
    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine,
      clusterIdentifier,
      // A secondary's generated secret is removed below; without the key here it leaves
      // no statement behind in the key policy either.
      credentials: rds.Credentials.fromGeneratedSecret(this.masterUser, {
        encryptionKey: secondary ? undefined : this.encryptionKey,
        replicaRegions: (props.secretReplicaRegions ?? []).map((region) => ({ region })),
      }),
      writer,
      readers: readerInstances,
      serverlessV2MinCapacity: serverless ? 0.5 : undefined,
      serverlessV2MaxCapacity: serverless ? 4 : undefined,
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [props.securityGroup],
      port,
      parameterGroup,
      storageEncrypted: true,
      storageEncryptionKey: this.encryptionKey,
      iamAuthentication: true,
      deletionProtection: protect,
      removalPolicy,
      backup: { retention: Duration.days(retentionDays), preferredWindow: '03:00-04:00' },
      preferredMaintenanceWindow: 'sun:05:00-sun:06:00',
      cloudwatchLogsExports: ['postgresql'],
      copyTagsToSnapshot: true,
      monitoringInterval: Duration.seconds(60),
    });
    // Only the cluster resource waits for the log group: a dependency on the whole
    // construct would make everything in it (the proxy, its role) wait too, for nothing.
    (this.cluster.node.defaultChild as CfnResource).addResourceDependency(
      logGroup.node.defaultChild as CfnResource,
    );

    if (secondary) {
      // A secondary joins the global cluster and shares the primary's users: no master
      // credentials of its own (CloudFormation rejects them on a secondary).
      const cfnCluster = this.cluster.node.defaultChild as rds.CfnDBCluster;
      cfnCluster.globalClusterIdentifier = props.global!.globalClusterIdentifier;
      cfnCluster.addPropertyDeletionOverride('MasterUsername');
      cfnCluster.addPropertyDeletionOverride('MasterUserPassword');
      const unusedSecret = this.cluster.node.tryFindChild('Secret');
      if (unusedSecret) this.cluster.node.tryRemoveChild('Secret');
    } else {
      this.secret = this.cluster.secret;
      // The rotation function's own group: HTTPS out (Secrets Manager, through the
      // interface endpoint where there is one: the caller must admit this group there,
      // see RegionalStack) and the cluster port, instead of CDK's default of all outbound
      // traffic. The cluster-port rules (egress here, ingress on the cluster's group) are
      // added by addRotationSingleUser; adding them here too would make EC2 refuse the
      // duplicate at deploy time.
      const rotationGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
        vpc: props.vpc,
        description: 'Secrets Manager rotation function: HTTPS and the cluster port only',
        allowAllOutbound: false,
      });
      rotationGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'Secrets Manager API');
      this.rotationSecurityGroup = rotationGroup;
      this.cluster.addRotationSingleUser({
        automaticallyAfter: Duration.days(30),
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroup: rotationGroup,
      });
      this.rotationFailureRule = this.reportRotationFailures(props.alarmTopic);
      this.rotateOnlyOnceInstancesExist();
      // The master secret outlives the cluster where the cluster leaves a final snapshot:
      // a snapshot restored later needs the credentials it was taken with.
      (this.cluster.node.findChild('Secret') as secretsmanager.Secret).applyRemovalPolicy(
        protect ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      );
      this.proxy = this.createProxy(props);
      if (props.global) {
        this.globalCluster = new rds.CfnGlobalCluster(this, 'GlobalCluster', {
          globalClusterIdentifier: props.global.globalClusterIdentifier,
          sourceDbClusterIdentifier: this.cluster.clusterArn,
          deletionProtection: protect,
        });
      }
    }

    this.acknowledgeFindings(props.global, props.securityGroup, protect);
    const connectionsThreshold =
      props.connectionsAlarmThreshold ?? (serverless ? Math.floor(0.6 * SERVERLESS_MAX_CONNECTIONS) : 1_000);
    for (const instance of this.cluster.node.findAll()) {
      if (instance instanceof rds.CfnDBInstance && instance.availabilityZone !== undefined) {
        acknowledge(
          instance,
          ['CloudFormation-Validate::W3010'],
          'The writer and each reader are pinned to the AZs named in config, one per AZ, so that a failover always has a reader outside the writer AZ; synth must not look AZs up.',
        );
      }
    }
    this.createAlarms(readers, serverless, props.global, connectionsThreshold);
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /** Findings that do not apply to what this construct builds, each on its resource. */
  private acknowledgeFindings(
    global: GlobalRole | undefined,
    clusterGroup: ec2.ISecurityGroup,
    protect: boolean,
  ): void {
    const secondary = global?.role === 'secondary';
    if (!protect) {
      acknowledge(
        this.cluster.node.defaultChild!,
        [
          'AwsSolutions-RDS10',
          'NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled',
          'PCI.DSS.321-RDSInstanceDeletionProtectionEnabled',
        ],
        'protectData is false (the lean profile, for disposable dev accounts), so cdk destroy must be able to delete the cluster; production keeps deletion protection on.',
      );
    }
    // CDK makes the proxy target group depend on the cluster it already references.
    const targetGroup = this.proxy?.node.tryFindChild('ProxyTargetGroup');
    if (targetGroup instanceof CfnResource) {
      targetGroup.removeResourceDependency(this.cluster.node.defaultChild as CfnResource);
    }
    for (const instance of this.cluster.node.children.filter(
      (c) => c.node.defaultChild instanceof rds.CfnDBInstance,
    )) {
      acknowledge(
        instance.node.defaultChild!,
        ['NIST.800.53.R5-RDSInBackupPlan', 'PCI.DSS.321-RDSInBackupPlan'],
        secondary
          ? 'Aurora backs up clusters, not instances; this secondary replicates the primary cluster, which the AWS Backup plan covers.'
          : global
            ? 'Aurora backs up clusters, not instances; the AWS Backup plan selects this cluster by ARN, with a copy to the standby region.'
            : 'Aurora backs up clusters, not instances; the AWS Backup plan of this stack selects this cluster by ARN.',
      );
    }
    if (!this.autoMinorVersionUpgrade) {
      for (const instance of this.cluster.node.children.filter(
        (c) => c.node.defaultChild instanceof rds.CfnDBInstance,
      )) {
        acknowledge(
          instance.node.defaultChild!,
          ['PCI.DSS.321-RDSAutomaticMinorVersionUpgradeEnabled'],
          'A global database member must not upgrade on its own: Aurora upgrades secondaries before the primary, so minor versions are applied by deploying database.engineVersion, standby first.',
        );
      }
    }
    const monitoringRole = this.cluster.node.tryFindChild('MonitoringRole');
    if (monitoringRole) {
      acknowledge(
        monitoringRole.node.defaultChild ?? monitoringRole,
        [
          'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]',
        ],
        'AmazonRDSEnhancedMonitoringRole is the policy RDS documents for enhanced monitoring; it only writes the RDSOSMetrics log group.',
      );
    }
    // CDK opens the cluster's own port (a deploy-time reference) to the proxy and to the
    // rotation function; the nag rules cannot evaluate a reference and report an error.
    for (const rule of clusterGroup.node.children) {
      if (rule instanceof ec2.CfnSecurityGroupIngress && rule.node.id.includes('{IndirectPort}')) {
        acknowledge(
          rule,
          [
            'NIST.800.53.R5-EC2RestrictedSSH',
            'NIST.800.53.R5-EC2RestrictedCommonPorts',
            'PCI.DSS.321-EC2RestrictedSSH',
            'PCI.DSS.321-EC2RestrictedCommonPorts',
          ],
          'This rule opens only the cluster endpoint port (5433 by default) to one security group, never SSH or another common port.',
        );
      }
    }
  }

  /**
   * Lets a principal connect with IAM auth as a database user: through the proxy where
   * there is one, else (a global secondary, after promotion) to the cluster itself.
   *
   * @param user the database user; the application user by default. The master user
   * (`masterUser`) is for the migration job only: through the proxy it authenticates
   * with IAM to the proxy, which logs in with the master secret.
   */
  public grantConnect(grantee: iam.IGrantable, user: string = this.applicationUser): iam.Grant {
    if (this.proxy) return this.proxy.grantConnect(grantee, user);
    if (user === this.masterUser) {
      throw new Error(
        `Database.grantConnect: ${user} has no IAM auth path on a global secondary (its password is in the primary's secret)`,
      );
    }
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['rds-db:connect'],
      resourceArns: [this.dbUserArn(user)],
    });
  }

  /**
   * The host clients connect to: the proxy's endpoint; on a global secondary (no proxy)
   * the endpoint of its instance; else the cluster's writer endpoint. Pair it with
   * {@link connectionPort}.
   *
   * Why the instance on a secondary: a secondary cluster's writer endpoint is inactive
   * until the cluster is promoted ("All secondary Regions also have writer endpoints, but
   * they're inactive", AWS Database Blog, "Automate Amazon Aurora Global Database endpoint
   * management"), so a standby fleet pointed at it would never turn ready, its Route 53
   * health check would stay unhealthy, and `npm run failover` would refuse the region.
   * The instance endpoint answers before promotion (read-only: the service reports ready
   * and refuses checkouts with 503) and, the instance being the one promoted to writer,
   * takes writes after it without a configuration change. The standby runs one instance;
   * the region-failover runbook says what to do before adding readers there.
   */
  public get endpoint(): string {
    if (this.proxy) return this.proxy.endpoint;
    if (this.isGlobalSecondary) {
      if (this.cluster.instanceEndpoints.length !== 1) {
        throw new Error(
          `Database ${this.node.path}: a global secondary without a proxy must run exactly one instance ` +
            `(it has ${this.cluster.instanceEndpoints.length}): its clients connect to that instance, which promotion makes the writer`,
        );
      }
      return this.cluster.instanceEndpoints[0].hostname;
    }
    return this.cluster.clusterEndpoint.hostname;
  }

  /** The port that goes with {@link endpoint}: the proxy's 5432, or the cluster's port. */
  public get connectionPort(): number {
    return this.proxy ? this.proxyPort : this.port;
  }

  /** The `rds-db:connect` resource of a database user on this cluster (not through a proxy). */
  private dbUserArn(user: string): string {
    return Stack.of(this).formatArn({
      service: 'rds-db',
      resource: 'dbuser',
      resourceName: `${this.cluster.clusterResourceIdentifier}/${user}`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }

  /**
   * RDS Proxy with end-to-end IAM authentication (`DefaultAuthScheme: IAM_AUTH`): a
   * client signs an IAM token for a database user, and the proxy logs in to the cluster
   * as that user with an IAM token of its own, so the application user has no password
   * anywhere. The database role must exist and be granted `rds_iam` (a migration of the
   * service does it). The master secret stays as a second auth entry so the migration
   * job can log in as the schema owner, also with an IAM token to the proxy.
   *
   * The proxy's role holds its grants in its own policy (`rds-db:connect` to the cluster
   * as the application user; read the master secret; decrypt it through Secrets
   * Manager only), never in the key policy: a key policy that names a role created in
   * the same deploy can be refused as an invalid principal.
   */
  private createProxy(props: DatabaseProps): rds.DatabaseProxy {
    const secret = this.cluster.secret!;
    const stack = Stack.of(this);
    const role = new iam.Role(this, 'ProxyRole', {
      assumedBy: new iam.ServicePrincipal('rds.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'RDS Proxy: IAM login to the cluster as the application user; reads the master secret',
    });
    const policy = new iam.ManagedPolicy(this, 'ProxyPolicy', {
      description: 'What RDS Proxy needs to log in to the Aurora cluster',
      statements: [
        new iam.PolicyStatement({
          sid: 'ConnectAsApplicationUser',
          actions: ['rds-db:connect'],
          resources: [this.dbUserArn(this.applicationUser)],
        }),
        new iam.PolicyStatement({
          sid: 'ReadMasterSecret',
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: [secret.secretArn],
        }),
        new iam.PolicyStatement({
          sid: 'DecryptMasterSecret',
          actions: ['kms:Decrypt'],
          resources: [this.encryptionKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
        }),
      ],
    });
    role.addManagedPolicy(policy);
    const proxy = this.cluster.addProxy('Proxy', {
      // No `secrets` here: CDK would grant them through the key policy. The master
      // secret's auth entry is written below.
      defaultAuthScheme: rds.DefaultAuthScheme.IAM_AUTH,
      role,
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [props.proxySecurityGroup],
      requireTLS: true,
      iamAuth: true,
      borrowTimeout: Duration.seconds(5),
      idleClientTimeout: Duration.minutes(30),
      maxConnectionsPercent: 90,
      maxIdleConnectionsPercent: 50,
    });
    // The proxy registers its target as soon as it exists; its role must be able to log in by then.
    proxy.node.addDependency(policy);
    (proxy.node.defaultChild as rds.CfnDBProxy).auth = [
      {
        authScheme: 'SECRETS',
        secretArn: secret.secretArn,
        iamAuth: 'REQUIRED',
        description: `${this.masterUser}, for schema migrations only`,
      },
    ];
    return proxy;
  }

  /**
   * CloudFormation starts the first rotation as soon as the schedule exists, which
   * otherwise happens once the cluster (not its instances) is created: the rotation
   * function then finds no instance behind the endpoint, and the first rotation fails.
   */
  private rotateOnlyOnceInstancesExist(): void {
    const schedules = this.cluster.node
      .findAll()
      .filter(
        (c): c is secretsmanager.CfnRotationSchedule => c instanceof secretsmanager.CfnRotationSchedule,
      );
    const instances = this.cluster.node
      .findAll()
      .filter((c): c is rds.CfnDBInstance => c instanceof rds.CfnDBInstance);
    for (const schedule of schedules)
      for (const instance of instances) schedule.addResourceDependency(instance);
  }

  /**
   * Sends Secrets Manager's `RotationFailed` and `RotationAbandoned` events (delivered
   * to EventBridge as "AWS Service Event via CloudTrail", no trail needed) to the alarm
   * topic, with the runbook. A rotation that cannot reach Secrets Manager or the cluster
   * fails this way and emits no metric, so nothing else would notice.
   */
  private reportRotationFailures(topic?: sns.ITopic): events.Rule | undefined {
    if (!topic) return undefined;
    const base = (this.node.tryGetContext(RUNBOOK_BASE_CONTEXT) as string | undefined) ?? 'docs/runbooks';
    const rule = new events.Rule(this, 'RotationFailed', {
      description: 'A Secrets Manager rotation failed or was abandoned',
      eventPattern: {
        source: ['aws.secretsmanager'],
        detailType: ['AWS Service Event via CloudTrail'],
        detail: { eventName: ['RotationFailed', 'RotationAbandoned'] },
      },
    });
    // A target written out, not targets.SnsTopic: that one adds a topic policy statement
    // for EventBridge without the source-account condition AlarmTopic already has.
    rule.addTarget({
      bind: () => ({
        arn: topic.topicArn,
        input: events.RuleTargetInput.fromText(
          `Secrets Manager rotation ${events.EventField.fromPath('$.detail.eventName')} in ${events.EventField.region} ` +
            `(event ${events.EventField.eventId}). The database credentials did not rotate. ` +
            `Runbook: ${base.replace(/\/$/, '')}/database-secret-rotation.md`,
        ),
      }),
    });
    acknowledge(
      rule.node.defaultChild!,
      ['Serverless-EventBusDLQ'],
      'The target is the alarm topic, which the wiring pack proves EventBridge may publish to and encrypt for; EventBridge retries delivery for 24 hours, and a DLQ here would need its own alarm on this same topic.',
    );
    return rule;
  }

  private createAlarms(
    readers: number,
    serverless: boolean,
    global: GlobalRole | undefined,
    connectionsThreshold: number,
  ): void {
    const cluster = this.cluster;
    const five = Duration.minutes(5);
    const add = (alarm: cloudwatch.Alarm) => this.alarms.push(alarm);
    add(
      runbookAlarm(this, 'CpuHigh', 'database-cpu', {
        metric: cluster.metricCPUUtilization({ period: five }),
        threshold: 80,
        evaluationPeriods: 3,
        summary: 'Aurora CPU above 80% for 15 minutes',
      }),
    );
    // Serverless v2 scales its memory with capacity (about 2 GiB per ACU; 1 GiB at the
    // 0.5 ACU floor), so a fixed FreeableMemory floor says little there. What runs out
    // is the capacity ceiling: ACUUtilization (capacity as a share of the maximum) near
    // 100% means it cannot scale further.
    add(
      serverless
        ? runbookAlarm(this, 'CapacityHigh', 'database-memory', {
            metric: cluster.metric('ACUUtilization', { period: five, statistic: 'Maximum' }),
            threshold: 90,
            evaluationPeriods: 3,
            summary: 'Aurora Serverless v2 above 90% of its maximum capacity for 15 minutes',
          })
        : runbookAlarm(this, 'FreeableMemoryLow', 'database-memory', {
            metric: cluster.metricFreeableMemory({ period: five, statistic: 'Minimum' }),
            threshold: 512 * 1024 * 1024,
            comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluationPeriods: 3,
            summary: 'Aurora freeable memory below 512 MiB for 15 minutes',
          }),
    );
    add(
      runbookAlarm(this, 'ConnectionsHigh', 'database-connections', {
        metric: cluster.metricDatabaseConnections({ period: five, statistic: 'Maximum' }),
        threshold: connectionsThreshold,
        evaluationPeriods: 2,
        summary: `Aurora connections above ${connectionsThreshold}`,
      }),
    );
    add(
      runbookAlarm(this, 'Deadlocks', 'database-deadlocks', {
        metric: cluster.metric('Deadlocks', { period: five, statistic: 'Sum' }),
        threshold: 0,
        evaluationPeriods: 1,
        summary: 'Aurora reported deadlocks',
      }),
    );
    add(
      runbookAlarm(this, 'FreeLocalStorageLow', 'database-local-storage', {
        metric: cluster.metric('FreeLocalStorage', { period: five, statistic: 'Minimum' }),
        threshold: 5 * 1024 ** 3,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 2,
        summary: 'Aurora free local storage (temporary files) below 5 GiB',
      }),
    );
    if (this.proxy) {
      // RDS Proxy health-checks the writer from each of its nodes every few seconds and
      // publishes the share of checks that found the READ_WRITE target available
      // ("Monitoring RDS Proxy metrics with Amazon CloudWatch", Aurora User Guide). A
      // managed failover takes about 30 s, one minute's average near 50%; two minutes
      // below half is a writer gone for longer than a failover. A cluster without a
      // proxy (the standby, a read-only secondary until promoted) has no such alarm.
      this.writerUnavailableAlarm = runbookAlarm(this, 'WriterUnavailable', 'database-writer-unavailable', {
        metric: new cloudwatch.Metric({
          namespace: 'AWS/RDS',
          metricName: 'AvailabilityPercentage',
          dimensionsMap: {
            ProxyName: this.proxy.dbProxyName,
            TargetGroup: 'default',
            TargetRole: 'READ_WRITE',
          },
          period: Duration.minutes(1),
          statistic: 'Average',
        }),
        threshold: 50,
        evaluationPeriods: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        summary:
          'RDS Proxy found the database writer available less than half the time for 2 minutes (longer than a failover): writes fail',
      });
      add(this.writerUnavailableAlarm);
    }
    if (readers > 0) {
      add(
        runbookAlarm(this, 'ReplicaLagHigh', 'database-replica-lag', {
          metric: cluster.metric('AuroraReplicaLagMaximum', {
            period: Duration.minutes(1),
            statistic: 'Maximum',
          }),
          threshold: 1_000,
          evaluationPeriods: 5,
          summary:
            'Aurora reader lag above 1 s for 5 minutes: its reads are stale and a failover to it is slower',
        }),
      );
    }
    if (global?.role === 'secondary') {
      add(
        runbookAlarm(this, 'GlobalReplicationLagHigh', 'database-global-lag', {
          metric: cluster.metric('AuroraGlobalDBRPOLag', {
            period: Duration.minutes(1),
            statistic: 'Maximum',
          }),
          threshold: 60_000,
          evaluationPeriods: 5,
          summary:
            'Global database RPO lag above 60 s for 5 minutes, or no lag reported (a detached secondary reports none): a regional failover would lose that much',
          // A secondary that left the global database stops reporting lag; silence is
          // the worst case here, not a healthy one.
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        }),
      );
    }
  }
}
