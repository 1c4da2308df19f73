"""Run child processes on uvffi's loop and read what they print.

    PYTHONPATH=src python examples/subprocess_demo.py

1. a child whose stdout and stderr are read line by line as they come;
2. a child fed on stdin through communicate();
3. a shell pipeline;
4. a child that would run forever, killed after a timeout.
"""
import asyncio
import sys

import uvffi

PY = sys.executable
PIPE = asyncio.subprocess.PIPE


async def stream_lines(name, reader):
    async for line in reader:
        print("  [%s] %s" % (name, line.decode().rstrip()))


async def main():
    print("1. streaming output of a child")
    proc = await asyncio.create_subprocess_exec(
        PY, "-c",
        "import sys, time\n"
        "for i in range(3):\n"
        "    print('tick', i, flush=True)\n"
        "    print('warn', i, file=sys.stderr, flush=True)\n"
        "    time.sleep(0.05)\n",
        stdout=PIPE, stderr=PIPE)
    await asyncio.gather(stream_lines("out", proc.stdout),
                         stream_lines("err", proc.stderr))
    print("  exit status:", await proc.wait())

    print("2. communicate() with input")
    proc = await asyncio.create_subprocess_exec(
        PY, "-c", "import sys; print(sys.stdin.read().upper())",
        stdin=PIPE, stdout=PIPE)
    out, _ = await proc.communicate(b"shout this")
    print("  got:", out.decode().strip(), "| exit status:", proc.returncode)

    print("3. a shell pipeline")
    proc = await asyncio.create_subprocess_shell(
        "printf 'b\\na\\nc\\n' | sort", stdout=PIPE)
    out, _ = await proc.communicate()
    print("  sorted:", out.decode().split())

    print("4. a child that hangs, killed after a timeout")
    proc = await asyncio.create_subprocess_exec(
        PY, "-c", "import time; time.sleep(3600)")
    try:
        await asyncio.wait_for(proc.wait(), timeout=0.2)
    except asyncio.TimeoutError:
        proc.kill()
        print("  killed: exit status", await proc.wait(), "(minus SIGKILL)")


if __name__ == "__main__":
    uvffi.run(main())
