import { CfnResource, Stack } from 'aws-cdk-lib';

/** A JSON object of a synthesized template. */
export type JsonObject = Record<string, unknown>;

/** One resource of a synthesized template, as CloudFormation receives it. */
export interface TemplateResource {
  readonly logicalId: string;
  readonly type: string;
  /** `Properties`, or `{}` when the resource has none. */
  readonly properties: JsonObject;
}

/** A value as a list: `undefined` is empty, a scalar is a list of one. */
export function asArray(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** A value as an object, or `{}` when it is not one. */
export function asObject(value: unknown): JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : {};
}

/**
 * The logical id a value points at directly: `{ Ref: id }` or `{ 'Fn::GetAtt': [id, attribute] }`
 * (or the `'id.attribute'` string form). Pseudo parameters (`AWS::Region`) are not resources.
 */
export function pointedId(value: unknown): string | undefined {
  const obj = asObject(value);
  if (typeof obj.Ref === 'string') return obj.Ref.startsWith('AWS::') ? undefined : obj.Ref;
  const getAtt = obj['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  if (typeof getAtt === 'string') return getAtt.split('.')[0];
  return undefined;
}

/**
 * The parts of a string as CDK writes it: literal strings (adjacent ones merged) and the
 * intrinsics between them. `Fn::Join` is flattened, with its delimiter between parts.
 */
export function stringParts(value: unknown): unknown[] {
  const parts: unknown[] = [];
  const push = (part: unknown) => {
    const last = parts.length - 1;
    if (typeof part === 'string' && typeof parts[last] === 'string') parts[last] += part;
    else parts.push(part);
  };
  const walk = (v: unknown) => {
    const join = asObject(v)['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      join[1].forEach((item, i) => {
        if (i > 0 && join[0] !== '') push(join[0]);
        walk(item);
      });
    } else if (typeof v === 'number' || typeof v === 'boolean') {
      push(String(v));
    } else {
      push(v);
    }
  };
  walk(value);
  return parts;
}

/** A string with every intrinsic replaced by `placeholder`: for pattern matching only. */
export function flatString(value: unknown, placeholder = '${}'): string {
  return stringParts(value)
    .map((p) => (typeof p === 'string' ? p : placeholder))
    .join('');
}

/**
 * The synthesized template of one stack as plain JSON, with lookups by logical id and by
 * reference. Rules read it to decide about one resource from what the rest of the template
 * says (a topic's policy, a role's policies, a security group's rules).
 *
 * Built once per stack per validation run ({@link TemplateModel.of}); call
 * {@link TemplateModel.forgetAll} before a run so a changed tree is read afresh.
 */
export class TemplateModel {
  private static cache = new WeakMap<Stack, TemplateModel>();

  /** The model of the stack that holds a resource (built on first use). */
  public static of(node: CfnResource): TemplateModel {
    const stack = Stack.of(node);
    let model = TemplateModel.cache.get(stack);
    if (!model) {
      // The template CloudFormation receives, overrides and all (Stack has no public API for it).
      const render = (stack as unknown as { _toCloudFormation(): JsonObject })._toCloudFormation();
      model = new TemplateModel(stack, asObject(stack.resolve(render)));
      TemplateModel.cache.set(stack, model);
    }
    return model;
  }

  /** Drops every cached model, so the next {@link of} renders the stack again. */
  public static forgetAll(): void {
    TemplateModel.cache = new WeakMap();
  }

  /** Every resource, by logical id. */
  public readonly resources: ReadonlyMap<string, TemplateResource>;
  private readonly mappings: JsonObject;

  private constructor(
    public readonly stack: Stack,
    template: JsonObject,
  ) {
    const resources = new Map<string, TemplateResource>();
    for (const [logicalId, raw] of Object.entries(asObject(template.Resources))) {
      const resource = asObject(raw);
      resources.set(logicalId, {
        logicalId,
        type: String(resource.Type),
        properties: asObject(resource.Properties),
      });
    }
    this.resources = resources;
    this.mappings = asObject(template.Mappings);
  }

  /** The logical id of a resource of this stack. */
  public logicalIdOf(node: CfnResource): string {
    return this.stack.resolve(node.logicalId) as string;
  }

  /** The template entry of a resource of this stack. */
  public resourceOf(node: CfnResource): TemplateResource {
    const id = this.logicalIdOf(node);
    const resource = this.resources.get(id);
    if (!resource) throw new Error(`${node.node.path}: logical id ${id} is not in the template`);
    return resource;
  }

  /** Every resource of the given types. */
  public ofType(...types: string[]): TemplateResource[] {
    return [...this.resources.values()].filter((r) => types.includes(r.type));
  }

  /** The resource a value points at directly (`Ref` / `Fn::GetAtt`), if it has one of the types. */
  public target(value: unknown, ...types: string[]): TemplateResource | undefined {
    const id = pointedId(value);
    const resource = id === undefined ? undefined : this.resources.get(id);
    return resource && (types.length === 0 || types.includes(resource.type)) ? resource : undefined;
  }

  /** Every resource of the types referenced anywhere inside a value, in order, without repeats. */
  public targets(value: unknown, ...types: string[]): TemplateResource[] {
    const found = new Map<string, TemplateResource>();
    const walk = (v: unknown) => {
      const resource = this.target(v, ...types);
      if (resource) found.set(resource.logicalId, resource);
      if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(value);
    return [...found.values()];
  }

  /**
   * The literal strings a value can stand for: itself when it is a string, every value of
   * the map entry an `Fn::FindInMap` can select (whatever the partition or region key), or
   * a flattened `Fn::Join` with `${}` for the parts that are not literal.
   */
  public literals(value: unknown): string[] {
    if (typeof value === 'string') return [value];
    const findInMap = asObject(value)['Fn::FindInMap'];
    if (Array.isArray(findInMap) && typeof findInMap[0] === 'string') {
      const map = asObject(this.mappings[findInMap[0]]);
      const firstKeys = typeof findInMap[1] === 'string' ? [findInMap[1]] : Object.keys(map);
      return firstKeys.flatMap((k) => {
        const entry = asObject(map[k]);
        const secondKeys = typeof findInMap[2] === 'string' ? [findInMap[2]] : Object.keys(entry);
        return secondKeys.map((k2) => entry[k2]).filter((v): v is string => typeof v === 'string');
      });
    }
    return asObject(value)['Fn::Join'] ? [flatString(value)] : [];
  }
}
