import { Template } from 'aws-cdk-lib/assertions';

/** One allowed inbound flow: who may reach which group on which ports. */
export interface IngressEdge {
  /** Logical id of the receiving security group. */
  readonly to: string;
  /** A CIDR, or the logical id of the source security group. */
  readonly from: string;
  readonly protocol: string;
  readonly fromPort: number;
  readonly toPort: number;
}

type Json = Record<string, unknown>;

function refOf(value: unknown): string {
  const v = value as Json;
  if (typeof v?.Ref === 'string') return v.Ref;
  const getAtt = v?.['Fn::GetAtt'] as string[] | undefined;
  if (getAtt) return getAtt[0];
  throw new Error(`unexpected security group reference ${JSON.stringify(value)}`);
}

/** A port: a number, or a reference to an Aurora cluster's endpoint port, resolved from the template. */
function portOf(value: unknown, template: Template): number {
  if (typeof value === 'number') return value;
  const getAtt = (value as Json)?.['Fn::GetAtt'] as string[] | undefined;
  if (getAtt?.[1] === 'Endpoint.Port') {
    const cluster = template.toJSON().Resources[getAtt[0]] as { Properties: { Port: number } };
    return cluster.Properties.Port;
  }
  throw new Error(`unexpected port ${JSON.stringify(value)}`);
}

/** The far end of a rule: a CIDR, a prefix list, or a security group's logical id. */
function peerOf(rule: Json, direction: 'Source' | 'Destination'): string {
  const prefixList = rule[`${direction}PrefixListId`];
  return (
    (rule.CidrIp as string | undefined) ??
    (rule.CidrIpv6 as string | undefined) ??
    (prefixList ? `prefix-list:${JSON.stringify(prefixList)}` : undefined) ??
    refOf(rule[`${direction}SecurityGroupId`])
  );
}

function ports(rule: Json, template: Template): Pick<IngressEdge, 'protocol' | 'fromPort' | 'toPort'> {
  const protocol = String(rule.IpProtocol);
  const all = protocol === '-1';
  return {
    protocol,
    fromPort: all ? 0 : portOf(rule.FromPort, template),
    toPort: all ? 65535 : portOf(rule.ToPort, template),
  };
}

function edge(to: string, rule: Json, template: Template): IngressEdge {
  return { to, from: peerOf(rule, 'Source'), ...ports(rule, template) };
}

/** Every ingress rule of a template, inline or standalone, as edges. */
export function ingressGraph(template: Template): IngressEdge[] {
  const edges: IngressEdge[] = [];
  for (const [id, sg] of Object.entries(template.findResources('AWS::EC2::SecurityGroup'))) {
    for (const rule of ((sg.Properties as Json).SecurityGroupIngress as Json[] | undefined) ?? []) {
      edges.push(edge(id, rule, template));
    }
  }
  for (const rule of Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))) {
    const props = rule.Properties as Json;
    edges.push(edge(refOf(props.GroupId), props, template));
  }
  return edges;
}

/**
 * Every egress rule of a template, inline or standalone, as edges (`from` is the group
 * the rule belongs to, `to` the destination).
 */
export function egressGraph(template: Template): IngressEdge[] {
  const edges: IngressEdge[] = [];
  const add = (group: string, rule: Json) =>
    edges.push({ from: group, to: peerOf(rule, 'Destination'), ...ports(rule, template) });
  for (const [id, sg] of Object.entries(template.findResources('AWS::EC2::SecurityGroup'))) {
    for (const rule of ((sg.Properties as Json).SecurityGroupEgress as Json[] | undefined) ?? [])
      add(id, rule);
  }
  for (const rule of Object.values(template.findResources('AWS::EC2::SecurityGroupEgress'))) {
    const props = rule.Properties as Json;
    add(refOf(props.GroupId), props);
  }
  return edges;
}

/** Whether an edge admits traffic on a port. */
export function admits(e: IngressEdge, port: number): boolean {
  return e.fromPort <= port && port <= e.toPort;
}
