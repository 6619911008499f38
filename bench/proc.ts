/**
 * CPU accounting from /proc (Linux): the CPU time of a process and its descendants (the
 * service's primary and its cluster workers), of PostgreSQL's backends for one database,
 * and of the whole machine, so that each scenario can say what it cost and how busy the
 * machine was with other work meanwhile.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, in seconds. */
  readonly cpuSeconds: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited meanwhile
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return {
    pid,
    ppid: Number(fields[1]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
  };
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** CPU seconds used so far by `root` and every process below it (exited ones are not counted). */
export function treeCpuSeconds(root: number): number {
  const stats = allPids()
    .map(readStat)
    .filter((s): s is ProcStat => s !== undefined);
  const children = new Map<number, ProcStat[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  let total = readStat(root)?.cpuSeconds ?? 0;
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.pop()!) ?? []) {
      total += child.cpuSeconds;
      queue.push(child.pid);
    }
  }
  return total;
}

/** Pids of the process tree under `root`, root included. */
export function treePids(root: number): number[] {
  const stats = allPids()
    .map(readStat)
    .filter((s): s is ProcStat => s !== undefined);
  const pids = [root];
  for (let i = 0; i < pids.length; i++) {
    for (const s of stats) if (s.ppid === pids[i]) pids.push(s.pid);
  }
  return pids;
}

/**
 * CPU seconds so far of the PostgreSQL backends connected to `database` (their titles
 * read `postgres: <cluster>: <user> <database> <host>`), keyed by pid so that a backend
 * opened or closed during a measurement is counted from when it was seen.
 */
export function postgresBackendCpu(database: string): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const pid of allPids()) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmdline.startsWith('postgres: ') || !cmdline.includes(` ${database} `)) continue;
    const stat = readStat(pid);
    if (stat) byPid.set(pid, stat.cpuSeconds);
  }
  return byPid;
}

/** CPU seconds the backends used between two {@link postgresBackendCpu} readings. */
export function backendCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** Busy and total CPU time of the whole machine, in seconds (all cores), from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = ticks[3] + ticks[4]; // idle + iowait
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** CPU seconds of this process and the children it has waited for (pgbench, once it exited). */
export function selfCpuSeconds(): { self: number; children: number } {
  const fields = readFileSync('/proc/self/stat', 'utf8');
  const rest = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
  return {
    self: (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SECOND,
    children: (Number(rest[13]) + Number(rest[14])) / TICKS_PER_SECOND,
  };
}

export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}
