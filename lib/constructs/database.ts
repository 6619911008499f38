import { CfnResource, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import { acknowledge } from '../compliance';
import { Construct } from 'constructs';
import { allowLogsToUseKey } from '../kms';
import { runbookAlarm } from './runbook-alarm';

/**
 * The engine version every cluster of the app runs. A global database needs the same
 * version in every region, so it is fixed here rather than per stack.
 */
export const AURORA_POSTGRES_VERSION = rds.AuroraPostgresEngineVersion.VER_16_8;

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
  /** The cluster's security group (reachable from the proxy only). */
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
   * every rotation. Give the standby region: after a regional failover its fleet reads
   * the credentials there (encrypted with that region's `aws/secretsmanager` key, as no
   * customer key of that region exists before the standby stack).
   *
   * @default - no replicas
   */
  readonly secretReplicaRegions?: string[];

  /**
   * How many connections the connections alarm fires at.
   *
   * @default 1000 - about 60% of max_connections on a 16 GiB instance
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
  /** The tier's alarms (with the topic's actions when `alarmTopic` was given). */
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** The cluster's port (what the proxy and the rotation function connect to). */
  public readonly port: number;
  /** The port clients connect to on {@link endpoint}: the proxy's. */
  public readonly proxyPort = RDS_PROXY_PORT;
  /** The user `grantConnect` grants. */
  public readonly applicationUser: string;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const port = props.port ?? 5433;
    const readers = props.readers ?? 1;
    const serverless = props.serverless ?? false;
    const retentionDays = props.backupRetentionDays ?? 35;
    const protect = props.protectData ?? true;
    const instanceType = props.instanceType ?? 'r7g.large';
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
        removalPolicy: protect ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
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
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: AURORA_POSTGRES_VERSION }),
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
    const instanceProps = (az: string, promotionTier?: number): rds.ProvisionedClusterInstanceProps => ({
      instanceType: new ec2.InstanceType(instanceType),
      availabilityZone: az,
      promotionTier,
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: this.encryptionKey,
      performanceInsightRetention: rds.PerformanceInsightRetention.DEFAULT,
      autoMinorVersionUpgrade: true,
      publiclyAccessible: false,
    });
    const writer = serverless
      ? rds.ClusterInstance.serverlessV2('Writer', {
          publiclyAccessible: false,
          autoMinorVersionUpgrade: true,
        })
      : rds.ClusterInstance.provisioned('Writer', instanceProps(azs[0]));
    const readerInstances = serverless
      ? Array.from({ length: readers }, (_, i) =>
          rds.ClusterInstance.serverlessV2(`Reader${i + 1}`, {
            scaleWithWriter: true,
            publiclyAccessible: false,
          }),
        )
      : Array.from({ length: readers }, (_, i) =>
          rds.ClusterInstance.provisioned(`Reader${i + 1}`, instanceProps(azs[(i + 1) % azs.length], 1)),
        );

    const secondary = props.global?.role === 'secondary';
    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: AURORA_POSTGRES_VERSION }),
      clusterIdentifier,
      credentials: rds.Credentials.fromGeneratedSecret('shop_admin', {
        encryptionKey: this.encryptionKey,
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
    // Only the cluster resource waits for the log group; a dependency on the whole
    // construct would make the proxy's role wait too, and the key policy naming that
    // role would close a cycle.
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
      // The rotation function's own group: HTTPS out (Secrets Manager) and the cluster
      // port, instead of CDK's default of all outbound traffic. The cluster-port rules
      // (egress here, ingress on the cluster's group) are added by addRotationSingleUser;
      // adding them here too would make EC2 refuse the duplicate at deploy time.
      const rotationGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
        vpc: props.vpc,
        description: 'Secrets Manager rotation function: HTTPS and the cluster port only',
        allowAllOutbound: false,
      });
      rotationGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'Secrets Manager API');
      this.cluster.addRotationSingleUser({
        automaticallyAfter: Duration.days(30),
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroup: rotationGroup,
      });
      this.proxy = this.cluster.addProxy('Proxy', {
        secrets: [this.cluster.secret!],
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
      if (props.global) {
        this.globalCluster = new rds.CfnGlobalCluster(this, 'GlobalCluster', {
          globalClusterIdentifier: props.global.globalClusterIdentifier,
          sourceDbClusterIdentifier: this.cluster.clusterArn,
          deletionProtection: protect,
        });
      }
    }

    this.acknowledgeFindings(secondary, props.securityGroup, protect);
    this.createAlarms(readers, serverless, props.global, props.connectionsAlarmThreshold ?? 1_000);
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /** Findings that do not apply to what this construct builds, each on its resource. */
  private acknowledgeFindings(secondary: boolean, clusterGroup: ec2.ISecurityGroup, protect: boolean): void {
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
          : 'Aurora backs up clusters, not instances; the AWS Backup plan selects this cluster by ARN, with a copy to the standby region.',
      );
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
    const proxyPolicy = this.proxy?.node.tryFindChild('IAMRole')?.node.tryFindChild('DefaultPolicy');
    if (proxyPolicy) {
      acknowledge(
        proxyPolicy.node.defaultChild ?? proxyPolicy,
        ['NIST.800.53.R5-IAMNoInlinePolicy', 'PCI.DSS.321-IAMNoInlinePolicy'],
        'RDS Proxy reads exactly one secret (the cluster credentials) and decrypts it with its key; the policy lives and dies with the proxy.',
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

  /** Lets a principal connect through the proxy as the application user (IAM auth). */
  public grantConnect(grantee: iam.IGrantable): iam.Grant {
    if (!this.proxy) {
      throw new Error('Database.grantConnect: this cluster is a global secondary and has no proxy');
    }
    return this.proxy.grantConnect(grantee, this.applicationUser);
  }

  /** The endpoint the service connects to: the proxy's. */
  public get endpoint(): string {
    if (!this.proxy) throw new Error('Database.endpoint: a global secondary has no proxy');
    return this.proxy.endpoint;
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
            'Global database RPO lag above 60 s for 5 minutes: a regional failover would lose that much',
        }),
      );
    }
  }
}
