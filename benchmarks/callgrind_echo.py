"""Instructions per request of an echo server, counted by callgrind.

    python benchmarks/callgrind_echo.py LOOP KIND tcp|unix SIZE CONNS [SECONDS]

Starts ``echo_server.py LOOP KIND`` under ``valgrind --tool=callgrind``,
warms it up with the compiled client, zeroes the counters, drives it again
for SECONDS (default 5) and prints the server's instructions per request
(all of the process: the loop, the protocol, libuv, the interpreter).
Unlike CPU time this count does not move with the machine's load, so it is
the figure to compare before and after a change of the hot path; run it
with the same interpreter and arguments on both sides.  The dump is kept as
``callgrind.out.<pid>`` in the working directory when --keep is given, for
``callgrind_annotate``.

The server imports uvffi as this interpreter would: from PYTHONPATH (its
entries made absolute, so ``PYTHONPATH=src`` is the tree) or else the copy
installed in the environment.  Compare builds of one kind: a developer
build (``tools/devbuild.sh``, RelWithDebInfo) counts about 3% more than the
Release build that pip installs (echo ``Protocol`` 1 KiB x20, same code:
5,830 against 5,660 instructions per request).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench_run  # noqa: E402 - the client build and free_port


def _total_ir(dump_dir, pid):
    total = 0
    for path in glob.glob(os.path.join(dump_dir, "callgrind.out.%d*" % pid)):
        with open(path) as f:
            for line in f:
                m = re.match(r"(?:summary|totals):\s*(\d+)", line)
                if m:
                    total += int(m.group(1))
                    break
    return total


def main(argv):
    keep = "--keep" in argv
    argv = [a for a in argv if a != "--keep"]
    if len(argv) < 5:
        raise SystemExit(__doc__)
    loop, kind, transport, size, conns = argv[:5]
    seconds = argv[5] if len(argv) > 5 else "5"
    client = bench_run.build_client()
    tmp = tempfile.mkdtemp(prefix="uvffi-cg-")
    if transport == "unix":
        address = "unix:" + os.path.join(tmp, "echo.sock")
        target = ["127.0.0.1", address]
    else:
        port = bench_run.free_port()
        address = "tcp:%d" % port
        target = ["127.0.0.1", str(port)]
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s/callgrind.out.%%p" % tmp,
           sys.executable, os.path.join(HERE, "echo_server.py"), loop, kind, address]
    # The server runs in benchmarks/: a relative PYTHONPATH (``src``) would
    # point elsewhere there, and an installed uvffi would be measured
    # instead of the tree, so its entries are made absolute here.
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, cwd=HERE, env=env)
    try:
        if server.stdout.readline().strip() != "READY":
            raise SystemExit("server did not start")
        subprocess.run([client] + target + [conns, size, "2"], check=True,
                       capture_output=True)
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                       capture_output=True)
        out = subprocess.run([client] + target + [conns, size, seconds], check=True,
                             capture_output=True, text=True).stdout
        requests = int(dict(kv.split("=") for kv in out.split())["total"])
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                       capture_output=True)
        time.sleep(0.5)
        ir = _total_ir(tmp, server.pid)
        print("%s %s %s %sB x%s: %d requests, %.0f instructions/request"
              % (loop, kind, transport, size, conns, requests, ir / max(requests, 1)))
        if keep:
            for path in glob.glob(os.path.join(tmp, "callgrind.out.*")):
                shutil.copy(path, os.getcwd())
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
