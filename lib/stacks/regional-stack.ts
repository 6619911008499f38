import { ArnFormat, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import { IBackupVault } from 'aws-cdk-lib/aws-backup';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { AppConfig, RegionConfig, activeAzs } from '../config';
import { AlarmTopic } from '../constructs/alarm-topic';
import { AuditTrail } from '../constructs/audit-trail';
import { BackupPlan, createVault } from '../constructs/backup';
import { CertificateProbe } from '../constructs/certificate-probe';
import { ChaosExperiments } from '../constructs/chaos-experiments';
import { Database, RDS_PROXY_PORT } from '../constructs/database';
import { Fleet, FleetQueues } from '../constructs/fleet';
import { FleetAlarms } from '../constructs/fleet-alarms';
import { IdempotencyTable } from '../constructs/idempotency-table';
import { InventoryReconciler } from '../constructs/inventory-reconciler';
import { LoadBalancer } from '../constructs/load-balancer';
import { MigrationJob } from '../constructs/migration-job';
import { Network } from '../constructs/network';
import { ORDER_EVENTS_TIMEOUT, OrderEventsWorker } from '../constructs/order-events-worker';
import { PAYMENT_RETRY_TIMEOUT, PaymentRetryWorker } from '../constructs/payment-retry-worker';
import { RegionalMonitoring } from '../constructs/regional-monitoring';
import { ResilientQueue } from '../constructs/resilient-queue';
import { SecurityGroups } from '../constructs/security-groups';

/** The role a region plays. */
export type RegionRole = 'primary' | 'standby';

/** Properties of {@link RegionalStack}. */
export interface RegionalStackProps extends StackProps {
  /** The validated deployment config. */
  readonly config: AppConfig;
  /** Which of the config's regions this stack deploys. */
  readonly role: RegionRole;
}

/**
 * Everything one region runs. The primary and the warm standby are the same stack;
 * the standby gets smaller minimums and replicas of the primary's data.
 */
export class RegionalStack extends Stack {
  /** This region's part of the config. */
  public readonly regionConfig: RegionConfig;
  /** Tier 1: the VPC and its endpoints. */
  public readonly network: Network;
  /** Tier 2: the security group graph. */
  public readonly securityGroups: SecurityGroups;
  /** The SNS topic every alarm of the region notifies. */
  public readonly alarmTopic: AlarmTopic;
  /** Tier 4: Aurora (global primary or secondary) and, in the primary, RDS Proxy. */
  public readonly database: Database;
  /** Tier 4: the idempotency table (primary only; the standby holds its replica). */
  public readonly idempotencyTable?: IdempotencyTable;
  /** Tier 4: the backup plan (primary only). */
  public readonly backup?: BackupPlan;
  /** Tier 4: the vault receiving the primary's backup copies (standby only). */
  public readonly backupCopyVault?: IBackupVault;
  /** Tier 3: the load balancer, its certificate and web ACL. */
  public readonly loadBalancer: LoadBalancer;
  /** Tier 3: the checkout service's Auto Scaling group. */
  public readonly fleet: Fleet;
  /**
   * The service's schema migrations, applied as the schema owner during each deploy that
   * changes them, before the fleet's Auto Scaling group (primary only: the standby's
   * cluster is a read-only global secondary).
   */
  public readonly migrationJob?: MigrationJob;
  /** Tier 3: the web tier's alarms. */
  public readonly fleetAlarms: FleetAlarms;
  /** The queues the service's outbox publishes to, as the fleet sends to them. */
  public readonly queues: FleetQueues;
  /** Tier 5: the `order-events` and `payment-retry` queues with their DLQs and alarms. */
  public readonly messaging: MessagingQueues;
  /** Tier 6: the worker applying `order-events`. */
  public readonly orderEventsWorker: OrderEventsWorker;
  /** Tier 6: the worker charging the orders deferred to `payment-retry`. */
  public readonly paymentRetryWorker: PaymentRetryWorker;
  /** Tier 6: the scheduled certificate probe of the public and the regional name. */
  public readonly certificateProbe: CertificateProbe;
  /** Tier 6: the scheduled inventory reconciler (it skips its runs while the region's database is read-only). */
  public readonly inventoryReconciler: InventoryReconciler;
  /** Who changed what: the account's CloudTrail trail (primary only, unless `auditTrail` is false). */
  public readonly auditTrail?: AuditTrail;
  /** Tier 8: the AWS FIS experiment templates of docs/game-day.md. */
  public readonly chaos: ChaosExperiments;
  /** The region's "checkout impaired" composite and its dashboard. */
  public readonly monitoring: RegionalMonitoring;

  private readonly azs: string[];

  constructor(scope: Construct, id: string, props: RegionalStackProps) {
    const { config, role } = props;
    const regionConfig = role === 'primary' ? config.primary : config.standby;
    if (!regionConfig) {
      throw new Error(`RegionalStack ${id}: role "standby" needs config.standby`);
    }
    super(scope, id, {
      ...props,
      env: { account: config.account, region: regionConfig.region },
      terminationProtection: props.terminationProtection ?? config.profile === 'production',
    });
    this.regionConfig = regionConfig;
    this.azs = activeAzs(config, regionConfig);
    const production = config.profile === 'production';

    this.network = new Network(this, 'Network', {
      availabilityZones: this.azs,
      cidr: regionConfig.vpcCidr,
      natGateways: production ? this.azs.length : 1,
      interfaceEndpoints: production,
    });

    this.securityGroups = new SecurityGroups(this, 'SecurityGroups', {
      vpc: this.network.vpc,
      allowedIngressCidrs: config.allowedIngressCidrs,
      appPort: config.ports.app,
      databasePort: config.ports.database,
      proxyPort: RDS_PROXY_PORT,
      // The standby runs no proxy: its fleet and workers reach the cluster directly.
      directDatabaseAccess: role === 'standby',
    });
    this.network.allowEndpointAccessFrom(this.securityGroups.app, 'HTTPS from the checkout service');
    this.network.allowEndpointAccessFrom(this.securityGroups.lambda, 'HTTPS from the Lambda workers');

    this.alarmTopic = new AlarmTopic(this, 'Alarms', {
      emails: [config.alarmEmail],
      displayName: `${config.appName} alarms`,
    });
    const isPrimary = role === 'primary';
    const names = dataNames(config);
    this.database = new Database(this, 'Database', {
      vpc: this.network.vpc,
      securityGroup: this.securityGroups.database,
      proxySecurityGroup: this.securityGroups.databaseProxy,
      availabilityZones: this.azs,
      port: config.ports.database,
      engineVersion: config.database.engineVersion,
      instanceType: config.database.instanceType,
      // The standby runs one instance: it is promoted to writer on a regional failover,
      // and readers are added then (see docs/runbooks/region-failover.md).
      readers: isPrimary ? config.database.readers : 0,
      serverless: !production,
      backupRetentionDays: config.database.backupRetentionDays,
      protectData: production,
      alarmTopic: this.alarmTopic.topic,
      // After a regional failover, migrations there read the master credentials from the replica.
      secretReplicaRegions: isPrimary && config.standby ? [config.standby.region] : undefined,
      global: config.standby
        ? { role: isPrimary ? 'primary' : 'secondary', globalClusterIdentifier: names.globalCluster }
        : undefined,
    });
    if (this.database.rotationSecurityGroup) {
      // Private DNS sends the rotation function's Secrets Manager calls to the endpoint.
      this.network.allowEndpointAccessFrom(
        this.database.rotationSecurityGroup,
        'HTTPS from the secret rotation function',
      );
    }

    if (isPrimary && config.auditTrail) {
      // One multi-region trail per account records every region's management events.
      this.auditTrail = new AuditTrail(this, 'AuditTrail', { trailName: `${config.appName}-audit` });
    }

    if (isPrimary) {
      this.idempotencyTable = new IdempotencyTable(this, 'IdempotencyTable', {
        tableName: names.idempotencyTable,
        replicaRegions: config.standby ? [config.standby.region] : [],
        protectData: production,
      });
      this.backup = new BackupPlan(this, 'Backup', {
        vaultName: names.primaryVault,
        resourceArns: [this.database.cluster.clusterArn, this.idempotencyTable.table.tableArn],
        retentionDays: config.database.backupRetentionDays,
        copyToVaultArn: config.standby
          ? this.formatArn({
              service: 'backup',
              region: config.standby.region,
              resource: 'backup-vault',
              resourceName: names.standbyVault,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            })
          : undefined,
      });
    } else {
      this.backupCopyVault = createVault(this, 'BackupCopyVault', names.standbyVault);
    }

    this.messaging = messagingQueues(this, production);
    this.queues = {
      orderEvents: this.messaging.orderEvents.queue,
      paymentRetry: this.messaging.paymentRetry.queue,
    };
    this.loadBalancer = new LoadBalancer(this, 'LoadBalancer', {
      vpc: this.network.vpc,
      securityGroup: this.securityGroups.loadBalancer,
      allowedIngressCidrs: config.allowedIngressCidrs,
      // The certificate probe calls the public name from the VPC, through the NAT gateways.
      vpcEgressIps: this.network.natGatewayPublicIps,
      domainName: config.domainName,
      hostedZone: route53.HostedZone.fromHostedZoneAttributes(this, 'HostedZone', {
        hostedZoneId: config.hostedZone.id,
        zoneName: config.hostedZone.name,
      }),
      wafRateLimit: config.waf.ipRateLimit,
      deletionProtection: production,
      removalPolicy: production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    const minCapacity = isPrimary
      ? config.compute.minCapacity
      : (config.compute.standbyMinCapacity ?? config.compute.minCapacity);
    const gateway = config.service.paymentGateway;
    // The fleet and the payment-retry worker charge through the same gateway and key.
    const paymentGateway = gateway && {
      url: gateway.url,
      apiKeySecret: secretsmanager.Secret.fromSecretNameV2(
        this,
        'PaymentGatewayApiKey',
        gateway.apiKeySecretName,
      ),
    };
    this.fleet = new Fleet(this, 'Fleet', {
      vpc: this.network.vpc,
      securityGroup: this.securityGroups.app,
      listener: this.loadBalancer.httpsListener,
      appPort: config.ports.app,
      database: this.database,
      queues: this.queues,
      instanceType: new ec2.InstanceType(config.compute.instanceType),
      minCapacity,
      maxCapacity: config.compute.maxCapacity,
      sandbox: config.service.sandbox,
      paymentGateway,
      recommendationsUrl: config.service.recommendationsUrl,
      logLevel: config.service.logLevel,
      notificationTopic: this.alarmTopic.topic,
      removalPolicy: production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    if (isPrimary) {
      const secretsManagerEndpoint = this.network.interfaceEndpoints.SecretsManager;
      this.migrationJob = new MigrationJob(this, 'MigrationJob', {
        vpc: this.network.vpc,
        database: {
          cluster: this.database.cluster,
          secret: this.database.secret!,
          port: this.database.port,
          masterUser: this.database.masterUser,
        },
        secretsManagerEndpoint,
        // A writer instance must exist (the instances are the cluster's children), and
        // the proxy, so that the fleet finds everything it connects through.
        runAfter: [this.database.cluster, ...(this.database.proxy ? [this.database.proxy] : [])],
        removalPolicy: production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      });
      if (secretsManagerEndpoint) {
        this.network.allowEndpointAccessFrom(this.migrationJob.securityGroup, 'HTTPS from the migration job');
      }
      // New instances refuse to become ready while a migration is pending: the group is
      // created or updated (instance refresh) only once the schema is there.
      this.migrationJob.runBefore(this.fleet.autoScalingGroup);
    }
    this.fleetAlarms = new FleetAlarms(this, 'FleetAlarms', {
      loadBalancer: this.loadBalancer,
      fleet: this.fleet,
      availabilityZones: this.azs,
      minCapacity,
      alarmTopic: this.alarmTopic.topic,
    });
    if (production) {
      // AWS shifts traffic out of an impaired AZ on its own, and practices it weekly; a
      // practice run fails (and is reported) when checkout is impaired during it, and does
      // not start while an AZ is already short of healthy instances.
      this.loadBalancer.enableZonalAutoshift(this.fleetAlarms.servingImpaired, [
        this.fleetAlarms.capacityShort,
      ]);
    }

    // Tier 6. The workers run in the VPC with the workers' group: the AWS APIs through the
    // interface endpoints where there are some, everything else through the NAT gateways.
    const workers = { vpc: this.network.vpc, securityGroup: this.securityGroups.lambda };
    const workerRemoval = production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    // The standby's workers use their region's replica of the global table.
    const idempotencyTable =
      this.idempotencyTable?.table ??
      dynamodb.TableV2.fromTableName(this, 'IdempotencyTableReplica', names.idempotencyTable);
    this.orderEventsWorker = new OrderEventsWorker(this, 'OrderEventsWorker', {
      queue: this.messaging.orderEvents,
      idempotencyTable,
      vpc: workers,
      removalPolicy: workerRemoval,
    });
    this.paymentRetryWorker = new PaymentRetryWorker(this, 'PaymentRetryWorker', {
      queue: this.messaging.paymentRetry,
      idempotencyTable,
      // Through RDS Proxy in the primary; the standby has none and reaches its cluster
      // (read-only until promoted: a message there fails until then, see its runbook).
      database: this.database,
      vpc: workers,
      paymentGateway,
      sandbox: config.service.sandbox,
      timeout: PAYMENT_RETRY_CONSUMER_TIMEOUT,
      removalPolicy: workerRemoval,
    });
    this.certificateProbe = new CertificateProbe(this, 'CertificateProbe', {
      endpoints: [config.domainName, this.loadBalancer.regionalDomainName],
      vpc: workers,
      removalPolicy: workerRemoval,
    });
    this.inventoryReconciler = new InventoryReconciler(this, 'InventoryReconciler', {
      database: this.database,
      paymentRetryQueue: this.messaging.paymentRetry,
      vpc: workers,
      // Scheduled in both regions. Until a promotion the standby's cluster is a read-only
      // global secondary, and each run there connects (as the standby fleet does), finds
      // the database read-only and skips; once promoted, the next run reconciles, with no
      // step in the failover. A demoted primary's runs skip the same way. Its failure
      // alarm meanwhile proves the standby's path to the database, IAM login included.
      removalPolicy: workerRemoval,
    });
    // The database and fleet alarms notify the topic through their constructs' props.
    const messagingAlarms = [
      ...this.messaging.orderEvents.alarms,
      ...this.messaging.paymentRetry.alarms,
      ...this.paymentRetryWorker.alarms,
      ...this.certificateProbe.alarms,
      ...this.inventoryReconciler.alarms,
    ];
    this.alarmTopic.notify(...messagingAlarms);

    // Tier 7. Every alarm of the region in one place: the composite that says customers
    // are affected (the stop condition of the experiments below) and the dashboard.
    this.monitoring = new RegionalMonitoring(this, 'Monitoring', {
      alarmTopic: this.alarmTopic.topic,
      loadBalancer: this.loadBalancer,
      fleet: this.fleet,
      fleetAlarms: this.fleetAlarms,
      availabilityZones: this.azs,
      database: this.database,
      queues: { 'order-events': this.messaging.orderEvents, 'payment-retry': this.messaging.paymentRetry },
      workers: [
        { title: 'order-events worker', worker: this.orderEventsWorker.worker },
        { title: 'payment-retry worker', worker: this.paymentRetryWorker.worker },
        { title: 'inventory reconciler', worker: this.inventoryReconciler.worker },
        { title: 'certificate probe', worker: this.certificateProbe.worker },
      ],
      idempotencyTable,
      certificateMetrics: this.certificateProbe.expiryAlarms.map((a, i) => ({
        label: this.certificateProbe.endpoints[i].label,
        metric: a.metric,
      })),
      workerMetrics: [
        { label: 'inventory drift (units)', metric: this.inventoryReconciler.driftAlarm.metric },
        ...this.certificateProbe.failureAlarms.map((a, i) => ({
          label: `probe failed: ${this.certificateProbe.endpoints[i].label}`,
          metric: a.metric,
        })),
      ],
      alarms: [...this.database.alarms, ...this.fleetAlarms.alarms, ...messagingAlarms],
    });

    // Tier 8. Experiment templates cost nothing until started, so both profiles and both
    // regions get them: a dev account rehearses a game day before production runs it, and
    // the standby is the region a regional failover depends on. The zonal experiments
    // impair the first AZ, where the database writer is placed.
    this.chaos = new ChaosExperiments(this, 'Chaos', {
      stopAlarm: this.monitoring.checkoutImpaired,
      vpc: this.network.vpc,
      availabilityZone: this.azs[0],
      autoScalingGroup: this.fleet.autoScalingGroup,
      loadBalancer: this.loadBalancer.loadBalancer,
      zonalAutoshiftEnabled: this.loadBalancer.zonalAutoshift !== undefined,
      // FailoverDBCluster promotes a reader: only a cluster with one has a failover to test.
      failoverCluster: isPrimary && config.database.readers > 0 ? this.database.cluster : undefined,
      lambdaFaults: {
        functions: [this.orderEventsWorker.worker],
        stopAlarms: [this.messaging.orderEvents.deadLettersAlarm],
      },
      removalPolicy: production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
  }

  /**
   * The AZs from config. Overridden so that nothing in the stack ever triggers an
   * availability-zone context lookup (which would need AWS credentials at synth).
   */
  public override get availabilityZones(): string[] {
    return this.azs;
  }
}

/** Names both regions agree on without a cross-region reference. */
export function dataNames(config: AppConfig): {
  globalCluster: string;
  primaryVault: string;
  standbyVault: string;
  idempotencyTable: string;
} {
  return {
    globalCluster: `${config.appName}-global`,
    idempotencyTable: `${config.appName}-idempotency`,
    primaryVault: `${config.appName}-${config.primary.region}`,
    standbyVault: `${config.appName}-${config.standby?.region ?? 'none'}-copies`,
  };
}

/**
 * The payment-retry worker's timeout: the queue's visibility timeout is 6 x this, and
 * `WorkerFunction.consume` refuses a longer function. Raise both together here.
 */
export const PAYMENT_RETRY_CONSUMER_TIMEOUT: Duration = PAYMENT_RETRY_TIMEOUT;

/** Tier 5 of one region. */
export interface MessagingQueues {
  /** Events the outbox relays (`OrderConfirmed`, `OrderPaymentDeclined`, ...), applied by the order-events worker. */
  readonly orderEvents: ResilientQueue;
  /**
   * Orders the checkout deferred (`PaymentDeferred`), consumed by the payment-retry worker
   * (lib/constructs/payment-retry-worker.ts: in the VPC, through RDS Proxy with IAM auth),
   * which charges each once and confirms it or releases its stock. A message that fails
   * maxReceiveCount receives waits in the DLQ; its order's stock is released by the
   * inventory reconciler once the order has been pending past its hold.
   */
  readonly paymentRetry: ResilientQueue;
}

/**
 * Tier 5: the two queues the checkout service's outbox publishes to, each a
 * {@link ResilientQueue} named `<stack name>-<queue>` (the `<queue>` of `npm run redrive`)
 * with its `-dlq`. Their visibility timeouts follow their consumers' timeouts. Retained in
 * production: a deleted payment-retry queue would lose the orders waiting in it.
 */
export function messagingQueues(scope: Construct, production: boolean): MessagingQueues {
  const stackName = Stack.of(scope).stackName;
  const queueProps = (name: string) => ({
    queueName: `${stackName}-${name}`,
    removalPolicy: production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  });
  return {
    orderEvents: new ResilientQueue(scope, 'OrderEvents', {
      consumerTimeout: ORDER_EVENTS_TIMEOUT,
      queueProps: queueProps('order-events'),
    }),
    paymentRetry: new ResilientQueue(scope, 'PaymentRetry', {
      consumerTimeout: PAYMENT_RETRY_CONSUMER_TIMEOUT,
      queueProps: queueProps('payment-retry'),
    }),
  };
}
