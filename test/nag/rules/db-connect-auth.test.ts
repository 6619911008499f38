import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import { WIRING_RULES } from '../../../lib/nag/wiring-checks';
import { isolatedVpc, logicalId, resourcePath, wiringFindings } from '../fixtures';

const RULE = WIRING_RULES.dbConnectAuth;

interface Database {
  readonly cluster: rds.DatabaseCluster;
  readonly client: iam.Role;
  readonly vpc: ec2.Vpc;
}

/** An Aurora PostgreSQL cluster whose master secret's username is `shop_admin`, and a client role. */
function database(stack: Stack, iamAuthentication: boolean): Database {
  const vpc = isolatedVpc(stack);
  const cluster = new rds.DatabaseCluster(stack, 'Cluster', {
    engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_4 }),
    credentials: rds.Credentials.fromGeneratedSecret('shop_admin'),
    writer: rds.ClusterInstance.serverlessV2('Writer'),
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    iamAuthentication,
  });
  const client = new iam.Role(stack, 'Client', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
  });
  return { cluster, client, vpc };
}

/** The path of the client role's default policy, where the grants land. */
function policyPath(client: iam.Role): string {
  return resourcePath(client.node.findChild('DefaultPolicy'));
}

describe('DbConnectAuth: every rds-db:connect grant has an auth path', () => {
  describe('through a proxy that logs in with secrets', () => {
    test('a grant for a user the proxy has no secret for is reported', () => {
      // GIVEN a proxy holding only the shop_admin secret, and a grant to connect as app_user
      let db!: Database;
      let proxy!: rds.DatabaseProxy;
      const findings = wiringFindings((stack) => {
        db = database(stack, true);
        proxy = db.cluster.addProxy('Proxy', { vpc: db.vpc, secrets: [db.cluster.secret!], iamAuth: true });
        proxy.grantConnect(db.client, 'app_user');
      });
      // THEN the client's policy is reported, naming the user, the proxy and the gap
      expect(findings).toEqual([
        `${RULE}[app_user@${logicalId(proxy)}:no-secret-for-user] at ${policyPath(db.client)}`,
      ]);
    });

    test("a grant for the secret's own user (CDK's default dbUser, a dynamic reference) passes", () => {
      const findings = wiringFindings((stack) => {
        const db = database(stack, true);
        const proxy = db.cluster.addProxy('Proxy', {
          vpc: db.vpc,
          secrets: [db.cluster.secret!],
          iamAuth: true,
        });
        proxy.grantConnect(db.client);
      });
      expect(findings).toEqual([]);
    });

    test('a grant for the secret user fails when the proxy does not take IAM auth', () => {
      let db!: Database;
      let proxy!: rds.DatabaseProxy;
      const findings = wiringFindings((stack) => {
        db = database(stack, true);
        proxy = db.cluster.addProxy('Proxy', { vpc: db.vpc, secrets: [db.cluster.secret!], iamAuth: false });
        proxy.grantConnect(db.client, 'shop_admin');
      });
      expect(findings).toEqual([
        `${RULE}[shop_admin@${logicalId(proxy)}:no-secret-for-user] at ${policyPath(db.client)}`,
      ]);
    });
  });

  describe('through a proxy with end-to-end IAM auth', () => {
    type ProxyRoleGrant = 'none' | 'cluster' | 'wildcard';

    function iamProxy(
      stack: Stack,
      proxyMayConnect: ProxyRoleGrant,
    ): { db: Database; proxy: rds.DatabaseProxy } {
      const db = database(stack, true);
      const proxyRole = new iam.Role(stack, 'ProxyRole', {
        assumedBy: new iam.ServicePrincipal('rds.amazonaws.com'),
      });
      const proxy = db.cluster.addProxy('Proxy', {
        vpc: db.vpc,
        defaultAuthScheme: rds.DefaultAuthScheme.IAM_AUTH,
        role: proxyRole,
      });
      proxy.grantConnect(db.client, 'app_user');
      if (proxyMayConnect === 'cluster') db.cluster.grantConnect(proxyRole, 'app_user');
      if (proxyMayConnect === 'wildcard') {
        proxyRole.addToPolicy(
          new iam.PolicyStatement({
            actions: ['rds-db:connect'],
            resources: ['arn:aws:rds-db:*:*:dbuser:*/*'],
          }),
        );
      }
      return { db, proxy };
    }

    test("a grant is reported when the proxy's own role may not connect to the cluster", () => {
      let found!: { db: Database; proxy: rds.DatabaseProxy };
      const findings = wiringFindings((stack) => {
        found = iamProxy(stack, 'none');
      });
      expect(findings).toEqual([
        `${RULE}[app_user@${logicalId(found.proxy)}:proxy-role-cannot-connect] at ${policyPath(found.db.client)}`,
      ]);
    });

    test("a grant passes when the proxy's role may connect to the target cluster as that user", () => {
      expect(wiringFindings((stack) => iamProxy(stack, 'cluster'))).toEqual([]);
    });

    test("a grant passes when the proxy's role may connect to any database as any user", () => {
      expect(wiringFindings((stack) => iamProxy(stack, 'wildcard'))).toEqual([]);
    });
  });

  describe('straight to a cluster', () => {
    test('a grant on a cluster without IAM database authentication is reported', () => {
      let db!: Database;
      const findings = wiringFindings((stack) => {
        db = database(stack, false);
        db.cluster.grantConnect(db.client, 'app_user');
      });
      expect(findings).toEqual([
        `${RULE}[app_user@${logicalId(db.cluster)}:iam-auth-disabled] at ${policyPath(db.client)}`,
      ]);
    });

    test('a grant on a cluster with IAM database authentication passes', () => {
      const findings = wiringFindings((stack) => {
        const db = database(stack, true);
        db.cluster.grantConnect(db.client, 'app_user');
      });
      expect(findings).toEqual([]);
    });
  });
});
