import { CfnResource, PolicyValidationPluginReport } from 'aws-cdk-lib';
import { IApplyRule, NagMessageLevel, NagPack, NagPackProps } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { TemplateModel } from './template-model';

/** One rule of a {@link TemplateRulesPack}: its id suffix, the texts of its findings, and the check. */
export interface TemplateRule extends Pick<IApplyRule, 'info' | 'explanation' | 'rule'> {
  /** The rule's id after `<Pack>-` (the `ruleSuffixOverride` of cdk-nag). */
  readonly suffix: string;
}

/**
 * Base of the project's own packs (`WiringChecks`, `ResilienceChecks`): every rule reads
 * the synthesized templates through {@link TemplateModel}, reports at ERROR level, and is
 * applied to every resource in the order given.
 */
export abstract class TemplateRulesPack extends NagPack {
  private readonly templateRules: readonly TemplateRule[];

  protected constructor(
    packName: string,
    rules: readonly TemplateRule[],
    scope?: IConstruct,
    props?: NagPackProps,
  ) {
    super(scope, props);
    this.packName = packName;
    this.templateRules = rules;
  }

  /** Reads every template afresh: a tree validated twice may have changed in between. */
  public override validateScope(scope: IConstruct): PolicyValidationPluginReport {
    TemplateModel.forgetAll();
    try {
      return super.validateScope(scope);
    } finally {
      TemplateModel.forgetAll();
    }
  }

  protected checkResource(node: CfnResource): void {
    for (const { suffix, info, explanation, rule } of this.templateRules) {
      this.applyRule({
        ruleSuffixOverride: suffix,
        info,
        explanation,
        level: NagMessageLevel.ERROR,
        node,
        rule,
      });
    }
  }
}
