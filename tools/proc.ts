// Readings of a process and the machine from /proc (Linux): memory, CPU time, file limits.
// Used by the load generator and the torture harness.

/** Memory of a process from /proc/PID/status, in bytes. */
export interface MemoryStatus {
  /** Resident set size now. */
  rss: number;
  /** Peak resident set size ("high water mark"). */
  hwm: number;
}

/** Reads VmRSS and VmHWM of `pid`. */
export function memoryOf(pid: number): MemoryStatus {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (field: string): number => {
    const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU time (user + system) `pid` has used so far, in milliseconds; "self" for this process. */
export function cpuMsOf(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name may hold spaces and parentheses: fields count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
  return ((Number(fields[11]) + Number(fields[12])) / USER_HZ) * 1000;
}

/** CPU time the whole machine has spent busy (all cores, every state but idle and iowait), in ms. */
export function machineBusyMs(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (stat(5))
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(
    Number,
  );
  return ((user! + nice! + system! + irq! + softirq! + steal!) / USER_HZ) * 1000;
}

/** The soft and hard limits on open files of this process. */
export function fileLimit(): { soft: number; hard: number } {
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const m = limits.match(/^Max open files\s+(\S+)\s+(\S+)/m);
  const value = (s: string | undefined) => (s === undefined || s === "unlimited" ? Infinity : +s);
  return { soft: value(m?.[1]), hard: value(m?.[2]) };
}
