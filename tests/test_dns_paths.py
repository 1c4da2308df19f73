"""The paths of loop.getaddrinfo pinned against socket.getaddrinfo: the fast
path for names (no AI_NUMERICHOST probe), the probe for everything else,
the answers converted in C (records) and entry by entry, errors, and the
lifetime of the per-loop lookup queue (cancel, close, guest mode).

Only names that never need the network: loopback, literals, and the
reserved ``.invalid`` domain."""
import asyncio
import socket
import struct
import sys

import pytest

import uvffi
from uvffi.facets import dns as uvdns
from uvffi.facets import dnsargs
from uvffi._uv import ffi, lib
from _uvhost import Host, close_host

HAS_IPV6 = socket.has_ipv6
try:
    socket.getaddrinfo("::1", 0)
except OSError:
    HAS_IPV6 = False


def outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        return type(exc), exc.args


def loop_outcome(loop, *args, **kwargs):
    async def bounded():
        return await asyncio.wait_for(loop.getaddrinfo(*args, **kwargs), 30)
    try:
        return loop.run_until_complete(bounded())
    except Exception as exc:
        return type(exc), exc.args


def spy_probe(monkeypatch):
    probed = []
    orig = dnsargs.numeric_probe

    def spy(*args):
        probed.append(args)
        return orig(*args)

    monkeypatch.setattr(uvdns, "numeric_probe", spy)
    return probed


class Str(str):
    pass


class Int(int):
    pass


# -- which calls skip the probe -----------------------------------------------

FAST = [
    (("localhost", 80), {}),
    ((b"localhost", 80), {}),
    (("localhost", "80"), {}),
    (("localhost", "http"), {"type": socket.SOCK_STREAM}),
    (("localhost", b"80"), {}),
    (("localhost", None), {}),
    (("LOCALHOST", 0), {"flags": socket.AI_CANONNAME}),
    (("localhost", 443), {"family": socket.AF_INET, "type": socket.SOCK_STREAM,
                          "proto": socket.IPPROTO_TCP}),
    (("localhost", 80), {"family": 2, "type": 2, "proto": 17}),
    (("localhost", 80), {"flags": socket.AI_PASSIVE | socket.AI_CANONNAME}),
    (("localhost", 80), {"family": socket.AF_INET6,
                         "flags": socket.AI_V4MAPPED | socket.AI_ALL}),
    (("localhost", 80), {"flags": socket.AI_NUMERICHOST}),   # EAI_NONAME
    (("localhost", 80), {"flags": -1}),                      # EAI_BADFLAGS
    (("localhost", 80), {"family": 12345}),                  # EAI_FAMILY
    (("localhost", 80), {"type": 12345}),                    # EAI_SOCKTYPE
    (("localhost", "no-such-service-xyz"), {}),              # EAI_SERVICE
    (("nonexistent.invalid", 80), {}),                       # EAI_NONAME
    (("b\u00fccher.invalid", 80), {}),                       # idna: xn--...
    (("localhost.", 80), {}),
    (("a" * 63 + ".invalid", 80), {}),
]

PROBED = [
    (("127.0.0.1", 80), {}),
    ((b"127.0.0.1", 80), {}),
    (("::1", 80), {}),
    (("fe80::1%1", 80), {}),
    (("127.1", 80), {}),
    (("0x7f000001", 80), {}),
    (("1.invalid", 80), {}),         # a digit first: could be a literal
    (("", 80), {}),
    ((None, 80), {}),
    (("localhost\0x", 80), {}),
    (("a" * 64 + ".invalid", 80), {}),   # the idna codec refuses it
    (("a\udcff", 80), {}),
    ((Str("localhost"), 80), {}),
    ((bytearray(b"localhost"), 80), {}),
    (("localhost", 70000), {}),
    (("localhost", -1), {}),
    (("localhost", Int(80)), {}),
    (("localhost", True), {}),
    (("localhost", 1.5), {}),
    (("localhost", "p\0q"), {}),
    (("localhost", "\u00e9"), {}),
    (("localhost", b"8\x000"), {}),
    (("localhost", bytearray(b"80")), {}),
    (("localhost", 80), {"family": True}),
    (("localhost", 80), {"type": Int(1)}),
    (("localhost", 80), {"flags": 1 << 40}),
    (("localhost", 80), {"proto": -(1 << 31) - 1}),
    (("localhost", 80), {"family": "x"}),
    (("localhost", 80), {"family": 1.0}),
]


def _ids(cases):
    return [repr(a)[:40] + repr(k)[:40] for a, k in cases]


@pytest.mark.parametrize("args,kwargs", FAST, ids=_ids(FAST))
def test_names_skip_the_probe_and_answer_as_socket_does(loop, monkeypatch,
                                                        args, kwargs):
    probed = spy_probe(monkeypatch)
    expected = outcome(socket.getaddrinfo, *args, **kwargs)
    assert loop_outcome(loop, *args, **kwargs) == expected
    assert probed == []


@pytest.mark.parametrize("args,kwargs", PROBED, ids=_ids(PROBED))
def test_everything_else_takes_the_probe(loop, monkeypatch, args, kwargs):
    probed = spy_probe(monkeypatch)
    expected = outcome(socket.getaddrinfo, *args, **kwargs)
    assert loop_outcome(loop, *args, **kwargs) == expected
    assert len(probed) == 1


@pytest.mark.parametrize("args,kwargs", FAST + PROBED, ids=_ids(FAST + PROBED))
def test_asyncio_and_uvffi_agree(any_loop, args, kwargs):
    expected = outcome(socket.getaddrinfo, *args, **kwargs)
    assert loop_outcome(any_loop, *args, **kwargs) == expected


def test_debug_mode_takes_the_same_paths(loop, monkeypatch):
    loop.set_debug(True)
    probed = spy_probe(monkeypatch)
    assert loop_outcome(loop, "localhost", 80) == \
        socket.getaddrinfo("localhost", 80)
    assert probed == []
    assert loop_outcome(loop, "127.0.0.1", 80) == \
        socket.getaddrinfo("127.0.0.1", 80)
    assert len(probed) == 1


def test_memo_tables_stay_bounded():
    for i in range(3 * dnsargs.MEMO_MAX):
        assert dnsargs.fast_node("host%d.invalid" % i) == \
            b"host%d.invalid" % i
        assert dnsargs.fast_service("svc%d" % i) == b"svc%d" % i
    assert len(dnsargs.str_nodes) <= dnsargs.MEMO_MAX
    assert len(dnsargs.str_services) <= dnsargs.MEMO_MAX


# -- answers converted by the C side -----------------------------------------

# literals sent to the resolver itself (past the probe), so that the records
# are made of addresses of every form
RESOLVED = [b"1.2.3.4", b"0.0.0.0", b"127.1", b"0x7f.1"]
if HAS_IPV6:
    RESOLVED += [b"::1", b"::", b"::ffff:1.2.3.4", b"::1.2.3.4", b"1::",
                 b"2001:db8::1", b"1:0:0:1::1", b"::ffff:0:1.2.3.4",
                 b"2001:0db8:0000:0000:0000:ff00:0042:8329",
                 b"fe80::1%1", b"2001:db8::1%1", b"ff02::1%1"]
HINTS = [(0, 0, 0), (socket.AF_INET6, socket.SOCK_STREAM, socket.AI_V4MAPPED),
         (0, socket.SOCK_DGRAM, socket.AI_CANONNAME),
         (socket.AF_INET, 0, socket.AI_PASSIVE)]


@pytest.mark.parametrize("hints", HINTS, ids=[repr(h) for h in HINTS])
@pytest.mark.parametrize("node", RESOLVED, ids=[n.decode() for n in RESOLVED])
def test_resolver_answers_convert_as_the_socket_module(loop, node, hints):
    family, kind, flags = hints
    expected = outcome(socket.getaddrinfo, node, 80, family, kind, 0, flags)

    async def lookup():
        r = uvdns._submit(loop, node, b"80", family, kind, 0, flags)
        return await uvdns._wait(r)
    try:
        got = loop.run_until_complete(lookup())
    except Exception as exc:
        got = type(exc), exc.args
    assert got == expected


def _chain(entries):
    """A struct addrinfo list: (family, kind, proto, canon, sockaddr)."""
    keep = []
    ai = ffi.new("struct addrinfo[]", len(entries))
    for i, (family, kind, proto, canon, addr) in enumerate(entries):
        ai[i].ai_family = family
        ai[i].ai_socktype = kind
        ai[i].ai_protocol = proto
        if canon is not None:
            keep.append(ffi.new("char[]", canon))
            ai[i].ai_canonname = keep[-1]
        ai[i].ai_addr = ffi.cast("struct sockaddr *", addr)
        if i + 1 < len(entries):
            ai[i].ai_next = ai + i + 1
    keep.append(ai)
    return ai + 0, keep


def _in4(ip, port):
    out = ffi.new("struct sockaddr_storage *")
    assert lib.uvffi_sockaddr_in(out, ip, port) == 0
    return out


def _in6(ip, port, flowinfo, scope_id):
    out = ffi.new("struct sockaddr_storage *")
    assert lib.uvffi_sockaddr_in6(out, ip, port, flowinfo, scope_id) == 0
    return out


def _host(literal, family):
    # the address as this interpreter's socket module writes it
    return socket.getaddrinfo(literal, 0, family, socket.SOCK_STREAM, 0,
                              socket.AI_NUMERICHOST)[0][4][0]


def test_general_path_converts_entry_by_entry():
    # what the C side leaves to Python: over UVFFI_AI_RECS entries, or an
    # address other than IPv4/IPv6
    entries = [(socket.AF_INET, socket.SOCK_STREAM, 6, b"canon.example",
                _in4(b"10.1.2.%d" % i, 1000 + i)) for i in range(40)]
    expected = [(socket.AF_INET, socket.SOCK_STREAM, 6,
                 "canon.example", ("10.1.2.%d" % i, 1000 + i))
                for i in range(40)]
    if HAS_IPV6:
        entries.append((socket.AF_INET6, 99, 0, None,
                        _in6(b"fe80::1", 7, 5, 1)))
        expected.append((socket.AF_INET6, 99, 0, "",
                         (_host("fe80::1%1", socket.AF_INET6), 7, 5, 1)))
    ai, keep = _chain(entries)
    got = uvdns._convert_addrinfo(ai)
    assert got == expected
    assert [type(e[0]) for e in got] == [socket.AddressFamily] * len(got)
    assert type(got[0][1]) is socket.SocketKind
    if HAS_IPV6:
        assert type(got[-1][1]) is int  # no SocketKind member of value 99


def test_ipv4_text_is_inet_ntops_for_every_octet_value():
    addrs = [bytes([v, (v * 7) % 256, 255 - v, (v * 13 + 1) % 256])
             for v in range(256)]
    entries = [(socket.AF_INET, socket.SOCK_STREAM, 6, None,
                _in4(socket.inet_ntop(socket.AF_INET, a).encode(), 80))
               for a in addrs]
    got = []
    for i in range(0, 256, 32):  # chains within the records' count
        ai, keep = _chain(entries[i:i + 32])
        got += uvdns._convert_addrinfo(ai)
    assert [g[4][0] for g in got] == \
        [socket.inet_ntop(socket.AF_INET, a) for a in addrs]


@pytest.mark.skipif(sys.platform != "linux", reason="sockaddr layout")
def test_general_path_keeps_other_families_as_before():
    unix = ffi.new("struct sockaddr_storage *")
    ffi.buffer(unix)[0:2] = struct.pack("H", socket.AF_UNIX)
    ai, keep = _chain([(socket.AF_UNIX, socket.SOCK_STREAM, 0, None, unix)])
    assert uvdns._convert_addrinfo(ai) == [
        (socket.AF_UNIX, socket.SOCK_STREAM, 0, "", (socket.AF_UNIX, b""))]


def test_record_layout_matches_the_struct_format():
    assert uvdns._REC.size == ffi.sizeof("uvffi_ai_rec")


# -- the lookup queue ---------------------------------------------------------

def test_the_queue_lives_while_lookups_are_outstanding(loop):
    loop.run_until_complete(asyncio.sleep(0))
    baseline = set(loop._uv_handles)

    async def one_after_the_other():
        seen = set()
        for port in range(10):
            await loop.getaddrinfo("localhost", port)
            seen.add(loop._uv_dns)
        return seen

    seen = loop.run_until_complete(one_after_the_other())
    assert len(seen) == 1  # a task asking again within the iteration reuses it
    resolver = seen.pop()
    for _ in range(100):
        if set(loop._uv_handles) == baseline:
            break
        loop.run_until_complete(asyncio.sleep(0.01))
    assert set(loop._uv_handles) == baseline  # closed once idle
    assert resolver.closing
    # and a new one for the next lookup
    assert loop.run_until_complete(loop.getaddrinfo("localhost", 80)) == \
        socket.getaddrinfo("localhost", 80)
    assert loop._uv_dns is not resolver


def test_loop_close_closes_the_queue():
    lp = uvffi.new_event_loop()
    try:
        lp.run_until_complete(lp.getaddrinfo("localhost", 80))
        resolver = lp._uv_dns
    finally:
        lp.close()
    assert resolver.closing
    assert not lp._uv_handles and not lp._uv_requests


def test_queued_lookups_cancel_at_once(loop):
    async def main():
        tasks = [asyncio.ensure_future(loop.getaddrinfo("localhost", p))
                 for p in range(3000, 3400)]
        await asyncio.sleep(0)  # all queued; the runners take a few
        for t in tasks:
            t.cancel()
        # the tasks see their CancelledError (a few steps: a task's
        # cancellation reaches its awaiting coroutine in its next step)
        for _ in range(10):
            await asyncio.sleep(0)
            if len(loop._uv_requests) < 400:
                break
        # those no runner took are released right away
        in_flight = len(loop._uv_requests)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        for _ in range(1000):
            if not loop._uv_requests:
                break
            await asyncio.sleep(0.01)
        return in_flight

    in_flight = loop.run_until_complete(main())
    assert in_flight < 400
    assert not loop._uv_requests
    # the loop still resolves afterwards
    assert loop.run_until_complete(loop.getaddrinfo("localhost", 80)) == \
        socket.getaddrinfo("localhost", 80)


def test_many_lookups_in_flight_answer_in_order(loop):
    ports = list(range(5000, 5300))
    kinds = [0, socket.SOCK_STREAM, socket.SOCK_DGRAM]

    async def main():
        return await asyncio.gather(*[
            loop.getaddrinfo("localhost", p, type=kinds[p % 3])
            for p in ports])

    got = loop.run_until_complete(main())
    assert got == [socket.getaddrinfo("localhost", p, type=kinds[p % 3])
                   for p in ports]
    assert not loop._uv_requests


@pytest.mark.parametrize("n", [1, 500])
def test_loop_close_with_lookups_queued_and_running(n):
    lp = uvffi.new_event_loop()
    futs = [asyncio.ensure_future(lp.getaddrinfo("localhost", 2000 + i % 50),
                                  loop=lp) for i in range(n)]
    lp.run_until_complete(asyncio.sleep(0))
    lp.close()  # takes back what is queued, waits for the running ones
    assert not lp._uv_requests and not lp._uv_handles
    for f in futs:
        f._log_destroy_pending = False


def test_guest_loop_closed_with_lookups_in_flight_drains_on_the_host():
    host = Host()
    try:
        lp = uvffi.Loop.from_uv_loop(host.address)
        lp.set_exception_handler(lambda _lp, ctx: host.errors.append(ctx))
        futs = [asyncio.ensure_future(lp.getaddrinfo("localhost", 2000 + i),
                                      loop=lp) for i in range(100)]
        lp.run_until_complete(asyncio.sleep(0))
        lp.close()
        host.run()  # the runners end, the queue's handle closes
        assert not lp._uv_requests and not lp._uv_handles
        for f in futs:
            f._log_destroy_pending = False
    finally:
        close_host(host)


def test_lookups_in_guest_mode_run_inside_the_hosts_uv_run():
    # runners are started by the queue's prepare handle: the host's uv_run
    # runs it, as it runs the answers' async handle
    host = Host()
    try:
        lp = uvffi.Loop.from_uv_loop(host.address)
        lp.set_exception_handler(lambda _lp, ctx: host.errors.append(ctx))
        lp.start_guest()

        async def main():
            return await asyncio.gather(*[
                lp.getaddrinfo("localhost", p) for p in range(40)])

        fut = asyncio.ensure_future(main(), loop=lp)
        host.run_until(fut.done)
        assert fut.result() == [socket.getaddrinfo("localhost", p)
                                for p in range(40)]
        lp.stop_guest()
        lp.close()
        host.run(lib.UV_RUN_NOWAIT)
        assert not lp._uv_requests and not lp._uv_handles
    finally:
        close_host(host)


def test_lookups_from_two_loops_in_two_threads():
    import threading
    results = {}

    def worker(name):
        lp = uvffi.new_event_loop()
        try:
            async def main():
                return await asyncio.gather(*[
                    lp.getaddrinfo("localhost", p) for p in range(100)])
            results[name] = lp.run_until_complete(main())
        finally:
            lp.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = [socket.getaddrinfo("localhost", p) for p in range(100)]
    assert results == {0: expected, 1: expected}
