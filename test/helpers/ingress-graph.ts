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

function edge(to: string, rule: Json): IngressEdge {
  const from =
    (rule.CidrIp as string | undefined) ??
    (rule.CidrIpv6 as string | undefined) ??
    (rule.SourcePrefixListId ? `prefix-list:${JSON.stringify(rule.SourcePrefixListId)}` : undefined) ??
    refOf(rule.SourceSecurityGroupId);
  const protocol = String(rule.IpProtocol);
  const all = protocol === '-1';
  return {
    to,
    from,
    protocol,
    fromPort: all ? 0 : Number(rule.FromPort),
    toPort: all ? 65535 : Number(rule.ToPort),
  };
}

/** Every ingress rule of a template, inline or standalone, as edges. */
export function ingressGraph(template: Template): IngressEdge[] {
  const edges: IngressEdge[] = [];
  for (const [id, sg] of Object.entries(template.findResources('AWS::EC2::SecurityGroup'))) {
    for (const rule of ((sg.Properties as Json).SecurityGroupIngress as Json[] | undefined) ?? []) {
      edges.push(edge(id, rule));
    }
  }
  for (const rule of Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))) {
    const props = rule.Properties as Json;
    edges.push(edge(refOf(props.GroupId), props));
  }
  return edges;
}

/** Whether an edge admits traffic on a port. */
export function admits(e: IngressEdge, port: number): boolean {
  return e.fromPort <= port && port <= e.toPort;
}
