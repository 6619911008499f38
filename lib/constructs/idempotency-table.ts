import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

/** Properties of {@link IdempotencyTable}. */
export interface IdempotencyTableProps {
  /**
   * Regions that hold a replica (a global table), for the warm standby.
   *
   * @default - no replicas
   */
  readonly replicaRegions?: string[];

  /**
   * Whether the table survives `cdk destroy` and refuses deletion.
   *
   * @default true
   */
  readonly protectData?: boolean;

  /**
   * The table's name. Give one when another region must find the table without a
   * cross-region reference: the standby's workers use the replica by this name.
   *
   * @default - a name CloudFormation generates
   */
  readonly tableName?: string;
}

/**
 * The table Powertools for AWS Lambda idempotency expects: partition key `id` (string),
 * TTL attribute `expiration`. On-demand capacity (no throttling cliff on a spike),
 * point-in-time recovery, KMS encryption, optional replicas.
 *
 * Encryption uses the AWS managed key (`aws/dynamodb`), a KMS key, not the default
 * owned key: a customer managed key would need a key in every replica region before the
 * table exists, which the stack order (primary first, for the global database) forbids.
 */
export class IdempotencyTable extends Construct {
  /** The table. */
  public readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string, props: IdempotencyTableProps = {}) {
    super(scope, id);
    const protect = props.protectData ?? true;
    this.table = new dynamodb.TableV2(this, 'Table', {
      tableName: props.tableName,
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiration',
      billing: dynamodb.Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
      deletionProtection: protect,
      removalPolicy: protect ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      replicas: (props.replicaRegions ?? []).map((region) => ({ region })),
    });
  }
}
