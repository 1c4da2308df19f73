"""Timer ordering and bookkeeping, on asyncio's SelectorEventLoop and on
uvffi (whose timers wait in millisecond buckets, see timerqueue.py, rather
than in asyncio's heap): deadline order, equal deadlines, cancel then run,
the cancelled-timer accounting asyncio's cleanup heuristic reads, and
deadlines that are huge, infinite or NaN."""
import asyncio
import math
import random

import pytest

import uvffi


def _run_until_idle(loop, timeout=2.0):
    """Run until no timer earlier than *timeout* seconds from now is left."""
    loop.call_later(timeout, loop.stop)
    loop.run_forever()


def _one_iteration(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_timers_fire_in_deadline_order_many(any_loop):
    loop = any_loop
    rnd = random.Random(11)
    now = loop.time()
    # deadlines on a 5 ms grid: many equal ones, some in the past, spread
    # over several buckets and within them
    whens = [now + rnd.randrange(-4, 16) * 0.005 for _ in range(3000)]
    fired = []
    handles = [loop.call_at(w, fired.append, (w, i)) for i, w in enumerate(whens)]
    cancelled = set(rnd.sample(range(len(handles)), 1000))
    for i in cancelled:
        handles[i].cancel()
    loop.call_at(now + 0.2, loop.stop)
    loop.run_forever()
    expected = sorted((w, i) for i, w in enumerate(whens) if i not in cancelled)
    if loop.kind == "uvffi":
        assert fired == expected  # by deadline, then FIFO
    else:  # asyncio's heap does not keep FIFO order among equal deadlines
        assert sorted(fired) == expected
        assert [w for w, _ in fired] == [w for w, _ in expected]
    assert len(loop._scheduled) == 0


def test_equal_deadlines_keep_scheduling_order(loop):
    when = loop.time() + 0.01
    log = []
    for i in range(500):
        loop.call_at(when, log.append, i)
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert log == list(range(500))


def test_timers_added_while_timers_run_keep_order(any_loop):
    # Callbacks add timers due now, in the past and a little later: they go
    # into the millisecond list being consumed, or before it.
    loop = any_loop
    iteration = [0]
    run_once = loop._run_once

    def counting_run_once():
        iteration[0] += 1
        run_once()
    loop._run_once = counting_run_once
    scheduled = {}  # id -> (when, iteration it was scheduled in)
    fired = []      # (id, iteration it ran in)
    ids = iter(range(10 ** 6))
    base = loop.time()

    def add(when, depth):
        i = next(ids)
        scheduled[i] = (when, iteration[0])
        loop.call_at(when, fire, i, depth)

    def fire(i, depth):
        fired.append((i, iteration[0]))
        if depth:
            add(loop.time(), depth - 1)
            add(base - 1.0, depth - 1)
            add(loop.time() + 0.0004, depth - 1)

    for k in range(5):
        add(base + k * 0.0002, 2)
    _run_until_idle(loop, 0.1)
    assert sorted(i for i, _ in fired) == sorted(scheduled)  # each ran once
    # In every iteration, the timers that existed when it began and ran
    # in it ran by deadline, and none that was due earlier was left behind.
    for p, (x, kx) in enumerate(fired):
        for y, ky in fired[p + 1:]:
            if scheduled[y][1] < kx and ky >= kx:
                assert scheduled[y][0] >= scheduled[x][0], (x, y)


def test_earlier_timer_added_to_the_earliest_millisecond(any_loop):
    # Both deadlines fall in one millisecond, the earliest queued: uvffi has
    # sorted that list already when the earlier timer joins it.
    loop = any_loop
    log = []
    base = (int(loop.time() * 1000) + 30) / 1000
    loop.call_at(base + 0.0008, log.append, "late")
    loop.call_at(base + 0.0008, log.append, "late-2")
    _one_iteration(loop)
    loop.call_at(base + 0.0001, log.append, "early")
    loop.call_at(base + 0.0008, log.append, "late-3")
    _run_until_idle(loop, 0.1)
    if loop.kind == "uvffi":
        assert log == ["early", "late", "late-2", "late-3"]
    else:
        assert log[0] == "early" and sorted(log[1:]) == ["late", "late-2", "late-3"]


def test_cancel_then_run_and_cancelled_count(any_loop):
    loop = any_loop
    log = []
    handles = [loop.call_later(10 + i * 0.001, log.append, i) for i in range(200)]
    # cancel the 30 earliest: the next iteration drops them from the front
    for h in handles[:30]:
        h.cancel()
    assert loop._timer_cancelled_count == 30
    assert len(loop._scheduled) == 200
    _one_iteration(loop)
    assert loop._timer_cancelled_count == 0
    assert len(loop._scheduled) == 170
    assert [h._scheduled for h in handles[:31]] == [False] * 30 + [True]
    # cancelling twice counts once; over half of >100 cancelled -> cleanup
    for h in handles[30:150] + handles[30:40]:
        h.cancel()
    assert loop._timer_cancelled_count == 120
    _one_iteration(loop)
    assert loop._timer_cancelled_count == 0
    assert len(loop._scheduled) == 50
    assert not any(h._scheduled for h in handles[:150])
    assert all(h._scheduled for h in handles[150:])
    assert log == []


def test_cancel_after_timer_is_due_still_skips_it(any_loop):
    loop = any_loop
    log = []
    a = loop.call_later(0, log.append, "a")
    loop.call_later(0, lambda: a.cancel())  # too late: a has run
    b = loop.call_later(0.001, log.append, "b")
    loop.call_soon(b.cancel)
    _run_until_idle(loop, 0.05)
    assert log == ["a"]
    assert loop._timer_cancelled_count == 0


def test_past_and_non_finite_deadlines_order(any_loop):
    loop = any_loop
    log = []
    now = loop.time()
    # every one is due; -1e306 * 1000 overflows a float, -1e300 * 1000 does not
    for when in (now - 1, 1.0, 0, -5.0, -1e300, -1e306, -math.inf, now):
        loop.call_at(when, log.append, when)
    _one_iteration(loop)
    assert log == [-math.inf, -1e306, -1e300, -5.0, 0, 1.0, now - 1, now]


def test_far_deadlines_never_fire_and_do_not_block(any_loop):
    loop = any_loop
    log = []
    for when in (math.inf, 1e300, 1e306, 10 ** 400):
        loop.call_at(when, log.append, when)
    loop.call_later(1e300, log.append, "later")
    loop.call_later(math.inf, log.append, "later inf")
    loop.call_later(0.01, log.append, "soon")
    t0 = loop.time()
    _run_until_idle(loop, 0.05)
    assert log == ["soon"]
    assert loop.time() - t0 < 1.0
    assert len(loop._scheduled) == 6


def test_nan_deadline_fires_at_once_without_spinning(any_loop):
    loop = any_loop
    log = []
    loop.call_later(math.nan, log.append, "nan")
    _one_iteration(loop)
    assert log == ["nan"]
    assert len(loop._scheduled) == 0
    # and the loop still orders ordinary timers afterwards
    loop.call_later(0.002, log.append, 2)
    loop.call_later(0.001, log.append, 1)
    _run_until_idle(loop, 0.05)
    assert log == ["nan", 1, 2]


def _odd_deadline_scenario(loop):
    """Odd deadlines mixed with ordinary ones; returns what was observed."""
    seen = []
    now = loop.time()
    steps = [
        lambda: loop.call_at(now + 30, seen.append, "far"),
        lambda: loop.call_at(math.nan, seen.append, "nan-1"),
        lambda: loop.call_later(0, seen.append, "zero"),
        lambda: loop.call_at(now - 1, seen.append, "past"),
        lambda: loop.call_at(math.nan, seen.append, "nan-2"),
        lambda: loop.call_at("1", seen.append, "str"),
        lambda: loop.call_later(math.inf, seen.append, "inf"),
    ]
    for step in steps:
        try:
            step()
            seen.append("ok")
        except Exception as exc:  # noqa: BLE001 - compared with asyncio's
            seen.append(type(exc).__name__)
        try:
            _one_iteration(loop)
        except Exception as exc:  # noqa: BLE001
            seen.append("run:" + type(exc).__name__)
    seen.append(len(loop._scheduled))
    loop._scheduled.clear()
    return seen


def test_odd_deadlines_behave_as_on_asyncio():
    # NaN and unorderable deadlines leave the buckets for asyncio's own
    # heap, so they fire (or raise) when and where they do on asyncio.
    ref = asyncio.SelectorEventLoop()
    ours = uvffi.new_event_loop()
    try:
        assert _odd_deadline_scenario(ours) == _odd_deadline_scenario(ref)
        # back to buckets once that heap has drained
        log = []
        for i in range(3):
            ours.call_later(0.001 * (3 - i), log.append, i)
        _run_until_idle(ours, 0.05)
        assert log == [2, 1, 0]
        assert ours._scheduled.heap is None
    finally:
        ref.close()
        ours.close()


@pytest.mark.parametrize("debug", [False, True])
def test_timer_handle_when_and_repr_unchanged(any_loop, debug):
    loop = any_loop
    loop.set_debug(debug)
    when = loop.time() + 5
    h = loop.call_at(when, print)
    assert h.when() == when
    assert isinstance(h, asyncio.TimerHandle)
    assert "when=" in repr(h)
    h.cancel()
    _one_iteration(loop)
    assert len(loop._scheduled) == 0
    loop.set_debug(False)


def test_close_clears_timers(any_loop):
    loop = any_loop
    for i in range(10):
        loop.call_later(5 + i, print)
    loop.close()
    assert len(loop._scheduled) == 0
