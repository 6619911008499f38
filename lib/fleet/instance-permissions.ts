import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';
import type { FleetProps } from '../constructs/fleet';

/** The service-linked role Auto Scaling publishes notifications with (created by AWS, not by a template). */
export const AUTOSCALING_SERVICE_LINKED_ROLE =
  'aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling';

/**
 * What `get-secret-value --secret-id` takes for a secret: its full ARN when known, else its
 * name (an imported-by-name secret's `secretArn` lacks the random suffix, and Secrets
 * Manager resolves a partial ARN only while it is unambiguous).
 */
export function secretId(secret: secretsmanager.ISecret): string {
  return secret.secretFullArn ?? secret.secretName;
}

/** The ARN an identity policy must name: with `-??????` for a secret known by name only (its suffix is random). */
export function secretPolicyArn(secret: secretsmanager.ISecret): string {
  return secret.secretFullArn ?? `${secret.secretArn}-??????`;
}

/**
 * Routes grants (such as `Database.grantConnect`) into a customer managed policy instead
 * of the inline DefaultPolicy CDK would add: NIST 800-53 AC-6 and PCI DSS 7.x want
 * permissions reviewable as policies (as `Network` does for its flow-log role).
 */
export class ManagedPolicyGrantee implements iam.IPrincipal {
  public readonly grantPrincipal: iam.IPrincipal = this;
  public readonly assumeRoleAction: string;
  public readonly policyFragment: iam.PrincipalPolicyFragment;
  public readonly principalAccount: string | undefined;

  constructor(
    role: iam.Role,
    private readonly policy: iam.ManagedPolicy,
  ) {
    this.assumeRoleAction = role.assumeRoleAction;
    this.policyFragment = role.policyFragment;
    this.principalAccount = role.principalAccount;
  }

  public addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    this.policy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.policy };
  }

  public addToPolicy(statement: iam.PolicyStatement): boolean {
    return this.addToPrincipalPolicy(statement).statementAdded;
  }
}

/**
 * Auto Scaling publishes notifications as its service-linked role, whose policy covers
 * AWS managed keys only: a topic under a customer managed key must let that role encrypt
 * (Amazon EC2 Auto Scaling User Guide, "Required AWS KMS key policy"). The role is named
 * through a condition, not as the principal: KMS refuses a key policy whose principal
 * does not exist yet, and the role only exists once the account's first Auto Scaling
 * group does.
 */
export function allowAutoScalingToEncrypt(key: kms.Key): void {
  const stack = Stack.of(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowAutoScalingNotifications',
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: {
        ArnEquals: {
          'aws:PrincipalArn': stack.formatArn({
            service: 'iam',
            region: '',
            resource: 'role',
            resourceName: AUTOSCALING_SERVICE_LINKED_ROLE,
          }),
        },
        StringEquals: { 'kms:ViaService': `sns.${stack.region}.amazonaws.com` },
      },
    }),
  );
}

/** The fleet's own resources the instance role is scoped to. */
export interface InstanceRoleScope {
  /** The service bundle: the role reads its one object. */
  readonly bundle: s3assets.Asset;
  /** The service's log group: the role writes to it alone. */
  readonly logGroup: logs.ILogGroup;
  /** The admin token secret: the role reads it at service start. */
  readonly adminTokenSecret: secretsmanager.ISecret;
  /** The Auto Scaling group's fixed name: the role completes launch actions of that group only. */
  readonly autoScalingGroupName: string;
  /** The only namespace the CloudWatch agent may put host metrics into. */
  readonly hostMetricsNamespace: string;
}

/** The instance role and the customer managed policy that holds all of its permissions. */
export interface FleetInstanceRole {
  readonly role: iam.Role;
  readonly policy: iam.ManagedPolicy;
}

/**
 * The fleet's instance role (`InstanceRole`) and its one customer managed policy
 * (`InstancePolicy`), created in `scope`: read its bundle, send to the two queues, write
 * its log group, put host metrics to one namespace, read its secrets, complete its own
 * launch lifecycle action, log in to the database as the application user (IAM), and
 * decrypt only through the services that use the keys; plus AmazonSSMManagedInstanceCore
 * for Session Manager.
 */
export function createInstanceRole(
  scope: Construct,
  props: FleetProps,
  fleet: InstanceRoleScope,
): FleetInstanceRole {
  const role = new iam.Role(scope, 'InstanceRole', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description:
      'Checkout fleet instances: bundle, database as checkout, queues, logs, metrics, secrets, SSM',
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
  });
  const policy = new iam.ManagedPolicy(scope, 'InstancePolicy', {
    description: 'What a checkout fleet instance needs, and nothing else',
    roles: [role],
  });
  grantInstancePermissions(policy, props, fleet);
  props.database.grantConnect(new ManagedPolicyGrantee(role, policy));
  acknowledgeInstanceRole(role, policy, fleet.autoScalingGroupName);
  return { role, policy };
}

function grantInstancePermissions(
  policy: iam.ManagedPolicy,
  props: FleetProps,
  fleet: InstanceRoleScope,
): void {
  const stack = Stack.of(policy);
  policy.addStatements(
    new iam.PolicyStatement({
      sid: 'ReadServiceBundle',
      actions: ['s3:GetObject'],
      resources: [
        stack.formatArn({
          service: 's3',
          region: '',
          account: '',
          resource: fleet.bundle.s3BucketName,
          resourceName: fleet.bundle.s3ObjectKey,
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
      resources: [fleet.logGroup.logGroupArn],
    }),
    new iam.PolicyStatement({
      sid: 'PutHostMetrics',
      actions: ['cloudwatch:PutMetricData'],
      resources: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': fleet.hostMetricsNamespace } },
    }),
    new iam.PolicyStatement({
      sid: 'ReadServiceSecrets',
      actions: ['secretsmanager:GetSecretValue'],
      resources: [
        secretPolicyArn(fleet.adminTokenSecret),
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
          resourceName: `*:autoScalingGroupName/${fleet.autoScalingGroupName}`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
    }),
  );
  const secretKeys = [fleet.adminTokenSecret.encryptionKey, props.paymentGateway?.apiKeySecret.encryptionKey];
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

function acknowledgeInstanceRole(
  role: iam.Role,
  policy: iam.ManagedPolicy,
  autoScalingGroupName: string,
): void {
  acknowledge(
    role,
    ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]'],
    'AmazonSSMManagedInstanceCore is the policy Systems Manager documents for Session Manager, the only way operators reach an instance (no SSH, no key pair).',
  );
  acknowledge(
    policy,
    ['AwsSolutions-IAM5[Resource::*]'],
    'cloudwatch:PutMetricData has no resource-level permissions; the statement is limited by its cloudwatch:namespace condition to the fleet host-metrics namespace.',
  );
  const stack = Stack.of(policy);
  acknowledge(
    policy,
    [
      `AwsSolutions-IAM5[Resource::arn:${stack.partition}:autoscaling:${stack.region}:${stack.account}:autoScalingGroup:*:autoScalingGroupName/${autoScalingGroupName}]`,
    ],
    'An Auto Scaling group ARN holds an id AWS assigns at creation; the wildcard stands for that id only, and the group name after it pins the statement to this fleet.',
  );
}
