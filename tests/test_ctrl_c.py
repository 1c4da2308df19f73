"""SIGINT while the loop sleeps inside libuv raises KeyboardInterrupt
promptly (checked in a child process, which the test interrupts)."""
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SCRIPTS = {
    "uvffi.run": """
import asyncio, functools, uvffi
async def main():
    print('ready', flush=True)
    await asyncio.sleep(60)
uvffi.run(main())
""",
    "run_forever": """
import functools, uvffi
loop = uvffi.new_event_loop()
loop.call_soon(functools.partial(print, 'ready', flush=True))
try:
    loop.run_forever()
finally:
    loop.close()
""",
    "run_until_complete with a far timer": """
import asyncio, functools, uvffi
loop = uvffi.new_event_loop()
loop.call_soon(functools.partial(print, 'ready', flush=True))
try:
    loop.run_until_complete(asyncio.sleep(3600))
finally:
    loop.close()
""",
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_sigint_while_sleeping_in_libuv_raises_keyboard_interrupt(name):
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPTS[name]], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it fall asleep in uv_run
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in err, err
    assert proc.returncode != 0
    assert elapsed < 10
