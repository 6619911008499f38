import { Pool } from 'pg';
import { sqlFunction } from '../../../service/db/sql-function';
import { MIGRATIONS, migrate } from '../../../service/db/migrations';
import { CLAIM } from '../../../service/orders/reservation';
import { RECORD } from '../../../service/orders/outcome';
import { TestDatabase, createTestDatabase } from '../helpers/database';

describe('sqlFunction', () => {
  // A tag names one statement text (service/db/statement.ts): each definition its own tag.
  let n = 0;
  const define = (query: string, parameters = ['int', 'text[]']) =>
    sqlFunction(`test-fn-${++n}`, parameters, 'n int, s text', query);
  const hashOf = (name: string) => name.slice(-12);

  test('is named after its definition: the same SQL gives the same hash, changed SQL a new one', () => {
    const a = define('SELECT $1, $2[1]');
    expect(a.name).toMatch(/^test_fn_\d+_[0-9a-f]{12}$/);
    expect(hashOf(define('SELECT $1, $2[1]').name)).toBe(hashOf(a.name));
    expect(hashOf(define('SELECT $1 + 1, $2[1]').name)).not.toBe(hashOf(a.name));
    expect(hashOf(define('SELECT $1, $2[1]', ['bigint', 'text[]']).name)).not.toBe(hashOf(a.name));
  });

  test('is called with one tagged statement that casts each parameter to its declared type', () => {
    const fn = sqlFunction('test-fn-call', ['int', 'text[]'], 'n int, s text', 'SELECT $1, $2[1]');
    expect(fn.call.tag).toBe('test-fn-call');
    expect(fn.call.text).toBe(`/* test-fn-call */ SELECT * FROM ${fn.name}($1::int, $2::text[])`);
    expect(fn.ddl).toContain(
      `CREATE FUNCTION ${fn.name} (int, text[]) RETURNS TABLE (n int, s text) LANGUAGE plpgsql`,
    );
    expect(fn.ddl).toContain('RETURN QUERY SELECT $1, $2[1];');
  });

  test('refuses a query that would end its dollar quote', () => {
    expect(() => sqlFunction('test-fn-quote', [], 'n int', "SELECT '$fn$'")).toThrow(
      /test-fn-quote: the query may not contain \$fn\$/,
    );
  });
});

describe('the checkout statements stored as functions', () => {
  let db: TestDatabase;
  let pool: Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new Pool({ connectionString: db.url, max: 2 });
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  test('each version is a migration of its own, after the numbered ones, and applied', async () => {
    const names = MIGRATIONS.map((m) => m.name);
    const functions = [CLAIM, RECORD].map((fn) => `function-${fn.name}`);
    expect(names.slice(-2)).toEqual(functions);
    const { rows } = await pool.query<{ name: string }>(
      "SELECT name FROM schema_migrations WHERE name LIKE 'function-%' ORDER BY name",
    );
    expect(rows.map((r) => r.name).sort()).toEqual([...functions].sort());
    const procs = await pool.query<{ proname: string; lang: string; secdef: boolean }>(
      `SELECT p.proname, l.lanname AS lang, p.prosecdef AS secdef FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
        WHERE p.proname = ANY ($1) ORDER BY p.proname`,
      [[CLAIM.name, RECORD.name]],
    );
    // SECURITY INVOKER: the caller's own privileges, nothing more.
    expect(procs.rows).toEqual(
      [CLAIM.name, RECORD.name].sort().map((proname) => ({ proname, lang: 'plpgsql', secdef: false })),
    );
  });

  test("a call returns the statement's rows: an unknown SKU stores the 409 under the key, and a second call finds the key stored", async () => {
    const call = (key: string, sku: string) =>
      pool.query(CLAIM.call.text, [
        key,
        'h',
        '00000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000002',
        30_000,
        [sku],
        [1],
        'c',
        'USD',
        'tok',
      ]);
    const { rows } = await call('fn-test-key', 'NO-SUCH-SKU');
    expect(rows).toEqual([
      {
        amount_cents: null,
        claimed: true,
        short_sku: 'NO-SUCH-SKU',
        short_reason: 'unknown-sku',
        seen: null,
      },
    ]);
    const again = await call('fn-test-key', 'NO-SUCH-SKU');
    expect(again.rows[0]).toMatchObject({ claimed: false, seen: { status_code: 409 } });
  });
});
