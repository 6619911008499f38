import { Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SERVICE_NODE_FLAGS } from '../../service/config';
import type { FleetProps } from '../constructs/fleet';
import { BootSettings, FLEET_PATHS, SANDBOX_PORTS } from './boot-script';
import { secretId } from './instance-permissions';
import * as timings from './timings';

/** The fleet's own resources and resolved settings the boot script names. */
export interface BootSettingsScope {
  /** The service's port (resolved default). */
  readonly appPort: number;
  /** Whether the instances run the sandbox fakes (resolved default). */
  readonly sandbox: boolean;
  /** The service bundle the instance downloads. */
  readonly bundle: s3assets.Asset;
  /** The group whose launch lifecycle action the instance completes. */
  readonly autoScalingGroupName: string;
  /** The launch lifecycle hook the instance completes once the service is ready. */
  readonly lifecycleHookName: string;
  /** The admin routes' bearer token, fetched at every service start. */
  readonly adminTokenSecret: secretsmanager.ISecret;
  /** Where the CloudWatch agent ships the service's logs. */
  readonly logGroup: logs.ILogGroup;
  /** Where the CloudWatch agent puts host metrics. */
  readonly hostMetricsNamespace: string;
}

/**
 * What the boot script (`renderBootScript`, lib/fleet/boot-script.ts) is rendered from: the service's
 * non-secret environment (connection, dependency and queue URLs, the drain timings of
 * lib/fleet/timings.ts), the secrets it fetches at start (named by ARN, never by value),
 * and where the instance reports to.
 */
export function fleetBootSettings(
  scope: Construct,
  props: FleetProps,
  fleet: BootSettingsScope,
): BootSettings {
  const stack = Stack.of(scope);
  const appPort = fleet.appPort;
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
    ['RECOMMENDATIONS_URL', props.recommendationsUrl ?? `http://127.0.0.1:${SANDBOX_PORTS.recommendations}`],
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
  // The service reads the gateway's API key from Secrets Manager itself, refreshes it every
  // PAYMENT_API_KEY_REFRESH_MS and re-reads it on a 401/403, so a rotated key is followed
  // without a restart (service/payment-api-key.ts). The instance role may read the secret.
  if (props.paymentGateway) {
    environment.push(['PAYMENT_API_KEY_SECRET_ID', secretId(props.paymentGateway.apiKeySecret)]);
  }

  return {
    region: stack.region,
    appPort,
    bundle: { bucket: fleet.bundle.s3BucketName, key: fleet.bundle.s3ObjectKey },
    autoScalingGroupName: fleet.autoScalingGroupName,
    lifecycleHookName: fleet.lifecycleHookName,
    environment,
    secrets: [{ name: 'ADMIN_TOKEN', secretArn: secretId(fleet.adminTokenSecret) }],
    sandbox: fleet.sandbox,
    logGroupName: fleet.logGroup.logGroupName,
    hostMetricsNamespace: fleet.hostMetricsNamespace,
    nodeFlags: SERVICE_NODE_FLAGS,
    stopTimeoutSeconds: timings.SERVICE_STOP_TIMEOUT.toSeconds(),
    readyDeadlineSeconds: timings.READY_DEADLINE.toSeconds(),
    trustRdsCa,
  };
}

/** What the launch template is made of. */
export interface FleetLaunchTemplateOptions {
  /** A Graviton (arm64) instance type. */
  readonly instanceType: ec2.InstanceType;
  /** The user data, tokens included. */
  readonly bootScript: string;
  /** The instance role (CDK creates its instance profile). */
  readonly role: iam.IRole;
  /** The instances' security group. */
  readonly securityGroup: ec2.ISecurityGroup;
}

/**
 * The fleet's launch template (`LaunchTemplate`): Amazon Linux 2023 for arm64, the latest
 * image from the public SSM parameter (resolved by CloudFormation at deploy, never looked
 * up at synth), IMDSv2 only with a hop limit of 1, detailed monitoring, EBS-optimized, an
 * encrypted 20 GiB gp3 root volume, no key pair (Session Manager only).
 */
export function createLaunchTemplate(
  scope: Construct,
  options: FleetLaunchTemplateOptions,
): ec2.LaunchTemplate {
  return new ec2.LaunchTemplate(scope, 'LaunchTemplate', {
    machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
    instanceType: options.instanceType,
    userData: ec2.UserData.custom(options.bootScript),
    role: options.role,
    securityGroup: options.securityGroup,
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
}
