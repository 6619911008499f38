import { EventEmitter } from 'node:events';
import { Supervisor, SupervisorOptions, WorkerProcess } from '../../service/cluster';

/** A worker process that the test ends by hand. */
class FakeWorker extends EventEmitter implements WorkerProcess {
  static nextPid = 1_000;
  readonly signals: string[] = [];
  readonly process = {
    pid: FakeWorker.nextPid++,
    kill: (signal?: NodeJS.Signals) => {
      this.signals.push(signal ?? 'SIGTERM');
      return true;
    },
  };

  exit(code: number | null, signal: string | null = null): void {
    this.emit('exit', code, signal);
  }
}

function supervise(overrides: Partial<SupervisorOptions> = {}) {
  const workers: FakeWorker[] = [];
  const exits: number[] = [];
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const supervisor = new Supervisor({
    processes: 2,
    fork: () => {
      const w = new FakeWorker();
      workers.push(w);
      return w;
    },
    stopTimeoutMs: 1_000,
    exit: (code) => exits.push(code),
    logger: quiet,
    ...overrides,
  });
  supervisor.start();
  return { supervisor, workers, exits };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('Supervisor (the node:cluster primary)', () => {
  test('starts one worker per process asked for', () => {
    const { workers } = supervise({ processes: 3 });
    expect(workers).toHaveLength(3);
  });

  test('SIGTERM is forwarded to every worker, and the primary exits 0 once all have exited cleanly', () => {
    const { supervisor, workers, exits } = supervise();

    supervisor.stop('SIGTERM');

    expect(workers.map((w) => w.signals)).toEqual([['SIGTERM'], ['SIGTERM']]);
    workers[0].exit(0);
    expect(exits).toEqual([]);
    workers[1].exit(0);
    expect(exits).toEqual([0]);
  });

  test('a worker that fails its shutdown makes the primary exit 1', () => {
    const { supervisor, workers, exits } = supervise();
    supervisor.stop('SIGTERM');
    workers[0].exit(0);
    workers[1].exit(1);
    expect(exits).toEqual([1]);
  });

  test('workers that outlast their shutdown budget are killed, and the primary exits 1', () => {
    const { supervisor, workers, exits } = supervise({ stopTimeoutMs: 1_000 });
    supervisor.stop('SIGTERM');
    workers[0].exit(0);

    jest.advanceTimersByTime(1_000);

    expect(workers[1].signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(exits).toEqual([1]);
  });

  test('a worker that crashes is replaced, with a growing pause while they keep dying young', () => {
    const { workers } = supervise({ stableAfterMs: 10_000 });
    workers[0].exit(null, 'SIGKILL');
    jest.advanceTimersByTime(99);
    expect(workers).toHaveLength(2);
    jest.advanceTimersByTime(1);
    expect(workers).toHaveLength(3);

    workers[2].exit(1);
    jest.advanceTimersByTime(199);
    expect(workers).toHaveLength(3);
    jest.advanceTimersByTime(1);
    expect(workers).toHaveLength(4);
  });

  test('a worker that exits 78 (configuration error) is not restarted: the others are stopped and the primary exits 78', () => {
    const { workers, exits } = supervise();

    workers[0].exit(78);

    expect(workers[1].signals).toEqual(['SIGTERM']);
    workers[1].exit(0);
    jest.advanceTimersByTime(60_000);
    expect(workers).toHaveLength(2);
    expect(exits).toEqual([78]);
  });

  test('no worker is started after stop, even one whose restart was pending', () => {
    const { supervisor, workers, exits } = supervise();
    workers[0].exit(1);
    supervisor.stop('SIGTERM');
    workers[1].exit(0);
    jest.advanceTimersByTime(60_000);
    expect(workers).toHaveLength(2);
    expect(exits).toEqual([0]);
  });
});
