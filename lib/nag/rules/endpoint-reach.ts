import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { SecurityGroupGraph, groupKeys, valueKey } from '../network';
import { SourcedStatement, managedPolicyServices, statementsOfPrincipal } from '../policy';
import { TemplateModel, TemplateResource, asArray, asObject, flatString } from '../template-model';

const HTTPS = 443;
const ANY_SERVICE = '*';

/** A resource that runs code in a VPC: its security groups, subnets and the services it calls. */
interface Caller {
  readonly groups: string[];
  readonly subnets?: unknown;
  readonly services: Set<string>;
}

/** Service prefixes whose calls the Lambda service makes for a function, never the code. */
const LAMBDA_SERVICE_PREFIXES = ['logs', 'xray'];
/** Actions Lambda calls with the function's role: VPC networking, and polling for event source mappings. */
const LAMBDA_ENI_ACTIONS =
  /^ec2:(Create|Describe|Delete)NetworkInterfaces?$|^ec2:(Un)?AssignPrivateIpAddresses$/i;
const LAMBDA_POLLER_ACTIONS =
  /^(sqs:(ReceiveMessage|DeleteMessage|ChangeMessageVisibility|GetQueueAttributes|GetQueueUrl)|kinesis:(Get|Describe|List|SubscribeToShard).*|dynamodb:(GetRecords|GetShardIterator|DescribeStream|ListStreams))$/i;

/** Rotation applications that CDK's SecretRotation deploys from the Serverless Application Repository. */
const ROTATION_APPLICATION = /SecretsManager\w*Rotation(SingleUser|MultiUser)/;

/** Endpoint service names whose IAM prefix is not their last dot-segment. */
const ENDPOINT_PREFIXES: Record<string, string> = {
  monitoring: 'cloudwatch',
  'ecr.api': 'ecr',
  'ecr.dkr': 'ecr',
  'sagemaker.api': 'sagemaker',
  'sagemaker.runtime': 'sagemaker',
  'bedrock-runtime': 'bedrock',
};

/** The IAM service prefix of an endpoint's `ServiceName` (`com.amazonaws.<region>.<service>`). */
export function endpointServicePrefix(serviceName: unknown): string | undefined {
  const suffix = /^(?:com\.amazonaws|aws\.api|aws\.sagemaker)\.[^.]+\.(.+)$/.exec(
    flatString(serviceName),
  )?.[1];
  if (!suffix) return undefined;
  return ENDPOINT_PREFIXES[suffix] ?? suffix.split('.').pop();
}

/** A grant used only through another service (`kms:ViaService`): the caller never calls that API. */
function onlyViaService({ statement }: SourcedStatement): boolean {
  return Object.values(statement.condition ?? {}).some((test) =>
    Object.keys(asObject(test)).some((key) => key.toLowerCase() === 'kms:viaservice'),
  );
}

/** The service prefixes the roles' Allow statements grant, minus actions `skip` says someone else makes. */
function servicesOfRoles(
  model: TemplateModel,
  roles: TemplateResource[],
  skip: (action: string) => boolean = () => false,
): Set<string> {
  const services = new Set<string>();
  for (const role of roles) {
    for (const service of managedPolicyServices(role)) {
      if (!skip(`${service}:*`)) services.add(service);
    }
    for (const sourced of statementsOfPrincipal(model, role)) {
      if (sourced.statement.effect !== 'Allow' || onlyViaService(sourced)) continue;
      if (sourced.statement.notActions) services.add(ANY_SERVICE);
      for (const action of sourced.statement.actions ?? []) {
        if (skip(action)) continue;
        services.add(action === '*' ? ANY_SERVICE : action.split(':')[0].toLowerCase());
      }
    }
  }
  return services;
}

function instanceProfileRoles(model: TemplateModel, profile: unknown): TemplateResource[] {
  const value = asObject(profile).Arn ?? asObject(profile).Name ?? profile;
  const resource = model.target(value, 'AWS::IAM::InstanceProfile');
  return resource ? model.targets(resource.properties.Roles, 'AWS::IAM::Role') : [];
}

type CallerReader = (model: TemplateModel, self: TemplateResource) => Caller | undefined;

const lambdaFunction: CallerReader = (model, self) => {
  const vpcConfig = asObject(self.properties.VpcConfig);
  const role = model.target(self.properties.Role, 'AWS::IAM::Role');
  const polled = model
    .ofType('AWS::Lambda::EventSourceMapping')
    .some((m) => model.target(m.properties.FunctionName)?.logicalId === self.logicalId);
  const skip = (action: string) =>
    LAMBDA_SERVICE_PREFIXES.includes(action.split(':')[0].toLowerCase()) ||
    LAMBDA_ENI_ACTIONS.test(action) ||
    (polled && LAMBDA_POLLER_ACTIONS.test(action));
  return {
    groups: groupKeys(vpcConfig.SecurityGroupIds),
    subnets: vpcConfig.SubnetIds,
    services: servicesOfRoles(model, role ? [role] : [], skip),
  };
};

const launchTemplate: CallerReader = (model, self) => {
  const data = asObject(self.properties.LaunchTemplateData);
  const interfaces = asArray(data.NetworkInterfaces).map(asObject);
  return {
    groups: [...groupKeys(data.SecurityGroupIds), ...interfaces.flatMap((i) => groupKeys(i.Groups))],
    subnets: interfaces.map((i) => i.SubnetId),
    services: servicesOfRoles(model, instanceProfileRoles(model, data.IamInstanceProfile)),
  };
};

const instance: CallerReader = (model, self) => {
  const interfaces = asArray(self.properties.NetworkInterfaces).map(asObject);
  return {
    groups: [
      ...groupKeys(self.properties.SecurityGroupIds),
      ...interfaces.flatMap((i) => groupKeys(i.GroupSet)),
    ],
    subnets: [self.properties.SubnetId, ...interfaces.map((i) => i.SubnetId)],
    services: servicesOfRoles(model, instanceProfileRoles(model, self.properties.IamInstanceProfile)),
  };
};

const launchConfiguration: CallerReader = (model, self) => ({
  groups: groupKeys(self.properties.SecurityGroups),
  services: servicesOfRoles(model, instanceProfileRoles(model, self.properties.IamInstanceProfile)),
});

const rotationApplication: CallerReader = (model, self) => {
  const applicationId = asObject(self.properties.Location).ApplicationId;
  if (!model.literals(applicationId).some((id) => ROTATION_APPLICATION.test(id))) return undefined;
  const parameters = asObject(self.properties.Parameters);
  return {
    groups: groupKeys(parameters.vpcSecurityGroupIds),
    subnets: parameters.vpcSubnetIds,
    services: new Set(['secretsmanager']),
  };
};

const CALLERS: Record<string, CallerReader> = {
  'AWS::Lambda::Function': lambdaFunction,
  'AWS::EC2::LaunchTemplate': launchTemplate,
  'AWS::EC2::Instance': instance,
  'AWS::AutoScaling::LaunchConfiguration': launchConfiguration,
  'AWS::Serverless::Application': rotationApplication,
};

/**
 * VPC callers reach their interface endpoints.
 *
 * For every Lambda function with a `VpcConfig`, EC2 launch template, instance or launch
 * configuration with security groups, and every Secrets Manager rotation application (the
 * AWS::Serverless::Application CDK's `SecretRotation` deploys), works out which AWS services
 * it calls: the service prefixes of the actions its role's policies allow (for instances,
 * the roles of the instance profile; Lambda's own calls, `logs`, `xray`, network interfaces
 * and event-source polling, are left out), or `secretsmanager` for a rotation application.
 * For each such service with an Interface endpoint in the caller's VPC that has private DNS
 * on, proves that:
 *
 * - one of the endpoint's security groups admits TCP 443 from one of the caller's groups (or
 *   from a CIDR covering the VPC), and
 * - one of the caller's groups lets TCP 443 out to an endpoint group or a CIDR covering the
 *   endpoint (no egress rule at all is EC2's allow-all; CDK's 255.255.255.255/32 placeholder
 *   is none).
 *
 * Each finding names the service and the endpoint: `[<service>:<endpoint logical id>]`.
 *
 * Why: with private DNS on, the service's public hostname resolves to the endpoint's
 * addresses inside the VPC, so a caller whose traffic the endpoint's group drops has no
 * other way out: every SDK call times out (a rotation never finishes, a worker never
 * reads its queue) although IAM allows it.
 *
 * AWS documentation: AWS PrivateLink Guide, "Access an AWS service using an interface VPC
 * endpoint" (the endpoint's security group must allow HTTPS from the clients); AWS Secrets
 * Manager User Guide, "Network access for Lambda rotation function".
 */
export function endpointReach(node: CfnResource): NagRuleResult {
  const read = CALLERS[node.cfnResourceType];
  if (!read) return NagRuleCompliance.NOT_APPLICABLE;
  const model = TemplateModel.of(node);
  const caller = read(model, model.resourceOf(node));
  if (!caller || caller.groups.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
  const graph = SecurityGroupGraph.of(model);
  const vpc = graph.vpcOf(caller.groups, caller.subnets);
  if (!vpc) return NagRuleCompliance.NOT_APPLICABLE;

  const findings: string[] = [];
  let applies = false;
  for (const endpoint of model.ofType('AWS::EC2::VPCEndpoint')) {
    const p = endpoint.properties;
    const service = endpointServicePrefix(p.ServiceName);
    const privateDns = p.PrivateDnsEnabled === true || p.PrivateDnsEnabled === 'true';
    if (String(p.VpcEndpointType).toLowerCase() !== 'interface' || !privateDns || !service) continue;
    if (valueKey(p.VpcId) !== vpc) continue;
    if (!caller.services.has(service) && !caller.services.has(ANY_SERVICE)) continue;
    applies = true;
    // Without SecurityGroupIds the endpoint gets the VPC's default group, which admits no caller here.
    const endpointGroups = groupKeys(p.SecurityGroupIds);
    const admitted = caller.groups.some((g) => endpointGroups.some((eg) => graph.admits(eg, g, vpc, HTTPS)));
    const cidrs = graph.subnetCidrs(p.SubnetIds);
    const leaves = caller.groups.some((g) => graph.egressReaches(g, endpointGroups, vpc, cidrs, HTTPS));
    if (!admitted || !leaves) findings.push(`${service}:${endpoint.logicalId}`);
  }
  if (!applies) return NagRuleCompliance.NOT_APPLICABLE;
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
