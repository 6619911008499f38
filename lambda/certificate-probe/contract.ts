/**
 * What the certificate probe and its construct (lib/constructs/certificate-probe.ts)
 * agree on: the endpoint syntax, the metric names and the dimension. Pure, with no
 * imports, so the construct can use it at synth without pulling in the handler.
 */

/** Days until the endpoint's certificate expires (two decimals; negative once expired). */
export const DAYS_TO_EXPIRY_METRIC = 'DaysToExpiry';
/** 1 when the endpoint could not be probed (no TLS answer within the timeout), else 0. */
export const PROBE_FAILED_METRIC = 'ProbeFailed';
/** The dimension naming the endpoint, with the value {@link ProbeEndpoint.label}. */
export const ENDPOINT_DIMENSION = 'Endpoint';
/** The namespace unless the construct is told otherwise. */
export const DEFAULT_PROBE_NAMESPACE = 'ResilientShop/Certificates';

/** One endpoint to probe. */
export interface ProbeEndpoint {
  readonly host: string;
  readonly port: number;
  /** The `Endpoint` dimension: `host`, or `host:port` when the port is not 443. */
  readonly label: string;
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Parses `host` or `host:port` (a DNS name or IPv4 address, lower case; port 1-65535,
 * 443 when omitted).
 *
 * @throws Error naming the bad endpoint and the expected form
 */
export function parseProbeEndpoint(spec: string): ProbeEndpoint {
  const trimmed = spec.trim();
  const match = /^([^:]+)(?::(\d{1,5}))?$/.exec(trimmed);
  const host = match?.[1] ?? '';
  const port = match?.[2] === undefined ? 443 : Number(match[2]);
  if (!match || !(HOSTNAME.test(host) || IPV4.test(host)) || port < 1 || port > 65535) {
    throw new Error(
      `probe endpoint "${spec}" must be host or host:port, such as "shop.example.com" or "shop.example.com:8443"`,
    );
  }
  return { host, port, label: port === 443 ? host : `${host}:${port}` };
}

/**
 * Parses `PROBE_ENDPOINTS`: a JSON array of endpoint strings, at least one, no repeats.
 *
 * @throws Error naming what is wrong
 */
export function parseProbeEndpoints(json: string): ProbeEndpoint[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new Error(`PROBE_ENDPOINTS must be a JSON array of "host[:port]" strings, got ${json}`);
  }
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((e) => typeof e === 'string')) {
    throw new Error(`PROBE_ENDPOINTS must be a non-empty JSON array of "host[:port]" strings, got ${json}`);
  }
  const endpoints = raw.map(parseProbeEndpoint);
  const labels = endpoints.map((e) => e.label);
  const repeated = labels.filter((label, i) => labels.indexOf(label) !== i);
  if (repeated.length > 0) throw new Error(`PROBE_ENDPOINTS lists ${repeated.join(', ')} more than once`);
  return endpoints;
}
