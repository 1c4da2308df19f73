"""A new loop leaves glibc's malloc where asyncio's loop leaves it.

asyncio's first ``sock.recv(256 KiB)`` makes glibc free an mmap'd block,
and glibc then raises its mmap and heap-trim thresholds; uvffi's reads
allocate no such block, and without the same raise a server that
allocates and frees ~100 KiB objects in turn faulted fresh pages on every
message (loop.py: ``_warm_up_glibc_heap``, the shim's ``uvffi_malloc_warm_up``).  What is observable from
outside: a 250 KiB block comes from the heap, not from mmap."""
import subprocess
import sys

import pytest

from _childenv import child_env

_CHILD = r"""
import ctypes, sys
import uvffi
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
uvffi.new_event_loop().close()
before = libc.mallinfo2().hblks
block = bytearray(250 * 1024)
print(libc.mallinfo2().hblks - before)  # 1: the block was mmap'd
"""


def _glibc_with_mallinfo2():
    import ctypes
    import os
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
    except (AttributeError, ValueError, OSError):
        return False
    return hasattr(ctypes.CDLL(None), "mallinfo2")


def _mmapped_blocks_for_250_kib():
    out = subprocess.run([sys.executable, "-c", _CHILD], env=child_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


@pytest.mark.skipif(sys.implementation.name != "cpython" or not _glibc_with_mallinfo2(),
                    reason="glibc's malloc under CPython (glibc 2.33+ for mallinfo2)")
def test_a_new_loop_raises_glibc_mmap_threshold_as_asyncios_reads_do():
    # (a fresh interpreter: the test process's own loops, asyncio's
    # included, have long raised it; glibc's first threshold is 128 KiB)
    assert _mmapped_blocks_for_250_kib() == 0
