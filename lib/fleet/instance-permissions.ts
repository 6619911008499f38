import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';

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
