import { createHash } from 'node:crypto';
import { Statement, statement } from './statement';

/**
 * A PL/pgSQL function that returns one query's rows: a statement stored in the database,
 * so that PostgreSQL parses and plans it once per session instead of on every call.
 *
 * **Why.** The service sends its statements unnamed, because RDS Proxy pins a session
 * that prepares a named one (service/db/statement.ts). PostgreSQL then parses and plans
 * the checkout's two large CTE statements on every call: on the bench box that was most
 * of PostgreSQL's CPU per checkout, and pgbench ran the statements twice as fast prepared.
 * PL/pgSQL prepares the queries of a function once per session and keeps their plans, and
 * calling a function with an unnamed statement pins nothing: the plans are cached behind
 * the proxy too. The query itself is unchanged (one statement, one snapshot, the same
 * locks in the same order, the same errors), and it is still one round trip.
 *
 * **Named after its text.** The function's name ends with a hash of its signature and
 * body (`checkout_claim_3f2a9c1b04de`), and its migration is named after the function
 * (service/db/migrations.ts `FUNCTION_MIGRATIONS`). Changing the SQL in the code therefore
 * makes a new function with a new migration, which `npm run db:migrate` applies like any
 * other, and the service refuses to start until it has; the applied migrations stay as
 * they ran, and instances of the previous release keep calling the previous function
 * during a rolling deploy. A function no release calls any more can be dropped by a
 * later migration.
 *
 * SECURITY INVOKER (the default): the function runs with its caller's privileges, so the
 * service's `checkout` user needs exactly the table privileges the statement needs, and
 * EXECUTE, which PostgreSQL grants to PUBLIC on a new function.
 */
export interface SqlFunction {
  /** The function's name, with the hash of its definition. */
  readonly name: string;
  /** `CREATE FUNCTION ...`: what its migration runs. */
  readonly ddl: string;
  /** The call, one statement: `/* tag *\/ SELECT * FROM name($1::type, ...)`. */
  readonly call: Statement;
}

/**
 * Defines a function returning `query`'s rows.
 *
 * @param tag - the call's statement tag, as {@link statement} takes it; the function's
 *   name is the tag with `_` for `-`, plus the hash
 * @param parameters - the types of `$1`, `$2`... in `query`, in order
 * @param returns - the `RETURNS TABLE` columns, with the types the query's columns have
 * @param query - one query (SELECT, or WITH ... SELECT with data-modifying CTEs), using `$1`...
 */
export function sqlFunction(
  tag: string,
  parameters: readonly string[],
  returns: string,
  query: string,
): SqlFunction {
  if (query.includes('$fn$')) throw new Error(`${tag}: the query may not contain $fn$`);
  const signature = `(${parameters.join(', ')}) RETURNS TABLE (${returns})`;
  // use_column: the RETURNS TABLE names are variables in PL/pgSQL; in the query a name
  // that is also a column means the column, as it does in the statement on its own.
  const body = `#variable_conflict use_column\nBEGIN\n  RETURN QUERY ${query.trim()};\nEND`;
  const hash = createHash('sha256').update(`${signature}\n${body}`).digest('hex').slice(0, 12);
  const name = `${tag.replace(/-/g, '_')}_${hash}`;
  return {
    name,
    ddl: `CREATE FUNCTION ${name} ${signature} LANGUAGE plpgsql VOLATILE AS $fn$\n${body}\n$fn$`,
    call: statement(
      tag,
      `SELECT * FROM ${name}(${parameters.map((type, i) => `$${i + 1}::${type}`).join(', ')})`,
    ),
  };
}
