"""Which event loops a benchmark can run on, by name."""
import asyncio


def available():
    names = ["asyncio"]
    try:
        import uvloop  # noqa: F401 - only whether it imports
        names.append("uvloop")
    except ImportError:
        pass
    try:
        import uvffi  # noqa: F401 - only whether it imports
        names.append("uvffi")
    except ImportError:
        pass
    return names


def new_loop(name):
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    if name == "uvffi":
        import uvffi
        return uvffi.new_event_loop()
    raise ValueError("unknown loop %r" % name)
