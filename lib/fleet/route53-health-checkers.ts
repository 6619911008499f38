import { cidrContains } from '../nag/network';

/**
 * The IPv4 ranges Route 53 health checkers connect from: every prefix of
 * https://ip-ranges.amazonaws.com/ip-ranges.json with `"service": "ROUTE53_HEALTHCHECKS"`,
 * China regions (52.80.197.0/25 ... 52.83.35.128/25, only used for health checks in the
 * China partition) left out.
 *
 * Source and date: transcribed on 2026-11-24 from a published copy of ip-ranges.json
 * (this build has no internet access; the live file was not fetched). AWS adds ranges
 * over time, most of them inside 15.177.0.0/18. Re-check before relying on it:
 *
 *   curl -s https://ip-ranges.amazonaws.com/ip-ranges.json \
 *     | jq -r '.prefixes[] | select(.service == "ROUTE53_HEALTHCHECKS") | .ip_prefix' | sort -u
 *
 * Cross-checked during the issue 10 audit against the output of Route 53's
 * GetCheckerIpRanges shown in AWS's code library ("Route 53 examples using Tools for
 * PowerShell V5", docs.aws.amazon.com/code-library): the same sixteen regional /26 ranges,
 * and sixteen 15.177.x.0/23 ranges that 15.177.0.0/18 covers. No dated copy of
 * ip-ranges.json newer than the transcription was at hand, so the date above stands.
 *
 * A health checker whose range is missing here times out, and Route 53 counts it as a
 * failed check; the health check only fails once more than 82% of checkers report it
 * down (Route 53's default), so one missing range does not flip DNS, but several would.
 * The AWS-managed prefix list `com.amazonaws.<region>.route53-healthchecks` holds the
 * same ranges and follows AWS's changes; it needs a lookup of its id at synth, which this
 * app never does, so the ranges are listed here instead.
 */
export const ROUTE53_HEALTH_CHECKER_CIDRS: readonly string[] = [
  '15.177.0.0/18',
  '54.183.255.128/26',
  '54.228.16.0/26',
  '54.232.40.64/26',
  '54.241.32.64/26',
  '54.243.31.192/26',
  '54.244.52.192/26',
  '54.245.168.0/26',
  '54.248.220.0/26',
  '54.250.253.192/26',
  '54.251.31.128/26',
  '54.252.79.128/26',
  '54.252.254.192/26',
  '54.255.254.192/26',
  '107.23.255.0/26',
  '176.34.159.192/26',
  '177.71.207.128/26',
];

/** The date {@link ROUTE53_HEALTH_CHECKER_CIDRS} was transcribed (ISO 8601). */
export const ROUTE53_HEALTH_CHECKER_CIDRS_AS_OF = '2026-11-24';

/**
 * The health-checker ranges the allowed CIDRs do not already cover: empty when the
 * load balancer is open to the internet, all of them for a narrow allow list.
 */
export function healthCheckerCidrsToAdmit(allowedIngressCidrs: readonly string[]): string[] {
  return ROUTE53_HEALTH_CHECKER_CIDRS.filter(
    (checker) => !allowedIngressCidrs.some((allowed) => cidrContains(allowed, checker)),
  );
}
