import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';

/** Ports that must never be the database port: the engines' well-known defaults. */
const DEFAULT_DATABASE_PORTS = [5432, 3306, 1433, 1521];

/** Properties of {@link SecurityGroups}. */
export interface SecurityGroupsProps {
  /** The VPC the groups belong to. */
  readonly vpc: ec2.IVpc;

  /** CIDRs (IPv4 or IPv6) allowed to reach the load balancer on 443, and on 80 for the redirect. */
  readonly allowedIngressCidrs: string[];

  /**
   * Port the checkout service listens on behind the load balancer.
   *
   * @default 8080
   */
  readonly appPort?: number;

  /**
   * Port of the database cluster. Must not be an engine's default port.
   *
   * @default 5433
   */
  readonly databasePort?: number;

  /**
   * Port RDS Proxy listens on. RDS Proxy always uses the engine's default port (5432
   * for PostgreSQL) and cannot be moved; only the app and Lambda groups reach it.
   *
   * @default 5432
   */
  readonly proxyPort?: number;

  /**
   * Whether the app and Lambda groups reach the cluster directly on its port, for a
   * region with no RDS Proxy: the warm standby, whose cluster becomes the writer after a
   * regional failover (docs/runbooks/region-failover.md).
   *
   * @default false - only RDS Proxy reaches the cluster
   */
  readonly directDatabaseAccess?: boolean;
}

/**
 * Tier 2: the least-privilege security group graph.
 *
 * ```
 * allowed CIDRs --443/80--> loadBalancer --app port--> app --5432--> databaseProxy --db port--> database
 *                                                      lambda --5432--> databaseProxy
 * ```
 *
 * With `directDatabaseAccess` (a region without a proxy) app and lambda reach `database`
 * on its port instead.
 *
 * The last hop (proxy to database, on the cluster's port) is authorized by the proxy
 * itself when it is created with these groups (`Database` does; so does any CDK
 * `DatabaseProxy`), not here: the same rule twice fails the deploy.
 *
 * No group allows SSH or RDP (operators use SSM Session Manager); every group starts
 * with no egress and gets only what its role needs. `app` and `lambda` may reach
 * HTTPS anywhere (payment gateway, AWS APIs without an endpoint).
 */
export class SecurityGroups extends Construct {
  /** The internet-facing load balancer's group. */
  public readonly loadBalancer: ec2.SecurityGroup;
  /** The web fleet's group. */
  public readonly app: ec2.SecurityGroup;
  /** The Lambda workers' group. */
  public readonly lambda: ec2.SecurityGroup;
  /** RDS Proxy's group: the only door to the database. */
  public readonly databaseProxy: ec2.SecurityGroup;
  /** The Aurora cluster's group. */
  public readonly database: ec2.SecurityGroup;
  /** The resolved app port. */
  public readonly appPort: number;
  /** The resolved database port. */
  public readonly databasePort: number;
  /** The resolved proxy port. */
  public readonly proxyPort: number;

  constructor(scope: Construct, id: string, props: SecurityGroupsProps) {
    super(scope, id);
    const appPort = props.appPort ?? 8080;
    const databasePort = props.databasePort ?? 5433;
    this.appPort = appPort;
    this.databasePort = databasePort;
    const proxyPort = props.proxyPort ?? 5432;
    this.proxyPort = proxyPort;

    if (props.allowedIngressCidrs.length === 0) {
      throw new Error(
        'SecurityGroups allowedIngressCidrs is empty: list at least one CIDR that may reach the load balancer',
      );
    }
    if (!Token.isUnresolved(databasePort) && DEFAULT_DATABASE_PORTS.includes(databasePort)) {
      throw new Error(
        `SecurityGroups databasePort ${databasePort} is a database engine's default port: choose another, such as 5433`,
      );
    }
    if (!Token.isUnresolved(appPort) && (appPort === 22 || appPort === 3389)) {
      throw new Error(
        `SecurityGroups appPort ${appPort} is a remote-administration port: choose another, such as 8080`,
      );
    }

    const group = (name: string, description: string) =>
      new ec2.SecurityGroup(this, name, { vpc: props.vpc, description, allowAllOutbound: false });

    this.loadBalancer = group(
      'LoadBalancer',
      'Internet-facing ALB: 443 and the 80-to-443 redirect from allowed CIDRs',
    );
    this.app = group('App', 'Checkout service fleet: app port from the ALB only');
    this.lambda = group('Lambda', 'Lambda workers: no inbound');
    this.databaseProxy = group(
      'DatabaseProxy',
      'RDS Proxy: database port from the app and Lambda groups only',
    );
    this.database = group(
      'Database',
      props.directDatabaseAccess
        ? 'Aurora cluster: database port from the app and Lambda groups (no proxy in this region)'
        : 'Aurora cluster: database port from RDS Proxy and the rotation function only',
    );

    let openToWorld = false;
    for (const cidr of props.allowedIngressCidrs) {
      const ipv6 = cidr.includes(':');
      const peer = ipv6 ? ec2.Peer.ipv6(cidr) : ec2.Peer.ipv4(cidr);
      openToWorld ||= cidr === '0.0.0.0/0' || cidr === '::/0';
      this.loadBalancer.addIngressRule(peer, ec2.Port.tcp(443), `HTTPS from ${cidr}`);
      this.loadBalancer.addIngressRule(peer, ec2.Port.tcp(80), `HTTP from ${cidr}, redirected to HTTPS`);
    }
    if (openToWorld) {
      acknowledge(
        this.loadBalancer,
        ['AwsSolutions-EC23'],
        'The checkout is a public storefront: its ALB must accept 443 (and 80, which only redirects to 443) from any address; only the ALB is public, and it forwards to the app group alone.',
      );
    }

    this.loadBalancer.connections.allowTo(this.app, ec2.Port.tcp(appPort), 'ALB to the checkout service');
    for (const client of [this.app, this.lambda]) {
      if (!props.directDatabaseAccess) {
        client.connections.allowTo(this.databaseProxy, ec2.Port.tcp(proxyPort), 'To RDS Proxy');
      }
      client.addEgressRule(
        ec2.Peer.anyIpv4(),
        ec2.Port.tcp(443),
        'HTTPS to AWS APIs and the payment gateway',
      );
    }
    // No proxy -> database rule here: CDK's DatabaseProxy opens the cluster's port to the
    // proxy's group itself, and EC2 refuses a second rule for the same flow at deploy time.
    if (props.directDatabaseAccess) {
      for (const client of [this.app, this.lambda]) {
        client.connections.allowTo(
          this.database,
          ec2.Port.tcp(databasePort),
          'To the Aurora cluster (no proxy in this region)',
        );
      }
    }
  }
}
