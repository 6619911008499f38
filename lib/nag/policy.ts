import { JsonObject, TemplateModel, TemplateResource, asArray, asObject, flatString } from './template-model';

/** One statement of a policy document, with every list normalized to an array. */
export interface Statement {
  readonly effect: 'Allow' | 'Deny';
  readonly actions?: string[];
  readonly notActions?: string[];
  readonly resources?: unknown[];
  readonly notResources?: unknown[];
  readonly principal?: unknown;
  readonly notPrincipal?: unknown;
  readonly condition?: JsonObject;
}

/** The statements of a policy document (an IAM, key, topic or endpoint policy). */
export function statementsOf(document: unknown): Statement[] {
  return asArray(asObject(document).Statement).map((raw) => {
    const s = asObject(raw);
    const strings = (v: unknown) => (v === undefined ? undefined : asArray(v).map((a) => flatString(a)));
    return {
      effect: s.Effect === 'Deny' ? 'Deny' : 'Allow',
      actions: strings(s.Action),
      notActions: strings(s.NotAction),
      resources: s.Resource === undefined ? undefined : asArray(s.Resource),
      notResources: s.NotResource === undefined ? undefined : asArray(s.NotResource),
      principal: s.Principal,
      notPrincipal: s.NotPrincipal,
      condition: s.Condition === undefined ? undefined : asObject(s.Condition),
    };
  });
}

function globRegExp(pattern: string): RegExp {
  const body = pattern
    .split('')
    // A `*` in the tested value is only covered by a `*` of the pattern, never by `?`.
    .map((c) => (c === '*' ? '.*' : c === '?' ? '[^*]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

/**
 * Whether an IAM wildcard pattern covers a value, case-insensitively. The value may be a
 * pattern too (`kms:GenerateDataKey*`): it is covered only if the pattern covers every
 * string it matches (`kms:*` and `kms:GenerateDataKey*` do, `kms:GenerateDataKey` does not).
 */
export function globCovers(pattern: string, value: string): boolean {
  return globRegExp(pattern).test(value);
}

/** Whether a statement's Action / NotAction applies to an action (or an action pattern). */
export function coversAction(statement: Statement, action: string): boolean {
  if (statement.actions) return statement.actions.some((a) => globCovers(a, action));
  if (statement.notActions) return !statement.notActions.some((a) => globCovers(a, action));
  return false;
}

/** Whether a Deny statement reaches an action: either pattern covers the other. */
export function denyReaches(statement: Statement, action: string): boolean {
  if (statement.actions) return statement.actions.some((a) => globCovers(a, action) || globCovers(action, a));
  return coversAction(statement, action);
}

function principalNames(principal: unknown, service: string): boolean {
  if (principal === '*') return true;
  const p = asObject(principal);
  return asArray(p.AWS).includes('*') || asArray(p.Service).includes(service);
}

/** Whether a resource-policy statement applies to an AWS service principal. */
export function appliesToService(statement: Statement, service: string): boolean {
  if (statement.principal !== undefined) return principalNames(statement.principal, service);
  if (statement.notPrincipal !== undefined) return !principalNames(statement.notPrincipal, service);
  return false;
}

/** One statement and the template resource that carries it. */
export interface SourcedStatement {
  readonly source: TemplateResource;
  readonly statement: Statement;
}

const INLINE_POLICY_HOLDERS = ['AWS::IAM::Role', 'AWS::IAM::User', 'AWS::IAM::Group'];

/**
 * Every statement a principal resource gets from the template: its inline `Policies`, the
 * AWS::IAM::Policy and AWS::IAM::ManagedPolicy resources that attach to it
 * (`Roles`/`Users`/`Groups`), and the managed policies of the template in its
 * `ManagedPolicyArns`.
 */
export function statementsOfPrincipal(model: TemplateModel, principal: TemplateResource): SourcedStatement[] {
  const key = { 'AWS::IAM::Role': 'Roles', 'AWS::IAM::User': 'Users', 'AWS::IAM::Group': 'Groups' }[
    principal.type
  ];
  if (!key) return [];
  const out: SourcedStatement[] = [];
  const add = (source: TemplateResource, document: unknown) =>
    statementsOf(document).forEach((statement) => out.push({ source, statement }));
  for (const inline of asArray(principal.properties.Policies))
    add(principal, asObject(inline).PolicyDocument);
  const attached = new Set(
    model.targets(principal.properties.ManagedPolicyArns, 'AWS::IAM::ManagedPolicy').map((p) => p.logicalId),
  );
  for (const policy of model.ofType('AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy')) {
    const names = asArray(policy.properties[key]).map((ref) => model.target(ref)?.logicalId);
    if (names.includes(principal.logicalId) || attached.has(policy.logicalId)) {
      add(policy, policy.properties.PolicyDocument);
    }
  }
  return out;
}

/** Statements of the resources that can hold an identity policy (for rules on policies). */
export function statementsHeldBy(resource: TemplateResource): Statement[] {
  if (resource.type === 'AWS::IAM::Policy' || resource.type === 'AWS::IAM::ManagedPolicy') {
    return statementsOf(resource.properties.PolicyDocument);
  }
  if (INLINE_POLICY_HOLDERS.includes(resource.type)) {
    return asArray(resource.properties.Policies).flatMap((p) => statementsOf(asObject(p).PolicyDocument));
  }
  return [];
}

/** AWS managed policies whose content is well known: the service prefixes they call. */
const MANAGED_POLICY_SERVICES: Record<string, string[]> = {
  AmazonSSMManagedInstanceCore: ['ssm', 'ssmmessages', 'ec2messages'],
  CloudWatchAgentServerPolicy: ['cloudwatch', 'logs', 'ssm', 'ec2'],
  AWSXRayDaemonWriteAccess: ['xray'],
  AWSLambdaBasicExecutionRole: ['logs'],
  AWSLambdaVPCAccessExecutionRole: ['logs'],
};

/** The service prefixes the AWS managed policies of a principal's `ManagedPolicyArns` call. */
export function managedPolicyServices(principal: TemplateResource): string[] {
  return asArray(principal.properties.ManagedPolicyArns).flatMap((arn) => {
    const name = /:policy\/(?:.*\/)?([^/]+)$/.exec(flatString(arn))?.[1];
    return name ? (MANAGED_POLICY_SERVICES[name] ?? []) : [];
  });
}
