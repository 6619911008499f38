/**
 * The table of network flows the system needs, per stack of both profiles. Each flow
 * must be open end to end (the sender's egress AND the receiver's ingress admit it), and
 * every rule in the template must serve a flow of the table: nothing open that nothing
 * needs. A tier that adds a caller adds its row here, or this test fails.
 */
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { buildTestApp, configWith, shippedConfig } from '../helpers/app';
import { IngressEdge, egressGraph, ingressGraph } from '../helpers/ingress-graph';

/** A node of the flow table: a role, resolved to a security group per stack. */
type Role = 'internet' | 'alb' | 'app' | 'lambda' | 'proxy' | 'cluster' | 'rotation' | 'endpoints';

/** A flow the system needs: who reaches whom on which port, and why. */
interface Flow {
  readonly from: Role;
  readonly to: Role;
  readonly port: number;
  readonly why: string;
}

/** The CDK placeholder that means "no egress" on a group created with allowAllOutbound: false. */
const NO_EGRESS_PLACEHOLDER = '255.255.255.255/32';

/** The flows a stack needs, from what it contains. */
function neededFlows(stack: RegionalStack): Flow[] {
  const appPort = stack.securityGroups.appPort;
  const clusterPort = stack.database.port;
  const hasProxy = stack.database.proxy !== undefined;
  const hasEndpoints = Object.keys(stack.network.interfaceEndpoints).length > 0;
  const flows: Flow[] = [
    { from: 'internet', to: 'alb', port: 443, why: 'customers reach the storefront' },
    { from: 'internet', to: 'alb', port: 80, why: 'the ALB redirects HTTP to HTTPS' },
    { from: 'alb', to: 'app', port: appPort, why: 'the ALB forwards to the checkout service' },
  ];
  if (hasProxy) {
    flows.push(
      { from: 'app', to: 'proxy', port: 5432, why: 'the service connects through RDS Proxy' },
      { from: 'lambda', to: 'proxy', port: 5432, why: 'the workers connect through RDS Proxy' },
      { from: 'proxy', to: 'cluster', port: clusterPort, why: 'RDS Proxy logs in to the cluster' },
    );
  } else {
    flows.push(
      {
        from: 'app',
        to: 'cluster',
        port: clusterPort,
        why: 'no proxy here: the standby fleet reaches the promoted writer',
      },
      {
        from: 'lambda',
        to: 'cluster',
        port: clusterPort,
        why: 'no proxy here: the workers reach the promoted writer',
      },
    );
  }
  if (stack.database.rotationSecurityGroup) {
    flows.push({ from: 'rotation', to: 'cluster', port: clusterPort, why: 'rotation sets the new password' });
  }
  if (hasEndpoints) {
    flows.push(
      {
        from: 'app',
        to: 'endpoints',
        port: 443,
        why: 'the service calls SQS, Secrets Manager, CloudWatch, ...',
      },
      { from: 'lambda', to: 'endpoints', port: 443, why: 'the workers call AWS APIs' },
    );
    if (stack.database.rotationSecurityGroup) {
      flows.push({
        from: 'rotation',
        to: 'endpoints',
        port: 443,
        why: 'rotation calls Secrets Manager (private DNS)',
      });
    }
  }
  return flows;
}

/** Egress to anywhere on 443 that these roles need beyond the VPC (APIs without an endpoint, the gateway). */
const EXTERNAL_HTTPS: Role[] = ['app', 'lambda', 'rotation'];

function groupsOf(stack: RegionalStack): Map<Role, string> {
  const id = (sg: ec2.ISecurityGroup) => stack.getLogicalId(sg.node.defaultChild as ec2.CfnSecurityGroup);
  const sgs = stack.securityGroups;
  const groups = new Map<Role, string>([
    ['alb', id(sgs.loadBalancer)],
    ['app', id(sgs.app)],
    ['lambda', id(sgs.lambda)],
    ['proxy', id(sgs.databaseProxy)],
    ['cluster', id(sgs.database)],
    ['endpoints', id(stack.network.endpointSecurityGroup)],
  ]);
  if (stack.database.rotationSecurityGroup) groups.set('rotation', id(stack.database.rotationSecurityGroup));
  return groups;
}

const covers = (e: IngressEdge, port: number) =>
  e.protocol === 'tcp' && e.fromPort <= port && port <= e.toPort;

function stacksUnderTest(): [string, RegionalStack][] {
  const production = buildTestApp(shippedConfig('default')).stacks;
  const lean = buildTestApp(shippedConfig('lean')).stacks;
  const restricted = buildTestApp(configWith({ allowedIngressCidrs: ['203.0.113.0/24'] })).stacks;
  return [
    ['production primary', production.primary],
    ['production standby', production.standby!],
    ['lean primary', lean.primary],
    ['restricted-ingress primary', restricted.primary],
  ];
}

describe.each(stacksUnderTest())('network flows of the %s stack', (_name, stack) => {
  const template = Template.fromStack(stack);
  const ingress = ingressGraph(template);
  const egress = egressGraph(template).filter((e) => e.to !== NO_EGRESS_PLACEHOLDER);
  const groups = groupsOf(stack);
  const roleOf = new Map([...groups].map(([role, id]) => [id, role]));
  const flows = neededFlows(stack);
  const cidrs = new Set(ingress.filter((e) => e.from.includes('/')).map((e) => e.from));

  test.each(flows.map((f) => [`${f.from} -> ${f.to}:${f.port} (${f.why})`, f] as const))(
    'needed flow is open end to end: %s',
    (_label, flow) => {
      const to = groups.get(flow.to)!;
      if (flow.from === 'internet') {
        // every configured CIDR reaches the ALB on the port
        expect(cidrs.size).toBeGreaterThan(0);
        for (const cidr of cidrs) {
          expect(ingress.some((e) => e.to === to && e.from === cidr && covers(e, flow.port))).toBe(true);
        }
        return;
      }
      const from = groups.get(flow.from)!;
      expect({
        ingress: ingress.some((e) => e.to === to && e.from === from && covers(e, flow.port)),
      }).toEqual({
        ingress: true,
      });
      const egressOk = egress.some(
        (e) => e.from === from && (e.to === to || e.to === '0.0.0.0/0') && covers(e, flow.port),
      );
      // A group with no egress rule at all (not even CDK's placeholder) allows all
      // outbound traffic in CloudFormation.
      const allOutbound = !egressGraph(template).some((e) => e.from === from);
      expect({ egress: egressOk || allOutbound }).toEqual({ egress: true });
    },
  );

  test('every ingress rule serves a needed flow (nothing open that nothing needs)', () => {
    const unexplained = ingress.filter((e) => {
      const toRole = roleOf.get(e.to);
      const fromRole: Role | undefined = e.from.includes('/') ? 'internet' : roleOf.get(e.from);
      return !flows.some(
        (f) => f.to === toRole && f.from === fromRole && e.fromPort === f.port && e.toPort === f.port,
      );
    });
    expect(unexplained).toEqual([]);
  });

  test('every egress rule serves a needed flow or is HTTPS out for a role that calls the internet', () => {
    const unexplained = egress.filter((e) => {
      const fromRole = roleOf.get(e.from);
      if (e.to === '0.0.0.0/0') {
        return !(fromRole && EXTERNAL_HTTPS.includes(fromRole) && e.fromPort === 443 && e.toPort === 443);
      }
      const toRole = roleOf.get(e.to);
      return !flows.some(
        (f) => f.from === fromRole && f.to === toRole && e.fromPort === f.port && e.toPort === f.port,
      );
    });
    expect(unexplained).toEqual([]);
  });
});
