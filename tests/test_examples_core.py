"""The documentation examples of the loop core run on uvffi and print what
the asyncio documentation says they print."""
import os
import re
import subprocess
import sys

from _childenv import child_env

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "examples")


def run_example(name, *args):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                          env=child_env(), capture_output=True, text=True, timeout=120)


def test_hello_world_with_call_soon_prints_and_stops():
    proc = run_example("hello_world.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello World\n"


def test_display_date_with_call_later_prints_once_a_second_then_stops():
    proc = run_example("display_date.py", "2.5")
    assert proc.returncode == 0, proc.stderr
    stamps = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+$", proc.stdout, re.M)
    assert len(stamps) == 3, proc.stdout


def test_tcp_echo_example_makes_its_round_trips():
    proc = run_example("echo_client.py")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^10000 round trips of 1024 bytes", proc.stdout), proc.stdout
