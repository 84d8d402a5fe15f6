"""What bench/serve_all.py and bench/serve_http.py both need: the load
(Postfix smtp-source), serve's port from its log, and a process's CPU
time and memory from /proc."""
import collections
import os
import re
import subprocess
import sys
import time


def cpu_ticks():
    """The machine's "cpu" line of /proc/stat: user, nice, system, idle,
    iowait, irq, softirq, steal (clock ticks)."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


Run = collections.namedtuple("Run", "wall end steal wait_us")


def smtp_source(port, n, sessions, size, pid=None):
    """Runs smtp-source. Returns a Run: wall seconds; time.time() at its
    end; the % of the machine's CPU time stolen by the hypervisor
    meanwhile (on the benchmark VM it went from 0 to 40 % within minutes,
    and a round with much of it is slower whatever runs); and, given the
    server's pid, how long its main thread waited for a CPU meanwhile, in
    us per message (None without a pid or schedstat). bench/results.md has
    why both matter."""
    t0, c0, r0 = time.monotonic(), cpu_ticks(), run_delay(pid)
    subprocess.run(["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(n), "-l", str(size),
                    "-f", "bench@example.org", "-t", "sink@example.net",
                    "127.0.0.1:%d" % port], check=True, stdin=subprocess.DEVNULL)
    wall, end = time.monotonic() - t0, time.time()
    d = [b - a for a, b in zip(c0, cpu_ticks())]
    r1 = run_delay(pid)
    wait = None if r0 is None or r1 is None else (r1 - r0) / n * 1e6
    return Run(wall, end, 100.0 * d[7] / max(1, sum(d)), wait)


def status_field(pid, name):
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_delay(pid):
    """How long a process's main thread (serve's event loop; smtp-sink's
    one thread) has been runnable but waiting for a CPU, in seconds: the
    run queue's wait in /proc/PID/task/PID/schedstat. None without a pid,
    or where the kernel does not keep it."""
    if not pid:
        return None
    try:
        with open("/proc/%d/task/%d/schedstat" % (pid, pid)) as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def wait_port(log, proc, timeout=20):
    """serve's port, read from its log once it says it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("serve exited: " + open(log).read())
        m = re.search(r"listening at 127\.0\.0\.1:(\d+)", open(log).read())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    sys.exit("serve did not start")
