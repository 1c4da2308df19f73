"""Run uvffi's benchmarks side by side with asyncio's loop (and uvloop where
it is installed), in one run, and write a Markdown report with ratios and a
chart.

    python benchmarks/run.py [--python PY ...] [--full] [--repeat N]
                             [--duration S] [--only echo,micro,bulk,http]
                             [--report benchmarks/RESULTS.md]

Each interpreter given with --python is benchmarked with the loops it can
import.  Every figure is the median of --repeat runs, the loops interleaved
within each repeat so that a busy machine hurts them alike.

Echo benchmarks start ``echo_server.py`` and drive it with the compiled
libuv client (benchmarks/client, built with CMake on first use); besides
requests per second they report the server's CPU time per request, read
from /proc/PID/stat, which is what the loop itself costs.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
CLIENT_BUILD = os.path.join(TOP, "build", "bench-client")

ECHO_FULL = [(kind, tr, size, conns)
             for kind in ("protocol", "buffered", "streams", "sock")
             for tr in ("tcp", "unix")
             for size in (1024, 10 * 1024, 100 * 1024)
             for conns in (1, 20)]
ECHO_QUICK = [
    ("protocol", "tcp", 1024, 20), ("protocol", "tcp", 1024, 1),
    ("protocol", "tcp", 10 * 1024, 20), ("protocol", "tcp", 100 * 1024, 20),
    ("protocol", "unix", 1024, 20), ("buffered", "tcp", 1024, 20),
    ("streams", "tcp", 1024, 20), ("sock", "tcp", 1024, 20),
]
# The pure-C libuv echo server (benchmarks/client/echo_server.c) as an extra
# column of the echo rows (--c-floor): what the kernel alone costs per
# request under the same client, the floor for any event loop.
C_FLOOR = "C libuv"
FLOOR_RUNS = {}  # (transport, size, conns) -> its runs, shared by every row
FLOOR_USED = {}

BULK = ["write_drain_tcp_5MB", "write_drain_tcp_64MB", "write_drain_unix_5MB",
        "write_drain_unix_64MB", "write_drain_pipe_5MB", "write_drain_pipe_64MB",
        "streams_readexactly_1MB", "streams_readuntil_1MB", "loop_sendfile_64MB",
        "sock_sendfile_64MB", "communicate_5MB"]

MICRO = ["call_soon_chained", "call_soon_batch", "timers_half_cancelled",
         "sleep0_tasks", "future_pingpong", "sock_pingpong", "udp_pingpong", "getaddrinfo", "subprocess_spawn",
         # guest mode (uvffi only): the chain under a host's uv_run, set
         # against sleep0_chain under run_until_complete; a host's iteration
         # rate with and without an idle guest
         "sleep0_chain", "sleep0_chain_guest", "host_iterations_no_guest",
         "host_iterations_idle_guest"]


# -- helpers ---------------------------------------------------------------------

def build_client():
    exe = os.path.join(CLIENT_BUILD, "echo_client")
    if not os.path.exists(exe):
        subprocess.run(["cmake", "-S", os.path.join(HERE, "client"), "-B", CLIENT_BUILD,
                        "-DCMAKE_BUILD_TYPE=Release"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", CLIENT_BUILD], check=True, stdout=subprocess.DEVNULL)
    return exe


def loops_of(python):
    code = "import sys; sys.path.insert(0, %r); import loops; print(','.join(loops.available()))" % HERE
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().split(",")


def describe(python):
    code = ("import sys, platform; print(platform.python_implementation(), "
            "sys.version.split()[0])")
    return subprocess.run([python, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def notes_of(python):
    """Lines for the report about how the interpreter runs here: on PyPy
    the GC nursery size, which PyPy derives from the cache size the
    machine reports (a VM may report a huge L3) unless PYPY_GC_NURSERY
    says otherwise, and which changes what every allocation costs."""
    code = ("import gc, sys\n"
            "print(getattr(gc.get_stats(), 'nursery_size', '') "
            "if sys.implementation.name == 'pypy' else '')")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    size = out.stdout.strip()
    if out.returncode or not size:
        return []
    return ["- PyPy's GC nursery on this machine: %s (%s).  Each new object "
            "lands in memory that large, so rows that allocate much (a new "
            "`bytes` per read, for `Protocol` at 100 KiB) cost more on both "
            "loops than with a cache-sized nursery." % (
                size, "PYPY_GC_NURSERY" if os.environ.get("PYPY_GC_NURSERY")
                else "PyPy's choice, from the cache size the machine reports"), ""]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


# -- one measurement ------------------------------------------------------------------

def run_echo(python, loop, kind, transport, size, conns, duration, client):
    tmp = tempfile.mkdtemp(prefix="uvffi-bench-")
    if transport == "unix":
        address = "unix:" + os.path.join(tmp, "echo.sock")
        target = ("127.0.0.1", address)
    else:
        port = free_port()
        address = "tcp:%d" % port
        target = ("127.0.0.1", str(port))
    if loop == C_FLOOR:
        # the reference C server echoes whatever the kind: it answers the
        # same client with no Python at all
        cmd = [os.path.join(CLIENT_BUILD, "echo_server_c"),
               address if transport == "unix" else address[4:]]
    else:
        cmd = [python, os.path.join(HERE, "echo_server.py"), loop, kind, address]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=HERE)
    try:
        line = server.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError("server did not start: %s %s" % (line, server.stderr.read()))
        cpu0 = proc_cpu_seconds(server.pid)
        out = subprocess.run([client, target[0], target[1], str(conns), str(size), str(duration)],
                             capture_output=True, text=True, timeout=duration + 60)
        cpu1 = proc_cpu_seconds(server.pid)
        if out.returncode != 0:
            raise RuntimeError("client failed: " + out.stderr)
        fields = dict(kv.split("=") for kv in out.stdout.split())
        total = int(fields["total"])
        return {"rps": float(fields["rps"]),
                "us_per_req": (cpu1 - cpu0) / total * 1e6 if total else None}
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def run_micro(python, loop, name):
    out = subprocess.run([python, os.path.join(HERE, "micro.py"), loop, name],
                         capture_output=True, text=True, cwd=HERE, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    res = json.loads(out.stdout)
    # ops per second of wall time; CPU time kept for the steadier ratio
    return {"ops": res["ops"] / res["seconds"], "cpu_ops": res["ops"] / max(res["cpu"], 1e-9)}


def run_bulk(python, loop, name):
    out = subprocess.run([python, os.path.join(HERE, "bulk.py"), loop, name],
                         capture_output=True, text=True, cwd=HERE, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    res = json.loads(out.stdout)
    return {"mbps": res["bytes"] / res["seconds"] / 1e6,
            "cpu_mbps": res["bytes"] / max(res["cpu"], 1e-9) / 1e6}


def run_http(python, loop, duration):
    if not shutil.which("wrk"):
        raise RuntimeError("wrk not installed (apt-get install wrk)")
    port = free_port()
    server = subprocess.Popen([python, os.path.join(HERE, "http_server.py"), loop, str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE)
    try:
        line = server.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError("http server did not start: %s" % server.stderr.read().strip()[-300:])
        out = subprocess.run(["wrk", "-t1", "-c50", "-d%ds" % max(1, int(duration)),
                              "http://127.0.0.1:%d/" % port],
                             capture_output=True, text=True, timeout=duration + 60)
        m = re.search(r"Requests/sec:\s*([\d.]+)", out.stdout)
        if not m:
            raise RuntimeError("wrk: " + out.stdout + out.stderr)
        return {"rps": float(m.group(1))}
    finally:
        server.kill()
        server.wait()


# -- the run ------------------------------------------------------------------------------

def median_of(results, key):
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


def parse_echo(text):
    runs = []
    for item in text.split(","):
        kind, tr, size, conns = item.split(":")
        runs.append((kind, tr, int(size), int(conns)))
    return runs


def bench_all(python, args, client):
    loops = loops_of(python)
    if args.loops:
        loops = [l for l in loops if l in args.loops.split(",")]
    rows = []  # (group, name, metric, unit, {loop: value}, higher_is_better)
    floor = [C_FLOOR] if args.c_floor and "echo" in args.only else []
    columns = list(loops) + floor

    def measure(group, name, fn, metrics, extra=()):
        per_loop = {loop: [] for loop in columns}
        errors = {}
        for _ in range(args.repeat):
            for loop in list(loops) + list(extra):
                try:
                    per_loop[loop].append(fn(loop))
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    if "uvffi only" not in str(exc):  # else "–", not an error
                        errors[loop] = str(exc)[:120]
        for metric, unit, better in metrics:
            values = {loop: median_of(per_loop[loop], metric) for loop in columns}
            rows.append((group, name, metric, unit, values, better, dict(errors)))
        sys.stderr.write("  %-40s %s\n" % (name, {k: v for k, v in values.items()}))

    groups = args.only
    if "echo" in groups:
        for kind, tr, size, conns in (args.echo or (ECHO_FULL if args.full else ECHO_QUICK)):
            name = "echo %s %s %dKiB x%d" % (kind, tr, size // 1024, conns)

            def one(loop, kind=kind, tr=tr, size=size, conns=conns):
                if loop != C_FLOOR:
                    return run_echo(python, loop, kind, tr, size, conns, args.duration, client)
                # the C server echoes the same whatever the kind and the
                # Python: measured --repeat times per transport, size and
                # connections, and those runs reused by the other rows.
                # Except one connection's rows: they are latency-bound, and
                # on a shared VM that drifts 3x over minutes (every loop's
                # x1 row alike), so their ceiling is measured with the row.
                key = (tr, size, conns) if conns > 1 else (python, name)
                runs = FLOOR_RUNS.setdefault(key, [])
                used = FLOOR_USED[key] = FLOOR_USED.get(key, 0) + 1
                if len(runs) < min(used, args.repeat):
                    runs.append(run_echo(python, loop, kind, tr, size, conns,
                                         args.duration, client))
                return runs[(used - 1) % len(runs)]

            measure("echo", name, one,
                    [("rps", "req/s", True), ("us_per_req", "server µs CPU/req", False)],
                    extra=floor)
    if "micro" in groups:
        for name in MICRO:
            measure("micro", name, lambda loop: run_micro(python, loop, name),
                    [("cpu_ops", "ops/s (CPU)", True), ("ops", "ops/s (wall)", True)])
    if "bulk" in groups:
        for name in BULK:
            measure("bulk", name, lambda loop: run_bulk(python, loop, name),
                    [("mbps", "MB/s (wall)", True), ("cpu_mbps", "MB/s (CPU)", True)])
    if "http" in groups:
        measure("http", "http httptools wrk -c50", lambda loop: run_http(python, loop, args.duration),
                [("rps", "req/s", True)])
    return columns, rows


def fmt(v):
    if v is None:
        return "–"
    if v >= 100:
        return "{:,.0f}".format(v)
    return "{:.2f}".format(v)


def ratio(a, b, better):
    if a is None or b is None or a == 0 or b == 0:
        return "–"
    return "{:.2f}×".format(a / b if better else b / a)


def machine_info():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1) if m else ""
    except OSError:
        pass
    return "%s, %d cores, %s" % (cpu or platform.processor(), os.cpu_count(), platform.platform())


def _shown_arg(arg):
    """A command-line argument as the report shows it: paths in the
    checkout relative to it, other paths (an interpreter's) as given."""
    if arg.startswith(TOP + os.sep):
        return os.path.relpath(arg, TOP)
    return arg


def write_report(path, sections, args):
    lines = ["# uvffi benchmarks", "",
             "Generated by `python benchmarks/run.py %s` on %s." % (
                 " ".join(_shown_arg(a) for a in sys.argv[1:]),
                 datetime.date.today().isoformat()),
             "", "- Machine: " + machine_info(),
             "- Each figure: median of %d run(s), loops interleaved; echo runs last %gs "
             "after a warm-up, driven by the compiled libuv client in benchmarks/client." % (
                 args.repeat, args.duration),
             "- Ratios are uvffi against the other loop: above 1× means uvffi is better "
             "(more requests or ops per second, or less server CPU per request).",
             "- *%s* is the pure-C libuv echo server (benchmarks/client/echo_server.c) "
             "under the same client: what the kernel alone costs per request, the floor "
             "for any event loop on this machine.  *ceiling vs asyncio* is that server "
             "against asyncio: the best ratio any loop could reach on the row.  It is "
             "measured with each one-connection (x1) row, whose latency drifts over "
             "minutes on a shared machine, and once per transport, size and connections "
             "for the others." % C_FLOOR,
             "- *ops/s (CPU)* divides by the benchmark process's CPU time: the steadier "
             "figure on a shared machine (it leaves out the work of child processes and "
             "of the resolver's threads that ran while the process slept).", ""]
    notes = getattr(args, "notes", {})
    for title, loops, rows in sections:
        lines += ["## " + title, ""] + notes.get(title, [])
        head = "| benchmark | metric | " + " | ".join(loops)
        if "uvffi" in loops:
            head += " | uvffi vs asyncio"
            if "uvloop" in loops:
                head += " | uvffi vs uvloop"
        if C_FLOOR in loops:
            head += " | ceiling vs asyncio"
        lines += [head + " |", "|" + "---|" * (head.count("|"))]
        for group, name, metric, unit, values, better, errors in rows:
            cells = [fmt(values[l]) if l not in errors or values[l] is not None else "error"
                     for l in loops]
            line = "| %s | %s | %s" % (name, unit, " | ".join(cells))
            if "uvffi" in loops:
                line += " | " + ratio(values["uvffi"], values.get("asyncio"), better)
                if "uvloop" in loops:
                    line += " | " + ratio(values["uvffi"], values.get("uvloop"), better)
            if C_FLOOR in loops:
                line += " | " + ratio(values[C_FLOOR], values.get("asyncio"), better)
            lines.append(line + " |")
            for l, e in errors.items():
                lines.append("|  | *%s error: %s* |%s" % (l, e.replace("|", "/"), " |" * len(loops)))
        lines.append("")
    chart = os.path.splitext(path)[0] + ".png"
    if draw_chart(chart, sections):
        lines += ["![ratios to asyncio](%s)" % os.path.basename(chart), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def draw_chart(path, sections):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("matplotlib not installed: no chart\n")
        return False
    fig_rows = []
    for title, loops, rows in sections:
        for group, name, metric, unit, values, better, errors in rows:
            if metric not in ("rps", "cpu_ops", "mbps"):
                continue
            base = values.get("asyncio")
            if not base:
                continue
            fig_rows.append(("%s: %s" % (title.split(" (")[0], name),
                             {l: (values[l] / base if values[l] else 0) for l in loops if l != "asyncio"}))
    if not fig_rows:
        return False
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(fig_rows) + 1.5))
    names = [r[0] for r in fig_rows]
    # the C floor is a mark per row, not a bar: its ratios dwarf the loops'
    series = sorted({l for _, v in fig_rows for l in v} - {C_FLOOR})
    height = 0.8 / max(1, len(series))
    # A log scale, bars from 1.0 (asyncio): ratios run from ~0.5x to 200x
    # (PyPy's bulk writes), which a linear axis squeezes into a few rows.
    ax.set_xscale("log")
    for i, loop in enumerate(series):
        ratios = [v.get(loop) or 1.0 for _, v in fig_rows]
        ax.barh([y + i * height for y in range(len(names))],
                [r - 1.0 for r in ratios], left=1.0, height=height, label=loop)
    shown = [v.get(l) for _, v in fig_rows for l in series if v.get(l)]
    top = max(shown + [1.0]) * 1.3
    bottom = min(shown + [1.0]) / 1.3
    ceilings = [(y + height * (len(series) - 1) / 2, v[C_FLOOR])
                for y, (_, v) in enumerate(fig_rows) if v.get(C_FLOOR)]
    if ceilings:
        ax.scatter([min(c, top) for _, c in ceilings], [y for y, _ in ceilings],
                   marker="|", s=60, color="black",
                   label="C libuv server (ceiling; at the edge when beyond)")
    ax.set_xlim(bottom, top)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks([y + height * (len(series) - 1) / 2 for y in range(len(names))])
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("throughput relative to asyncio (1.0 = asyncio; log scale)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def sections_from_report(path):
    """The (title, loops, rows) of a report's tables, enough to draw its
    chart again (--replot)."""
    sections = []
    units = {"req/s": "rps", "ops/s (CPU)": "cpu_ops", "MB/s (wall)": "mbps"}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("## "):
                sections.append((line[3:], None, []))
            elif line.startswith("| benchmark |") and sections:
                cells = [c.strip() for c in line.strip("|").split("|")]
                loops = [c for c in cells[2:] if " vs " not in c]
                sections[-1] = (sections[-1][0], loops, sections[-1][2])
            elif line.startswith("| ") and sections and sections[-1][1]:
                cells = [c.strip() for c in line.strip("|").split("|")]
                title, loops, rows = sections[-1]
                if len(cells) < 2 + len(loops) or cells[1] not in units:
                    continue
                values = {}
                for loop, cell in zip(loops, cells[2:]):
                    try:
                        values[loop] = float(cell.replace(",", ""))
                    except ValueError:
                        values[loop] = None
                rows.append(("", cells[0], units[cells[1]], cells[1], values, True, {}))
    return [s for s in sections if s[1]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", action="append", help="interpreter(s) to benchmark")
    ap.add_argument("--full", action="store_true", help="the whole echo matrix")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per echo/http run")
    ap.add_argument("--only", default="echo,micro,bulk,http")
    ap.add_argument("--echo", type=parse_echo, default=None,
                    help="echo runs instead of the default set: KIND:tcp|unix:SIZE:CONNS,... "
                         "(e.g. buffered:tcp:102400:20)")
    ap.add_argument("--c-floor", action="store_true",
                    help="also run the pure-C libuv echo server on every echo row")
    ap.add_argument("--loops", default=None,
                    help="comma-separated loops to run (default: all that import)")
    ap.add_argument("--report", default=os.path.join(HERE, "out", "report.md"))
    ap.add_argument("--replot", metavar="REPORT",
                    help="only draw REPORT's chart again from its tables")
    args = ap.parse_args()
    if args.replot:
        draw_chart(os.path.splitext(args.replot)[0] + ".png", sections_from_report(args.replot))
        return
    args.only = set(args.only.split(","))
    client = build_client() if "echo" in args.only else None
    sections = []
    args.notes = {}
    for python in args.python or [sys.executable]:
        title = describe(python)
        args.notes[title] = notes_of(python)
        sys.stderr.write("== %s (%s)\n" % (title, python))
        loops, rows = bench_all(python, args, client)
        sections.append((title, loops, rows))
    os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
    print(write_report(args.report, sections, args))


if __name__ == "__main__":
    main()
