/**
 * The database's own ceiling for the checkout's SQL: pgbench driving the two statements
 * of a checkout (claim, record the outcome) with as many clients as the service bench,
 * on a database prepared the same way. The script, bench/pgbench-checkout.sql, is
 * derived from the service's statements ({@link pgbenchScript}): the same calls of the
 * same functions (the service's migrations create them in pgbench's database too), with
 * each bound parameter replaced by what pgbench can supply (a random SKU and customer,
 * the key and ids generated server-side by gen_random_uuid() in the claim and read back
 * with \gset for the second statement, constants for the rest).
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLAIM } from '../service/orders/reservation';
import { RECORD } from '../service/orders/outcome';

export const PGBENCH_SCRIPT_PATH = join(__dirname, 'pgbench-checkout.sql');

/** Replaces $1..$n in `sql` by the expressions given (parenthesized), refusing one not given. */
function bind(sql: string, values: Record<number, string>): string {
  return sql.replace(/\$(\d+)/g, (_, n: string) => {
    const value = values[Number(n)];
    if (value === undefined) throw new Error(`pgbench script: no value for $${n}`);
    return `(${value})`;
  });
}

/** One line per statement, as pgbench reads scripts (a command ends at the end of its line). */
const oneLine = (sql: string) => sql.replace(/\s+/g, ' ').trim();

const HASH = 'a'.repeat(64);
const CHARGE_ID = 'ch_00000000-0000-4000-8000-000000000000';

/**
 * The pgbench script of one checkout, from the service's statements.
 *
 * @param skus - SKUs BENCH-0 .. BENCH-<skus - 1> are drawn at random, as the service bench spreads carts
 */
export function pgbenchScript(skus: number): string {
  // The claim: the key, order id and lease token come from gen_random_uuid() in a CTE
  // (volatile, so evaluated once), are passed to the claim's function and returned for \gset.
  const claimCall = bind(CLAIM.call.text.replace(/^\/\* [a-z-]+ \*\/ /, ''), {
    1: 'ids.key',
    2: `'${HASH}'`,
    3: 'ids.order_id',
    4: 'ids.lease_token',
    5: '30000',
    6: `ARRAY['BENCH-' || :sku::int]`,
    7: 'ARRAY[1]',
    8: `'bench-' || :customer::int`,
    9: `'USD'`,
    10: `'tok_visa'`,
  });
  const claim =
    `/* ${CLAIM.call.tag} */ WITH ids AS (SELECT gen_random_uuid()::text AS key, gen_random_uuid() AS order_id, gen_random_uuid() AS lease_token) ` +
    `SELECT ids.key, ids.order_id, ids.lease_token, c.* FROM ids, LATERAL (${claimCall}) AS c`;
  // Recording a confirmed order: payload and reply of the service's size and shape.
  const payload = JSON.stringify({
    type: 'OrderConfirmed',
    orderId: '00000000-0000-4000-8000-000000000000',
    customerId: 'bench-1',
    amountCents: 100,
    currency: 'USD',
    chargeId: CHARGE_ID,
    items: [{ sku: 'BENCH-1', quantity: 1 }],
  });
  const reply = JSON.stringify({
    orderId: '00000000-0000-4000-8000-000000000000',
    status: 'CONFIRMED',
    recommendations: [{ sku: 'GIFT-WRAP' }, { sku: 'SOCKS-1' }, { sku: 'MUG-2' }],
    degraded: [],
  });
  const record = bind(RECORD.call.text, {
    1: ':key',
    2: ':lease_token::uuid',
    3: ':order_id::uuid',
    4: `'CONFIRMED'`,
    5: `'${CHARGE_ID}'`,
    6: 'false',
    7: `'order-events'`,
    8: `'${payload}'`,
    9: '201',
    10: `'${reply}'::jsonb`,
  });
  return [
    '-- One checkout: the claim and the record of a confirmed outcome, as the service sends them.',
    '-- Generated from service/orders/reservation.ts and service/orders/outcome.ts by bench/pgbench.ts:',
    '-- `npm run bench:checkout -- --write-pgbench-script` after changing either statement.',
    `\\set sku random(0, ${skus - 1})`,
    '\\set customer random(0, 999)',
    `${oneLine(claim)} \\gset`,
    oneLine(record),
    '',
  ].join('\n');
}

/** Whether the committed script is the one the statements give; writes it when asked to. */
export function checkPgbenchScript(skus: number, write: boolean): 'current' | 'written' | 'stale' {
  const expected = pgbenchScript(skus);
  let committed = '';
  try {
    committed = readFileSync(PGBENCH_SCRIPT_PATH, 'utf8');
  } catch {
    // missing: stale
  }
  if (committed === expected) return 'current';
  if (!write) return 'stale';
  writeFileSync(PGBENCH_SCRIPT_PATH, expected);
  return 'written';
}

/** What a pgbench run measured. */
export interface PgbenchResult {
  /** Script runs (checkouts) per second, initial connection time excluded. */
  readonly tps: number;
  readonly latencyMs: number;
  readonly failed: number;
  readonly transactions: number;
}

/**
 * Runs pgbench on `database` with the checkout script.
 *
 * @param protocol - `extended` for unnamed statements (as the service sends them), `prepared` for named
 */
export async function runPgbench(options: {
  readonly url: string;
  readonly clients: number;
  readonly seconds: number;
  readonly protocol: 'extended' | 'prepared';
}): Promise<PgbenchResult> {
  const url = new URL(options.url);
  const { stdout } = await promisify(execFile)(
    'pgbench',
    [
      '--no-vacuum',
      `--client=${options.clients}`,
      '--jobs=2',
      `--time=${options.seconds}`,
      `--protocol=${options.protocol}`,
      `--file=${PGBENCH_SCRIPT_PATH}`,
      `--host=${url.hostname}`,
      `--port=${url.port || '5432'}`,
      `--username=${decodeURIComponent(url.username) || 'postgres'}`,
      url.pathname.slice(1),
    ],
    { env: { ...process.env, PGPASSWORD: decodeURIComponent(url.password) } },
  );
  const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? NaN);
  return {
    tps: number(/tps = ([\d.]+) \(without initial connection time\)/),
    latencyMs: number(/latency average = ([\d.]+) ms/),
    failed: number(/number of failed transactions: (\d+)/) || 0,
    transactions: number(/number of transactions actually processed: (\d+)/),
  };
}
