import { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { Admission, gateOf } from './gate';

/**
 * A SQL statement the service sends, tagged with what it is for.
 *
 * The tag is the SQL's first token, as a comment (`/* checkout-claim *\/ WITH ...`): it
 * travels with the statement on the wire, so the round-trip tests, the benchmark's
 * counting proxy, `pg_stat_activity.query` and `pg_stat_statements` tell statements
 * apart by it whether or not the statement is prepared under a name.
 *
 * **Unnamed by default, for RDS Proxy.** Statements are sent as unnamed parameterized
 * queries (the extended protocol with the unnamed statement and portal). RDS Proxy pins
 * a client connection to its database connection for the rest of the session when it
 * sees a named prepared statement ("Avoiding pinning an RDS Proxy", Aurora user guide),
 * which turns the proxy's multiplexing off for every connection of the service; since
 * November 2023 it multiplexes the unnamed extended protocol. The cost: PostgreSQL parses
 * and plans each statement again. The checkout's two statements are large CTEs, where that
 * was most of PostgreSQL's CPU (pgbench ran them twice as fast with `--protocol=prepared`),
 * so they are stored functions instead (service/db/sql-function.ts): the unnamed call is
 * short, and PL/pgSQL keeps the query's plan for the session.
 *
 * `DB_NAMED_STATEMENTS=true` ({@link nameStatementsOn}) prepares each statement once per
 * connection under its tag instead: only for a direct connection to PostgreSQL, never
 * through RDS Proxy (the configuration refuses it with IAM auth, which is how the service
 * reaches the proxy).
 */
export interface Statement {
  /** What the statement is for, as in its leading comment: `checkout-claim`. */
  readonly tag: string;
  /** The SQL, starting with the tag's comment. */
  readonly text: string;
}

/** Tags are plain words, so that the comment cannot end early or carry anything else. */
const TAG = /^[a-z][a-z0-9-]*$/;

/** Every statement defined, by tag: a tag names one SQL text (it is the prepared statement's name). */
const defined = new Map<string, string>();

/** Defines a tagged statement: `sql` is prefixed with `/* tag *\/`. */
export function statement(tag: string, sql: string): Statement {
  if (!TAG.test(tag)) throw new Error(`statement tag ${JSON.stringify(tag)} must match ${TAG}`);
  const text = `/* ${tag} */ ${sql.trim()}`;
  if ((defined.get(tag) ?? text) !== text) throw new Error(`statement tag ${tag} is used for two statements`);
  defined.set(tag, text);
  return { tag, text };
}

/** The tag a statement's SQL starts with, or undefined (for tests and the benchmark). */
export function statementTag(sql: string): string | undefined {
  return /^\/\* ([a-z][a-z0-9-]*) \*\//.exec(sql)?.[1];
}

/** Pools (and their clients) that prepare statements under their tags. */
const named = new WeakSet<Pool | PoolClient>();

/**
 * Has `pool` and its clients send statements as named prepared statements (prepared once
 * per connection). Only for direct connections to PostgreSQL: RDS Proxy pins them.
 */
export function nameStatementsOn(pool: Pool): void {
  named.add(pool);
  pool.on('connect', (client) => named.add(client));
}

/**
 * Sends `statement` with its parameters on `db`: unnamed, unless {@link nameStatementsOn}
 * was called for it. On a pool with a gate (admission control: service/db/gate.ts) the
 * statement waits for its turn there; `admission: 'new'` marks a new checkout's first
 * statement, which the gate refuses rather than queue for long.
 */
export function execute<R extends QueryResultRow = Record<string, unknown>>(
  db: Pool | PoolClient,
  statement: Statement,
  values: unknown[],
  admission: Admission = 'admitted',
): Promise<QueryResult<R>> {
  const config = named.has(db)
    ? { name: statement.tag, text: statement.text, values }
    : { text: statement.text, values };
  const gate = gateOf(db);
  return gate ? gate.run(admission, () => db.query<R>(config)) : db.query<R>(config);
}
