import { Template } from 'aws-cdk-lib/assertions';

type Json = Record<string, unknown>;

/**
 * What a CloudFormation intrinsic in the user data becomes in {@link flattenIntrinsics}:
 * a plain word (`CFN_REF_<id>`, `CFN_ATT_<id>_<attribute>`), so the flattened script is
 * valid shell and each deploy-time value can be found and replaced.
 */
export function placeholder(intrinsic: Json): string {
  if (typeof intrinsic.Ref === 'string') return `CFN_REF_${intrinsic.Ref.replace(/[^A-Za-z0-9]/g, '_')}`;
  const getAtt = intrinsic['Fn::GetAtt'];
  if (Array.isArray(getAtt)) return `CFN_ATT_${getAtt.join('_').replace(/[^A-Za-z0-9]/g, '_')}`;
  return `CFN_${Object.keys(intrinsic)[0].replace(/[^A-Za-z0-9]/g, '_')}`;
}

/** A template string value with every intrinsic replaced by its {@link placeholder}. */
export function flattenIntrinsics(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  const obj = value as Json;
  const join = obj['Fn::Join'] as [string, unknown[]] | undefined;
  if (join) return join[1].map(flattenIntrinsics).join(join[0]);
  return placeholder(obj);
}

/** The user data of the template's (only) launch template, flattened. */
export function userDataOf(template: Template): string {
  const templates = Object.values(template.findResources('AWS::EC2::LaunchTemplate'));
  if (templates.length !== 1) throw new Error(`expected one launch template, found ${templates.length}`);
  const data = (templates[0].Properties as Json).LaunchTemplateData as Json;
  return flattenIntrinsics((data.UserData as Json)['Fn::Base64']);
}

/** `NAME=value` lines of an environment file, in order (comments and blank lines skipped). */
export function parseEnvironmentFile(text: string): Array<[string, string]> {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const at = line.indexOf('=');
      if (at < 1) throw new Error(`not NAME=value: ${line}`);
      return [line.slice(0, at), line.slice(at + 1)];
    });
}

/** The values of one key of a systemd unit (`Environment=` may repeat). */
export function unitValues(unit: string, key: string): string[] {
  return unit
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}
