import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleResult } from 'cdk-nag';
import { coversAction, globCovers, statementsHeldBy, statementsOfPrincipal } from '../policy';
import {
  TemplateModel,
  TemplateResource,
  asArray,
  asObject,
  flatString,
  stringParts,
} from '../template-model';

const PROXY = 'AWS::RDS::DBProxy';
const CLUSTER = 'AWS::RDS::DBCluster';
const INSTANCE = 'AWS::RDS::DBInstance';
const CONNECT = 'rds-db:connect';

/** What one `rds-db:connect` resource grants: a database (or an id pattern) and a user. */
interface DbUserGrant {
  /** The proxy, cluster or instance of the template the ARN names, if it names one. */
  readonly target?: TemplateResource;
  /** The literal resource id when the ARN names no template resource (`*`, `cluster-ABC`). */
  readonly idPattern?: string;
  /** The database user (a pattern), or undefined when it cannot be read from the template. */
  readonly user?: string;
}

/** The username a Secrets Manager secret of the template generates (or holds literally). */
function secretUsername(model: TemplateModel, value: unknown): string | undefined {
  const attachment = model.target(value, 'AWS::SecretsManager::SecretTargetAttachment');
  const secret = model.target(
    attachment ? attachment.properties.SecretId : value,
    'AWS::SecretsManager::Secret',
  );
  const generated = asObject(secret?.properties.GenerateSecretString).SecretStringTemplate;
  const json = generated ?? secret?.properties.SecretString;
  try {
    const username = typeof json === 'string' ? asObject(JSON.parse(json)).username : undefined;
    return typeof username === 'string' ? username : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The user part after `dbuser:<id>/`: a literal, or CDK's dynamic reference to a secret's
 * username (`{{resolve:secretsmanager:<secret>:SecretString:username::}}`).
 */
function userOf(model: TemplateModel, rest: unknown[]): string | undefined {
  if (rest.length === 1 && typeof rest[0] === 'string') return rest[0];
  const [open, secret, close] = rest;
  if (
    open === '{{resolve:secretsmanager:' &&
    typeof close === 'string' &&
    close.startsWith(':SecretString:username:')
  ) {
    return secretUsername(model, secret);
  }
  return undefined;
}

/** Reads `arn:<partition>:rds-db:<region>:<account>:dbuser:<id>/<user>` as CDK writes it. */
function parseDbUser(model: TemplateModel, resource: unknown): DbUserGrant | undefined {
  if (resource === '*') return { idPattern: '*', user: '*' };
  const parts = stringParts(resource);
  const at = parts.findIndex((p) => typeof p === 'string' && p.includes('dbuser:'));
  const head = flatString({ 'Fn::Join': ['', parts.slice(0, at + 1)] });
  if (at < 0 || !head.includes(':rds-db:')) return undefined;
  // What follows `dbuser:` in the same literal: a literal id (and user), or nothing when an intrinsic follows.
  const after = head.slice(head.lastIndexOf('dbuser:') + 'dbuser:'.length);
  if (after !== '') {
    const slash = after.indexOf('/');
    const rest = slash < 0 ? [] : [after.slice(slash + 1), ...parts.slice(at + 1)].filter((p) => p !== '');
    return { idPattern: slash < 0 ? after : after.slice(0, slash), user: userOf(model, rest) };
  }
  const target = model.targets(parts[at + 1], PROXY, CLUSTER, INSTANCE)[0];
  const next = parts[at + 2];
  if (typeof next !== 'string' || !next.startsWith('/')) return { target, user: undefined };
  const rest = [next.slice(1), ...parts.slice(at + 3)].filter((p) => p !== '');
  return { target, user: userOf(model, rest) };
}

function iamAuthEnabled(database: TemplateResource): boolean {
  const flag = database.properties.EnableIAMDatabaseAuthentication;
  return flag === true || flag === 'true';
}

/** The clusters and instances a proxy's target groups point at. */
function proxyTargets(model: TemplateModel, proxy: TemplateResource): TemplateResource[] {
  return model
    .ofType('AWS::RDS::DBProxyTargetGroup')
    .filter((group) => model.target(group.properties.DBProxyName)?.logicalId === proxy.logicalId)
    .flatMap((group) => [
      ...model.targets(group.properties.DBClusterIdentifiers, CLUSTER),
      ...model.targets(group.properties.DBInstanceIdentifiers, INSTANCE),
    ]);
}

function userCovered(pattern: string | undefined, user: string | undefined): boolean {
  if (pattern === undefined) return false;
  return user === undefined ? pattern === '*' : globCovers(pattern, user);
}

/** Whether the proxy's role may itself connect to a database as the user (end-to-end IAM auth). */
function roleMayConnect(
  model: TemplateModel,
  role: TemplateResource,
  db: TemplateResource,
  user?: string,
): boolean {
  return statementsOfPrincipal(model, role).some(
    ({ statement }) =>
      statement.effect === 'Allow' &&
      coversAction(statement, CONNECT) &&
      asArray(statement.resources).some((r) => {
        const grant = parseDbUser(model, r);
        const names = grant?.target ? grant.target === db : grant?.idPattern === '*';
        return names && userCovered(grant?.user, user);
      }),
  );
}

/** Why a grant has no path to the database, or undefined when it has one. */
function authProblem(model: TemplateModel, target: TemplateResource, user?: string): string | undefined {
  if (target.type !== PROXY) return iamAuthEnabled(target) ? undefined : 'iam-auth-disabled';
  // A user with a secret auth entry is logged in with that secret, whatever the default
  // scheme; the default scheme serves the users without one.
  const hasSecret =
    user !== undefined &&
    !user.includes('*') &&
    asArray(target.properties.Auth)
      .map(asObject)
      .some(
        (auth) =>
          ['REQUIRED', 'ENABLED'].includes(String(auth.IAMAuth)) &&
          secretUsername(model, auth.SecretArn) === user,
      );
  if (hasSecret) return undefined;
  if (target.properties.DefaultAuthScheme === 'IAM_AUTH') {
    const role = model.target(target.properties.RoleArn, 'AWS::IAM::Role');
    const ok =
      role !== undefined &&
      proxyTargets(model, target).some((db) => iamAuthEnabled(db) && roleMayConnect(model, role, db, user));
    return ok ? undefined : 'proxy-role-cannot-connect';
  }
  if (user === undefined || user.includes('*')) return 'needs-iam-auth-scheme';
  return 'no-secret-for-user';
}

/**
 * Every rds-db:connect grant has an auth path.
 *
 * For every IAM policy statement (AWS::IAM::Policy, AWS::IAM::ManagedPolicy, or the inline
 * policies of a role, user or group) that allows `rds-db:connect` on
 * `arn:...:rds-db:<region>:<account>:dbuser:<id>/<user>` where `<id>` is a proxy, cluster or
 * instance of the template, proves the connection can authenticate:
 *
 * - a cluster or instance must have `EnableIAMDatabaseAuthentication: true`;
 * - a proxy with `DefaultAuthScheme: IAM_AUTH` (end-to-end IAM) must have a role that is
 *   itself allowed `rds-db:connect` as that user (or `*`) on a target of its target group,
 *   and that target must have IAM database authentication on;
 * - any other proxy must have an `Auth` entry with `IAMAuth` REQUIRED or ENABLED whose
 *   secret's username is that user: the proxy logs in with the secret of the user the
 *   client asks for. A user that is `*` or unreadable can only be served by IAM_AUTH.
 *
 * Each finding names the user, the database and the gap:
 * `[<user>@<logical id>:<iam-auth-disabled|proxy-role-cannot-connect|needs-iam-auth-scheme|no-secret-for-user>]`
 * (an unreadable user shows as `?`).
 *
 * Why: IAM allows the token, but the proxy or database refuses the login at run time
 * ("IAM authentication failed" / "no credentials for user"), so the grant is dead.
 *
 * AWS documentation: Amazon Aurora User Guide, "Creating and using an IAM policy for IAM
 * database access" and "Configuring IAM authentication for RDS Proxy".
 */
export function dbConnectAuth(node: CfnResource): NagRuleResult {
  const holders = [
    'AWS::IAM::Policy',
    'AWS::IAM::ManagedPolicy',
    'AWS::IAM::Role',
    'AWS::IAM::User',
    'AWS::IAM::Group',
  ];
  if (!holders.includes(node.cfnResourceType)) return NagRuleCompliance.NOT_APPLICABLE;
  const model = TemplateModel.of(node);
  const grants = statementsHeldBy(model.resourceOf(node))
    .filter((s) => s.effect === 'Allow' && coversAction(s, CONNECT))
    .flatMap((s) => asArray(s.resources).map((r) => parseDbUser(model, r)))
    .filter((g): g is DbUserGrant & { target: TemplateResource } => g?.target !== undefined);
  if (grants.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
  const findings = grants.flatMap(({ target, user }) => {
    const problem = authProblem(model, target, user);
    return problem ? [`${user ?? '?'}@${target.logicalId}:${problem}`] : [];
  });
  return findings.length > 0 ? [...new Set(findings)] : NagRuleCompliance.COMPLIANT;
}
