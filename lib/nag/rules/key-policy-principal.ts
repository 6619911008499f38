import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { statementsOf } from '../policy';
import { TemplateModel, asObject } from '../template-model';

const KEYS = ['AWS::KMS::Key', 'AWS::KMS::ReplicaKey'];
const IAM_PRINCIPALS = ['AWS::IAM::Role', 'AWS::IAM::User', 'AWS::IAM::Group'];

/**
 * No key policy names a principal the same template creates.
 *
 * For every AWS::KMS::Key (and AWS::KMS::ReplicaKey), any key policy statement whose
 * `Principal.AWS` or `NotPrincipal.AWS` refers (`Ref`, `Fn::GetAtt`, or inside an
 * `Fn::Join`) to an IAM role, user or group of the same template is a finding, named by the
 * principal's logical id: `[<principal logical id>]`.
 *
 * Why: KMS checks that every principal of a key policy exists when the policy is set, and a
 * role IAM created seconds earlier may not be visible to KMS yet, so the deployment fails
 * (MalformedPolicyDocumentException), intermittently and only when the role is new: a fresh
 * stack, a new region, or an update that replaces the role (the key policy is rewritten with
 * the new ARN, and races it again). The grant belongs in the role's own identity policy
 * (`key.grantDecrypt(role)` on a key whose policy trusts the account), which IAM evaluates
 * together with the key policy's account statement.
 *
 * AWS documentation: AWS KMS API Reference, "CreateKey" and "PutKeyPolicy" (Policy: "The
 * principals in the key policy must exist and be visible to KMS ... the new principal might
 * not be immediately visible to KMS"); AWS KMS Developer Guide, "Default key policy"
 * (letting the account's IAM policies grant use of the key).
 */
export function keyPolicyPrincipal(node: CfnResource): NagRuleResult {
  if (!KEYS.includes(node.cfnResourceType)) return NagRuleCompliance.NOT_APPLICABLE;
  const model = TemplateModel.of(node);
  const statements = statementsOf(model.resourceOf(node).properties.KeyPolicy);
  const named = statements.flatMap((s) =>
    model.targets([asObject(s.principal).AWS, asObject(s.notPrincipal).AWS], ...IAM_PRINCIPALS),
  );
  const ids = [...new Set(named.map((p) => p.logicalId))];
  return ids.length > 0 ? ids : NagRuleCompliance.COMPLIANT;
}
