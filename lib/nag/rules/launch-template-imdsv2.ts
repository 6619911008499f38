import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { TemplateModel, asObject } from '../template-model';

/**
 * Every EC2 launch template requires IMDSv2.
 *
 * For every AWS::EC2::LaunchTemplate, `LaunchTemplateData.MetadataOptions.HttpTokens` must
 * be `required`, unless `HttpEndpoint` is `disabled` (no instance metadata service at all).
 * Otherwise the template is reported (`NON_COMPLIANT`, no detail).
 *
 * Why: with `HttpTokens` `optional` (EC2's default for many AMIs) an instance also answers
 * IMDSv1's unauthenticated GET, so a server-side request forgery in the service, or an
 * open proxy on the host, hands out the instance role's credentials. IMDSv2's session token
 * needs a PUT, which such requests cannot make; with a hop limit of 1 (the fleet's),
 * containers on the host cannot reach it either.
 *
 * AWS documentation: Amazon EC2 User Guide, "Use the Instance Metadata Service to access
 * instance metadata" and "Configure the instance metadata options for new instances"
 * (HttpTokens `required`); AWS CloudFormation, "AWS::EC2::LaunchTemplate MetadataOptions".
 */
export function launchTemplateImdsv2(node: CfnResource): NagRuleResult {
  if (node.cfnResourceType !== 'AWS::EC2::LaunchTemplate') return NagRuleCompliance.NOT_APPLICABLE;
  const data = asObject(TemplateModel.of(node).resourceOf(node).properties.LaunchTemplateData);
  const options = asObject(data.MetadataOptions);
  if (options.HttpEndpoint === 'disabled') return NagRuleCompliance.COMPLIANT;
  return options.HttpTokens === 'required' ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
}
