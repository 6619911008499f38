import { Pool } from 'pg';
import { inTransaction, isConflict, retryOnConflict } from '../../../service/db/transaction';

const conflict = (code: string) => Object.assign(new Error(`conflict ${code}`), { code });

describe('retryOnConflict', () => {
  test('runs again after a deadlock or serialization failure, and reports each retry', async () => {
    const errors = [conflict('40P01'), conflict('40001')];
    const retries: number[] = [];
    let runs = 0;
    const result = await retryOnConflict(
      async () => {
        runs++;
        const err = errors.shift();
        if (err) throw err;
        return 'done';
      },
      { baseDelayMs: 1, onRetry: (_err, attempt) => retries.push(attempt) },
    );
    expect(result).toBe('done');
    expect(runs).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  test('gives up after the bounded number of attempts with the last conflict', async () => {
    let runs = 0;
    await expect(
      retryOnConflict(
        async () => {
          runs++;
          throw conflict('40P01');
        },
        { attempts: 3, baseDelayMs: 1 },
      ),
    ).rejects.toThrow(/conflict 40P01/);
    expect(runs).toBe(3);
  });

  test('does not retry other errors (their outcome may be unknown)', async () => {
    let runs = 0;
    await expect(
      retryOnConflict(async () => {
        runs++;
        throw Object.assign(new Error('Query read timeout'), { code: undefined });
      }),
    ).rejects.toThrow(/Query read timeout/);
    expect(runs).toBe(1);
  });

  test('isConflict knows the two SQLSTATEs only', () => {
    expect(isConflict(conflict('40P01'))).toBe(true);
    expect(isConflict(conflict('40001'))).toBe(true);
    expect(isConflict(conflict('23505'))).toBe(false);
    expect(isConflict(null)).toBe(false);
  });
});

describe('inTransaction', () => {
  /** A pool whose one client records the statements it is sent. */
  function fakePool(failFirstWorkWith?: Error) {
    const sent: string[] = [];
    let failure = failFirstWorkWith;
    const client = {
      query: async (sql: string) => {
        sent.push(sql);
        if (sql === 'work' && failure) {
          const err = failure;
          failure = undefined;
          throw err;
        }
        return { rows: [], rowCount: 0 };
      },
      on: () => undefined,
      off: () => undefined,
      release: () => undefined,
    };
    return { pool: { connect: async () => client } as unknown as Pool, sent };
  }

  test('BEGIN, work, COMMIT', async () => {
    const { pool, sent } = fakePool();
    const result = await inTransaction(pool, async (db) => {
      await db.query('work');
      return 42;
    });
    expect(result).toBe(42);
    expect(sent).toEqual(['BEGIN', 'work', 'COMMIT']);
  });

  test('a deadlock rolls back and runs the whole transaction again', async () => {
    const { pool, sent } = fakePool(conflict('40P01'));
    await inTransaction(pool, async (db) => void (await db.query('work')), { baseDelayMs: 1 });
    expect(sent).toEqual(['BEGIN', 'work', 'ROLLBACK', 'BEGIN', 'work', 'COMMIT']);
  });
});
