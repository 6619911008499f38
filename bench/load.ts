/**
 * Load generators for the checkout benchmark: closed loop (each client sends its next
 * request when the last is answered) and open loop (requests due at a fixed rate
 * whatever happened to the others, latency counted from when each was due).
 */
import { Agent, request } from 'node:http';

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
 *
 * @param agent - kept-alive connections to reuse, as a load balancer keeps them: the
 * warm-up's, so that the measured run does not open hundreds of connections at once
 * (a burst of connects overflows the listen queue, and a dropped SYN is retried after
 * 1 s: that measured the kernel, not the service)
 */
export async function openLoop(
  url: string,
  next: NextCheckout,
  rate: number,
  maxInFlight: number,
  seconds: number,
  shared?: Agent,
): Promise<LoadResult> {
  const agent = shared ?? new Agent({ keepAlive: true, maxSockets: maxInFlight });
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
  if (!shared) agent.destroy();
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

/**
 * Closed loop: `clients` clients, each sending its next request when the last is
 * answered, as the peak is defined. A client that gets a 503 waits its `Retry-After`
 * before sending again, as real clients (and the load balancer's retries) do: one that
 * re-sent at once would turn every shed request into a storm of them, and the run would
 * measure how fast the service says no (it did: 30,000 503s in 10 s, the peak halved).
 */
export async function closedLoop(
  url: string,
  next: NextCheckout,
  clients: number,
  seconds: number,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const target = new URL('/v1/checkout', url);
  const statuses: Record<string, number> = {};
  const all: number[] = [];
  const ok: number[] = [];
  const send = () =>
    new Promise<{ status: string; retryAfterS: number }>((resolve) => {
      const { body, key } = next();
      const sent = performance.now();
      const done = (status: string, retryAfterS = 0) => {
        const ms = performance.now() - sent;
        statuses[status] = (statuses[status] ?? 0) + 1;
        all.push(ms);
        if (status === '201') ok.push(ms);
        resolve({ status, retryAfterS });
      };
      const req = request(
        target,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'idempotency-key': key } },
        (res) => {
          res.resume();
          res.on('end', () => done(String(res.statusCode), Number(res.headers['retry-after'] ?? 0)));
        },
      );
      req.on('error', () => done('error'));
      req.end(body);
    });
  const start = performance.now();
  const end = start + seconds * 1000;
  const client = async () => {
    while (performance.now() < end) {
      const { status, retryAfterS } = await send();
      if (status === '503' && retryAfterS > 0) {
        await sleep(Math.min(retryAfterS * 1000, end - performance.now()));
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
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
