/**
 * Load generators for the checkout benchmark: closed loop (autocannon: each client sends
 * its next request when the last is answered) and open loop (requests due at a fixed
 * rate whatever happened to the others, latency counted from when each was due).
 */
import { Agent, request } from 'node:http';
import autocannon from 'autocannon';

/** What one load run saw. */
export interface LoadResult {
  /** Requests answered per second, any status. */
  readonly rps: number;
  /** 201 answers per second. */
  readonly okRps: number;
  readonly ok: number;
  readonly p50: number;
  readonly p99: number;
  /** p99 of the 201 answers only. */
  readonly okP99: number;
  readonly statuses: Record<string, number>;
  readonly elapsedS: number;
}

/** Produces the next checkout request: a body and a fresh Idempotency-Key. */
export type NextCheckout = () => { body: string; key: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (sorted: number[], p: number) => sorted[Math.floor(sorted.length * p)] ?? NaN;

/**
 * Open loop: request i is due at start + i / rate, whatever happened to the others, and
 * its latency counts from when it was due (so a late send counts as waiting: no
 * coordinated omission). At most `maxInFlight` requests are outstanding; one that finds
 * no room is counted as `dropped` (the client gave up), never silently skipped.
 */
export async function openLoop(
  url: string,
  next: NextCheckout,
  rate: number,
  maxInFlight: number,
  seconds: number,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: maxInFlight });
  const target = new URL('/v1/checkout', url);
  const statuses: Record<string, number> = {};
  const all: number[] = [];
  const ok: number[] = [];
  const send = (due: number) =>
    new Promise<void>((resolve) => {
      const { body, key } = next();
      const done = (status: string) => {
        const ms = performance.now() - due;
        statuses[status] = (statuses[status] ?? 0) + 1;
        all.push(ms);
        if (status === '201') ok.push(ms);
        resolve();
      };
      const req = request(
        target,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
        },
        (res) => {
          res.resume();
          res.on('end', () => done(String(res.statusCode)));
        },
      );
      req.on('error', () => done('error'));
      req.end(body);
    });

  const total = Math.round(rate * seconds);
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait >= 1) await sleep(wait);
    if (inFlight.size >= maxInFlight) {
      statuses.dropped = (statuses.dropped ?? 0) + 1;
      continue;
    }
    const pending = send(due).then(() => void inFlight.delete(pending));
    inFlight.add(pending);
  }
  await Promise.all(inFlight);
  const elapsedS = (performance.now() - start) / 1000;
  agent.destroy();
  all.sort((a, b) => a - b);
  ok.sort((a, b) => a - b);
  return {
    rps: all.length / elapsedS,
    okRps: ok.length / elapsedS,
    ok: ok.length,
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    okP99: percentile(ok, 0.99),
    statuses,
    elapsedS,
  };
}

/** Closed loop (autocannon): each client sends its next request when the last is answered. */
export async function closedLoop(
  url: string,
  next: NextCheckout,
  connections: number,
  seconds: number,
): Promise<LoadResult> {
  const okLatencies: number[] = [];
  const statuses: Record<string, number> = {};
  let finish: (result: autocannon.Result) => void = () => undefined;
  const done = new Promise<autocannon.Result>((resolve) => (finish = resolve));
  const start = performance.now();
  const instance = autocannon(
    {
      url,
      connections,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          path: '/v1/checkout',
          setupRequest: (req) => {
            const { body, key } = next();
            return {
              ...req,
              method: 'POST',
              path: '/v1/checkout',
              body,
              headers: { 'content-type': 'application/json', 'idempotency-key': key },
            };
          },
        },
      ],
    },
    (_err, result) => finish(result),
  );
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    if (statusCode === 201) okLatencies.push(responseTime);
  });
  const result = await done;
  const elapsedS = (performance.now() - start) / 1000;
  okLatencies.sort((a, b) => a - b);
  const ok = statuses['201'] ?? 0;
  return {
    rps: result.requests.total / elapsedS,
    okRps: ok / elapsedS,
    ok,
    p50: result.latency.p50,
    p99: result.latency.p99,
    okP99: percentile(okLatencies, 0.99),
    statuses,
    elapsedS,
  };
}
