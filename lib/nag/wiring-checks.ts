import { NagPackProps } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { dbConnectAuth } from './rules/db-connect-auth';
import { endpointReach } from './rules/endpoint-reach';
import { keyPolicyPrincipal } from './rules/key-policy-principal';
import { topicPublish } from './rules/topic-publish';
import { TemplateRulesPack } from './template-pack';

/** The pack's name: rule ids are `ResilientShopWiring-<Rule>[<finding>]`. */
export const WIRING_PACK = 'ResilientShopWiring';

/** The ids of the pack's rules (without the `[<finding>]` suffix each finding adds). */
export const WIRING_RULES = {
  topicPublish: `${WIRING_PACK}-TopicPublish`,
  endpointReach: `${WIRING_PACK}-EndpointReach`,
  dbConnectAuth: `${WIRING_PACK}-DbConnectAuth`,
  keyPolicyPrincipal: `${WIRING_PACK}-KeyPolicyPrincipal`,
} as const;

/**
 * Proves from the synthesized templates that the interactions the system needs are
 * allowed: alarms and rules can publish to their topic, VPC callers reach their interface
 * endpoints, every `rds-db:connect` grant can authenticate, and no key policy names a
 * principal the same deployment creates. The AWS Solutions, NIST and PCI packs check each
 * resource alone; these rules read the rest of the template (policies, security groups,
 * target groups) to decide about one resource.
 *
 * Every finding carries what it is about in brackets, e.g.
 * `ResilientShopWiring-EndpointReach[secretsmanager:NetworkVpcSecretsManager9D032D69]`;
 * acknowledge that exact id on the resource the finding names.
 *
 * Register with `Validations.of(app).addPlugins(new WiringChecks(app))`.
 */
export class WiringChecks extends TemplateRulesPack {
  public readonly name = WIRING_PACK;

  constructor(scope?: IConstruct, props?: NagPackProps) {
    super(
      WIRING_PACK,
      [
        {
          suffix: 'TopicPublish',
          info: 'The publishing service (CloudWatch or EventBridge) may not publish to this target topic: its topic policy or its key policy does not allow it.',
          explanation:
            'A topic policy replaces the SNS default policy, so it must Allow the service principal sns:Publish; an encrypted topic needs the service allowed kms:Decrypt and kms:GenerateDataKey* by the key policy. Otherwise notifications are dropped silently.',
          rule: topicPublish,
        },
        {
          suffix: 'EndpointReach',
          info: 'This VPC caller cannot reach the interface endpoint of a service it calls: the endpoint security group does not admit it on 443, or its own egress does not let 443 out.',
          explanation:
            'With private DNS on, the service hostname resolves to the endpoint inside the VPC, so its security group is the only way to the service; calls time out although IAM allows them.',
          rule: endpointReach,
        },
        {
          suffix: 'DbConnectAuth',
          info: 'This policy allows rds-db:connect as a user the proxy or database cannot authenticate.',
          explanation:
            'A cluster needs IAM database authentication on; a proxy needs end-to-end IAM auth with a role allowed to connect, or a secret for that user with IAM auth REQUIRED or ENABLED.',
          rule: dbConnectAuth,
        },
        {
          suffix: 'KeyPolicyPrincipal',
          info: 'This key policy names an IAM principal that the same template creates.',
          explanation:
            'KMS rejects a key policy whose principal IAM has not propagated yet, and a replaced role silently stops matching; grant the role in its own identity policy instead.',
          rule: keyPolicyPrincipal,
        },
      ],
      scope,
      props,
    );
  }
}
