import { Pool, QueryConfig } from 'pg';
import { execute, nameStatementsOn, statement, statementTag } from '../../../service/db/statement';

/** A pool that records what it is asked to send instead of sending it. */
function recordingPool(): { pool: Pool; sent: QueryConfig[] } {
  const pool = new Pool({ max: 1 });
  const sent: QueryConfig[] = [];
  (pool as unknown as { query: (config: QueryConfig) => Promise<unknown> }).query = async (config) => {
    sent.push(config);
    return { rows: [], rowCount: 0 };
  };
  return { pool, sent };
}

describe('statements', () => {
  const probe = statement('statement-test-probe', '\n  SELECT $1::int AS n\n');

  test('carry their tag as a leading comment, which statementTag reads back', () => {
    // GIVEN a statement defined with a tag WHEN its SQL is read THEN the comment comes first
    expect(probe.text).toBe('/* statement-test-probe */ SELECT $1::int AS n');
    expect(statementTag(probe.text)).toBe('statement-test-probe');
    expect(statementTag('SELECT 1')).toBeUndefined();
  });

  test('are sent unnamed by default, so that RDS Proxy does not pin the session', async () => {
    // GIVEN a pool as the service creates it by default
    const { pool, sent } = recordingPool();
    // WHEN a statement is executed THEN it goes out as an unnamed parameterized query
    await execute(pool, probe, [1]);
    expect(sent).toEqual([{ text: probe.text, values: [1] }]);
  });

  test('are prepared under their tag with DB_NAMED_STATEMENTS (direct connections only)', async () => {
    // GIVEN a pool whose statements are named
    const { pool, sent } = recordingPool();
    nameStatementsOn(pool);
    // WHEN a statement is executed THEN its tag is the prepared statement's name
    await execute(pool, probe, [2]);
    expect(sent).toEqual([{ name: 'statement-test-probe', text: probe.text, values: [2] }]);
  });

  test('refuse a tag that could end the comment, or one tag for two statements', () => {
    expect(() => statement('bad */ DROP TABLE x; /*', 'SELECT 1')).toThrow(/statement tag .* must match/);
    expect(() => statement('statement-test-probe', 'SELECT 2')).toThrow(
      /statement tag statement-test-probe is used for two statements/,
    );
  });
});
