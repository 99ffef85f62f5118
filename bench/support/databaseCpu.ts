import { readdirSync, readFileSync } from 'node:fs';
import type { SqlConnection } from '../../dist';

/**
 * The CPU time the database server has used so far, in seconds, when it runs on this machine and
 * its processes can be read from /proc (Linux); `undefined` otherwise. On a 2-core machine the
 * server and the migrator share the cores, so a rotation's wall time is bounded below by their
 * CPU added up: this is what shows how much of a rotation is the database's own work.
 *
 * PostgreSQL: the postmaster and its live children (backends, walwriter, ...), plus the children it
 * has reaped (a closed connection's backend). MySQL/MariaDB: the one server process, all threads.
 */
export async function databaseCpu(conn: SqlConnection): Promise<(() => number) | undefined> {
  const tick = 100; // USER_HZ: the unit of /proc/<pid>/stat times on Linux
  try {
    if (conn.dialect === 'postgres') {
      const [row] = await conn.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const postmaster = stat(row!.pid).ppid;
      return () => {
        const p = stat(postmaster);
        let ticks = p.utime + p.stime + p.cutime + p.cstime;
        for (const pid of children(postmaster)) {
          const c = stat(pid, true);
          if (c) ticks += c.utime + c.stime;
        }
        return ticks / tick;
      };
    }
    const [row] = await conn.query<{ file: string }>('SELECT @@pid_file AS file');
    const server = Number(readFileSync(row!.file, 'utf8').trim());
    return () => {
      const s = stat(server);
      return (s.utime + s.stime) / tick;
    };
  } catch {
    return undefined;
  }
}

interface ProcStat {
  readonly ppid: number;
  readonly utime: number;
  readonly stime: number;
  readonly cutime: number;
  readonly cstime: number;
}

function stat(pid: number, mayVanish: true): ProcStat | undefined;
function stat(pid: number): ProcStat;
function stat(pid: number, mayVanish = false): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if (mayVanish) return undefined;
    throw error;
  }
  // Fields after the command name (which may hold spaces, in parentheses): state is field 3.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (field: number) => Number(f[field - 3]);
  return { ppid: n(4), utime: n(14), stime: n(15), cutime: n(16), cstime: n(17) };
}

function children(parent: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name), true);
    if (s?.ppid === parent) out.push(Number(name));
  }
  return out;
}
