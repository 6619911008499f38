import {
  JsonObject,
  TemplateModel,
  TemplateResource,
  asArray,
  asObject,
  pointedId,
  stringParts,
} from './template-model';

const SECURITY_GROUP = 'AWS::EC2::SecurityGroup';

/** A stable key for a value: the logical id it points at, or the literal itself. */
export function valueKey(value: unknown): string {
  return pointedId(value) ?? (typeof value === 'string' ? value : JSON.stringify(value));
}

/**
 * The security groups a property names, as keys: logical ids of the template's groups, or
 * literal ids (`sg-...`) for imported ones. Accepts lists and comma-joined strings (as the
 * Secrets Manager rotation application takes them).
 */
export function groupKeys(value: unknown): string[] {
  const keys = asArray(value).flatMap((item) =>
    stringParts(item).flatMap((part) =>
      typeof part === 'string' ? part.split(',').map((s) => s.trim()) : [valueKey(part)],
    ),
  );
  return [...new Set(keys.filter((k) => k !== ''))];
}

function ipv4(cidr: string): { base: number; bits: number } | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) return undefined;
  const base = m.slice(1, 5).reduce((acc, octet) => acc * 256 + Number(octet), 0);
  return { base, bits: Number(m[5]) };
}

/** Whether one IPv4 CIDR contains another. */
export function cidrContains(outer: string, inner: string): boolean {
  const o = ipv4(outer);
  const i = ipv4(inner);
  if (!o || !i || o.bits > i.bits) return false;
  const size = 2 ** (32 - o.bits);
  return Math.floor(o.base / size) === Math.floor(i.base / size);
}

function portOf(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** Whether a security group rule admits TCP on a port. */
export function ruleAllowsTcp(rule: JsonObject, port: number): boolean {
  const protocol = String(rule.IpProtocol).toLowerCase();
  if (protocol === '-1' || protocol === 'all') return true;
  if (protocol !== 'tcp' && protocol !== '6') return false;
  const from = portOf(rule.FromPort);
  const to = portOf(rule.ToPort);
  return from !== undefined && to !== undefined && from <= port && port <= to;
}

/** The egress rule CDK writes when `allowAllOutbound` is false: it matches no traffic. */
function isDisallowAllPlaceholder(rule: JsonObject): boolean {
  return rule.CidrIp === '255.255.255.255/32' && String(rule.IpProtocol) === 'icmp';
}

/**
 * The security-group rules of a template, inline and standalone, and what they let through
 * on TCP. Reads like test/helpers/ingress-graph.ts, but answers questions about one flow.
 */
export class SecurityGroupGraph {
  private static cache = new WeakMap<TemplateModel, SecurityGroupGraph>();

  /** The graph of a template (built once per model). */
  public static of(model: TemplateModel): SecurityGroupGraph {
    let graph = SecurityGroupGraph.cache.get(model);
    if (!graph) {
      graph = new SecurityGroupGraph(model);
      SecurityGroupGraph.cache.set(model, graph);
    }
    return graph;
  }

  private readonly ingressRules = new Map<string, JsonObject[]>();
  private readonly egressRules = new Map<string, JsonObject[]>();
  private readonly inlineEgress = new Set<string>();

  private constructor(private readonly model: TemplateModel) {
    const push = (map: Map<string, JsonObject[]>, group: string, rule: JsonObject) =>
      map.set(group, [...(map.get(group) ?? []), rule]);
    for (const sg of model.ofType(SECURITY_GROUP)) {
      asArray(sg.properties.SecurityGroupIngress).forEach((r) =>
        push(this.ingressRules, sg.logicalId, asObject(r)),
      );
      const egress = asArray(sg.properties.SecurityGroupEgress).map(asObject);
      if (egress.length > 0) this.inlineEgress.add(sg.logicalId);
      egress.forEach((r) => push(this.egressRules, sg.logicalId, r));
    }
    for (const r of model.ofType('AWS::EC2::SecurityGroupIngress')) {
      push(this.ingressRules, valueKey(r.properties.GroupId), r.properties);
    }
    for (const r of model.ofType('AWS::EC2::SecurityGroupEgress')) {
      push(this.egressRules, valueKey(r.properties.GroupId), r.properties);
    }
  }

  /** The template's group for a key, if the group is defined in this template. */
  public group(key: string): TemplateResource | undefined {
    const resource = this.model.resources.get(key);
    return resource?.type === SECURITY_GROUP ? resource : undefined;
  }

  /** The VPC (as a key) that a set of groups or subnets belongs to. */
  public vpcOf(groups: string[], subnets: unknown = undefined): string | undefined {
    for (const key of groups) {
      const vpcId = this.group(key)?.properties.VpcId;
      if (vpcId !== undefined) return valueKey(vpcId);
    }
    for (const subnet of this.model.targets(subnets, 'AWS::EC2::Subnet')) {
      if (subnet.properties.VpcId !== undefined) return valueKey(subnet.properties.VpcId);
    }
    return undefined;
  }

  /** Whether a CIDR value (literal or `Fn::GetAtt [Vpc, CidrBlock]`) covers a whole VPC. */
  public cidrCoversVpc(cidr: unknown, vpcKey: string): boolean {
    if (cidr === '0.0.0.0/0') return true;
    const att = asObject(cidr)['Fn::GetAtt'];
    if (Array.isArray(att)) return att[0] === vpcKey && att[1] === 'CidrBlock';
    const vpcCidr = this.model.resources.get(vpcKey)?.properties.CidrBlock;
    return typeof cidr === 'string' && typeof vpcCidr === 'string' && cidrContains(cidr, vpcCidr);
  }

  /** Whether a group admits TCP on a port from a source group, or from a CIDR covering its VPC. */
  public admits(group: string, source: string, vpcKey: string, port: number): boolean {
    return (this.ingressRules.get(group) ?? []).some(
      (rule) =>
        ruleAllowsTcp(rule, port) &&
        ((rule.SourceSecurityGroupId !== undefined && valueKey(rule.SourceSecurityGroupId) === source) ||
          (rule.CidrIp !== undefined && this.cidrCoversVpc(rule.CidrIp, vpcKey))),
    );
  }

  /**
   * Whether a group lets TCP on a port out to a destination: one of the destination groups, or
   * the addresses given (a CIDR covering the VPC, or every one of `destinationCidrs`).
   *
   * A group of the template with no egress rule at all keeps the allow-all rule EC2 adds at
   * creation; CDK's "disallow all" placeholder rule removes it and lets nothing out. A group
   * from outside the template is assumed to allow egress (its rules are not known here).
   */
  public egressReaches(
    group: string,
    destinationGroups: string[],
    vpcKey: string,
    destinationCidrs: string[],
    port: number,
  ): boolean {
    const rules = this.egressRules.get(group) ?? [];
    if (!this.group(group) || (!this.inlineEgress.has(group) && rules.length === 0)) return true;
    return rules
      .filter((rule) => !isDisallowAllPlaceholder(rule) && ruleAllowsTcp(rule, port))
      .some((rule) => {
        if (rule.DestinationSecurityGroupId !== undefined) {
          return destinationGroups.includes(valueKey(rule.DestinationSecurityGroupId));
        }
        if (rule.CidrIp === undefined) return false;
        if (this.cidrCoversVpc(rule.CidrIp, vpcKey)) return true;
        const cidr = rule.CidrIp;
        return (
          typeof cidr === 'string' &&
          destinationCidrs.length > 0 &&
          destinationCidrs.every((inner) => cidrContains(cidr, inner))
        );
      });
  }

  /** The literal CIDRs of template subnets named by a property (an endpoint's `SubnetIds`). */
  public subnetCidrs(subnets: unknown): string[] {
    const subnetList = this.model.targets(subnets, 'AWS::EC2::Subnet');
    const cidrs = subnetList
      .map((s) => s.properties.CidrBlock)
      .filter((c): c is string => typeof c === 'string');
    return cidrs.length === subnetList.length ? cidrs : [];
  }
}
