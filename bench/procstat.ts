// Reading a process's CPU time and memory from /proc (Linux), and the
// machine's CPU use from /proc/stat.
import { readFileSync, readdirSync } from "node:fs";

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux.

interface Stat {
  readonly ppid: number;
  /** utime + stime, µs. */
  readonly selfUs: number;
  /** cutime + cstime (reaped children), µs. */
  readonly childrenUs: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
  const f = (n: number) => Number(fields[n - 3]);
  return { ppid: f(4), selfUs: (f(14) + f(15)) * TICK_US, childrenUs: (f(16) + f(17)) * TICK_US };
}

/** CPU time (user + system) the process has used, in µs. */
export function cpuUs(pid: number): number {
  return readStat(pid)?.selfUs ?? NaN;
}

/**
 * CPU time of a process tree in µs: the root's own and reaped children's time
 * plus the live children's (e.g. a postmaster and its backends).
 */
export function treeCpuUs(rootPid: number): number {
  const root = readStat(rootPid);
  if (!root) return NaN;
  let total = root.selfUs + root.childrenUs;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s && s.ppid === rootPid) total += s.selfUs;
  }
  return total;
}

/** A /proc/<pid>/status field in kB (VmRSS, VmHWM). */
export function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole machine, for CPU utilisation over a window. */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Samples a process's VmRSS every `everyMs`; stop() returns the peak in kB. */
export function sampleRss(pid: number, everyMs = 50): { stop(): number; peakBetween(fromMs: number, toMs: number): number } {
  let peak = statusKb(pid, "VmRSS");
  // Sample times (epoch ms) and VmRSS (kB), to see growth within a window.
  const samples: [number, number][] = [];
  const timer = setInterval(() => {
    const kb = statusKb(pid, "VmRSS");
    if (kb > peak || Number.isNaN(peak)) peak = kb;
    if (!Number.isNaN(kb)) samples.push([Date.now(), kb]);
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const kb = statusKb(pid, "VmRSS");
      return Math.max(peak, Number.isNaN(kb) ? 0 : kb);
    },
    peakBetween(fromMs, toMs) {
      return Math.max(...samples.filter(([t]) => t >= fromMs && t <= toMs).map(([, kb]) => kb));
    },
  };
}
