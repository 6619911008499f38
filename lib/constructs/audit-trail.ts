import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';
import { allowLogsToUseKey } from '../kms';

/** Properties of {@link AuditTrail}. */
export interface AuditTrailProps {
  /** The trail's name; its ARN is derived from it, so the key policy can name the trail. */
  readonly trailName: string;
  /**
   * Days every log file is locked against deletion and overwrite (S3 Object Lock,
   * governance mode), and kept; the bucket deletes them this many days after they
   * were written, plus 30.
   * @default 365
   */
  readonly retentionDays?: number;
  /** Days the trail's CloudWatch Logs copy (for Logs Insights queries) is kept. @default one year */
  readonly logGroupRetention?: logs.RetentionDays;
}

/**
 * Who changed what: a multi-region CloudTrail trail of every management event (read and
 * write) of the account, including global services (IAM, STS, Route 53), with log file
 * integrity validation, delivered to an S3 bucket that is KMS-encrypted, TLS-only,
 * versioned and Object Lock protected (write once, read many for `retentionDays`), and to
 * a KMS-encrypted CloudWatch Logs group so Logs Insights can answer "who changed this
 * security group" in seconds (docs/observability.md).
 *
 * Who must reach what, and what allows it:
 * - CloudTrail writes objects: the bucket policy CDK's `Trail` writes (`s3:GetBucketAcl`,
 *   `s3:PutObject` on `AWSLogs/<account>/*` with `bucket-owner-full-control`).
 * - CloudTrail encrypts log and digest files under the key: the key policy statements
 *   the CloudTrail user guide requires ("Configure AWS KMS key policies for CloudTrail"):
 *   `kms:GenerateDataKey*` for `cloudtrail.amazonaws.com`, limited to this account's
 *   trails by the `aws:cloudtrail:arn` encryption context and to this trail by
 *   `aws:SourceArn`, and `kms:DescribeKey` for this trail. CDK's `Trail` writes neither
 *   (aws/aws-cdk#3822): without them trail creation fails with "Insufficient permissions
 *   to access S3 bucket".
 * - CloudTrail writes to the log group through the role CDK's `Trail` creates; CloudWatch
 *   Logs encrypts it under the key ({@link allowLogsToUseKey}).
 * - Readers decrypt through IAM: the key policy's account statement delegates to IAM, so
 *   an auditor role needs `kms:Decrypt` on this key and `s3:GetObject` on the bucket.
 *
 * One per account is enough: deploy it in the primary region only. An account whose
 * organization trail already records management events can turn it off
 * (`auditTrail: false` in the config) and save the second copy's price ($2 per 100,000
 * management events; the first copy of management events is free).
 */
export class AuditTrail extends Construct {
  /** The trail. */
  public readonly trail: cloudtrail.Trail;
  /** The Object Lock bucket holding the log and digest files. */
  public readonly bucket: s3.Bucket;
  /** The key encrypting the bucket's objects and the log group. */
  public readonly key: kms.Key;
  /** The CloudWatch Logs copy of the trail. */
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: AuditTrailProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const retentionDays = props.retentionDays ?? 365;
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      throw new Error(`AuditTrail ${this.node.path}: retentionDays must be a whole number of days >= 1`);
    }
    const trailArn = stack.formatArn({
      service: 'cloudtrail',
      resource: 'trail',
      resourceName: props.trailName,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });

    // Audit data outlives the stack: the key, the bucket and the log group are retained.
    this.key = new kms.Key(this, 'Key', {
      description: `Encrypts the ${props.trailName} CloudTrail log files and their CloudWatch Logs copy`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudTrailToEncryptLogFiles',
        principals: [new iam.ServicePrincipal('cloudtrail.amazonaws.com')],
        actions: ['kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceArn': trailArn },
          StringLike: {
            'kms:EncryptionContext:aws:cloudtrail:arn': `arn:${stack.partition}:cloudtrail:*:${stack.account}:trail/*`,
          },
        },
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudTrailToDescribeKey',
        principals: [new iam.ServicePrincipal('cloudtrail.amazonaws.com')],
        actions: ['kms:DescribeKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceArn': trailArn } },
      }),
    );
    allowLogsToUseKey(this.key, 'AllowCloudWatchLogsForTheTrailCopy');

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      // CloudTrail names the key on every write; an S3 Bucket Key would also need kms:Decrypt for CloudTrail.
      bucketKeyEnabled: false,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      // Governance mode: nobody deletes or overwrites a log file inside the retention
      // period unless they hold s3:BypassGovernanceRetention (which no role here has).
      // Compliance mode would bind even the root user, and an account closing a test
      // deployment could then not delete the bucket for a year: a deliberate choice to
      // make per organization, not a default.
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.governance(Duration.days(retentionDays)),
      lifecycleRules: [
        {
          id: 'ArchiveThenExpireAuditLogs',
          transitions: [
            { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) },
          ],
          expiration: Duration.days(retentionDays + 30),
          noncurrentVersionExpiration: Duration.days(retentionDays + 30),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logGroupRetention ?? logs.RetentionDays.ONE_YEAR,
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // CloudTrail's role for the log group, with a customer managed policy: CDK's `Trail`
    // would create one with an inline policy (`sendToCloudWatchLogs`), which the NIST and
    // PCI packs refuse. Trusted by CloudTrail for this trail only (aws:SourceArn).
    const logsRole = new iam.Role(this, 'LogsRole', {
      description: `Lets the ${props.trailName} trail write its events to its CloudWatch Logs group`,
      assumedBy: new iam.ServicePrincipal('cloudtrail.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceArn': trailArn } },
      }),
    });
    const logsPolicy = new iam.ManagedPolicy(this, 'LogsPolicy', {
      description: `CloudTrail writes the ${props.trailName} events to its log group`,
      statements: [
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [this.logGroup.logGroupArn],
        }),
      ],
      roles: [logsRole],
    });

    this.trail = new cloudtrail.Trail(this, 'Trail', {
      trailName: props.trailName,
      bucket: this.bucket,
      encryptionKey: this.key,
      isMultiRegionTrail: true,
      includeGlobalServiceEvents: true,
      enableFileValidation: true,
      managementEvents: cloudtrail.ReadWriteType.ALL,
      sendToCloudWatchLogs: false,
    });
    const cfnTrail = this.trail.node.defaultChild as cloudtrail.CfnTrail;
    cfnTrail.cloudWatchLogsLogGroupArn = this.logGroup.logGroupArn;
    cfnTrail.cloudWatchLogsRoleArn = logsRole.roleArn;
    // CloudTrail checks the key policy, the bucket policy and the role's permissions when
    // the trail is created. The key, the bucket policy (CDK's Trail) and the role are
    // referenced already; the role's policy is not.
    this.trail.node.addDependency(logsPolicy);

    acknowledge(
      this.bucket,
      ['AwsSolutions-S1', 'NIST.800.53.R5-S3BucketLoggingEnabled', 'PCI.DSS.321-S3BucketLoggingEnabled'],
      'This bucket is the audit log itself: every change to it and its policy is a management event this trail records, and its objects are Object Lock protected; server access logs would need another bucket outside that protection.',
    );
    acknowledge(
      this.bucket,
      ['NIST.800.53.R5-S3BucketReplicationEnabled', 'PCI.DSS.321-S3BucketReplicationEnabled'],
      'The trail is multi-region and its log files carry integrity digests; replicating them would need a second Object Lock bucket and key in the standby region, left to organizations that copy trails to a log-archive account.',
    );
  }
}
