"""libuv's stream callbacks: how reads, writes, shutdowns, connects and
incoming connections reach a ``handles.stream.Stream`` and its owner.

Each finds its Stream through ``handle->data`` and calls the owner's method:
a *plain* stream's owner directly, in the loop's I/O context, with a check
afterwards that it set no context variable there (``Stream.plain``,
``Stream.io_polluted``); any other in its own context
(``Stream.run_in_context``).  Exceptions the owner did not handle itself go
to the loop (``def_extern``).
"""
from .._uv import ffi
from .callbacks import def_extern, report_failure
from .streamreads import LARGE_READS_FROM, LARGE_READS_UNTIL

_from_handle = ffi.from_handle
_unpack = ffi.unpack
_buffer = ffi.buffer
_memoryview = memoryview


@def_extern("_uvffi_on_read")
def _on_read(data, nread, base):
    """One read: on a host's loop every read; on a loop uvffi created the
    large ones, EOF and errors (after the batch before them)."""
    stream = _from_handle(data)
    protocol = stream.live
    loop = stream.loop
    if loop._uv_defer_io:
        # behind the callbacks queued before this poll (see _on_reads)
        if not stream.closing:
            stream.hold(nread, _unpack(base, nread) if nread > 0 else None)
        return
    if protocol is not None and nread > 0:
        # one Python frame from libuv to the protocol (streamreads.py: live)
        try:
            protocol.data_received(_unpack(base, nread))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            stream.on_data_failed(exc)
        finally:
            if loop._io_context:
                stream.io_polluted()
        if nread >= LARGE_READS_FROM:
            stream.large_read()  # the next reads skip the copy, if they can
    elif stream.reading and not stream.backlog:
        stream.run_in_context(
            stream.on_read, nread,
            _memoryview(_buffer(base, nread)) if nread > 0 else None)
        if nread >= LARGE_READS_FROM:
            stream.large_read()
    elif not stream.closing:
        # the batch before it stopped the stream: kept, as _on_reads does
        stream.hold(nread, _unpack(base, nread) if nread > 0 else None)


@def_extern("_uvffi_on_reads")
def _on_reads(data, count):
    """A batch of reads on a loop uvffi created (uvffi_stream.c): per read,
    the stream's key and where its data ends in the loop's buffer (it
    starts where the read before it ended).  What _on_read does for one
    read, without a C->Python call each."""
    batches = _from_handle(data)  # readbatch.ReadBatches
    loop = batches.loop
    view = batches.view
    streams = batches.streams
    # one list of the batch's numbers: cheaper than indexing the C array
    # twice per read
    batch = iter(batches.numbers(2 * count))
    start = end = 0
    if loop._uv_defer_io:
        # Callbacks were already queued when this poll began: on asyncio's
        # loop they run before the I/O callbacks of the poll (which it
        # queues behind them), so a coroutine resumed by one of them (the
        # caller of create_connection, say) sees its connection before its
        # first data.  The reads wait on their streams, in order, delivered
        # from the ready queue (Stream.hold).
        _hold_rest(streams, view, batch, start)
        return
    io_context = loop._io_context
    try:
        for key, end in zip(batch, batch):
            stream = streams[key]
            protocol = stream.live
            if protocol is not None:
                # a plain stream: called directly in the I/O context, which
                # must still be empty afterwards (io_polluted)
                try:
                    protocol.data_received(view[start:end])
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    stream.on_data_failed(exc)
                if io_context:
                    stream.io_polluted()
                    _hold_rest(streams, view, batch, end)
                    return
            elif stream.reading and not stream.backlog:
                stream.run_in_context(stream.on_read, end - start,
                                      batches.mv[start:end])
                if loop._uv_defer_io:  # io_polluted
                    _hold_rest(streams, view, batch, end)
                    return
            elif not stream.closing:
                # stopped while this batch was being delivered
                stream.hold(end - start, view[start:end])
            start = end
    except (SystemExit, KeyboardInterrupt):
        # leaving the batch: what is left of it waits on its streams
        if io_context:
            stream.io_polluted()
        _hold_rest(streams, view, batch, end)
        raise


def _hold_rest(streams, view, batch, start):
    """The reads left in *batch* (from offset *start*), kept on their
    streams for the ready queue to deliver (Stream.hold)."""
    for key, end in zip(batch, batch):
        stream = streams[key]
        if not stream.closing:
            stream.hold(end - start, view[start:end])
        start = end


# Direct reads through libuv (not POSIX, where large reads are self reads)
# and the read callback after a self read that changed the stream's
# reading go through Stream.run_in_context; the self read and the write
# callback, once per large read or queued write, call a plain stream's
# owner inline, as run_in_context would: a Python call more each showed in
# the per-request cost of large-message echoes.

@def_extern("_uvffi_alloc")
def _alloc(data, buf):
    stream = _from_handle(data)
    stream.in_alloc = True
    if stream.loop._uv_defer_io:
        stream.lend_hold_buffer(buf)  # the owner hears of it from the ready queue
    else:
        stream.lend_buffer(buf, stream.run_in_context(stream.on_alloc))


# error=1: after an exception, on_filled still follows, and ends in_alloc
@def_extern("_uvffi_self_read", error=1)
def _self_read(data):
    stream = _from_handle(data)
    stream.in_alloc = True
    if stream.loop._uv_defer_io:
        stream.hold_self_read()  # the owner hears of it from the ready queue
    else:
        if stream.plain:
            try:
                got = stream.on_self_read()
            finally:
                if stream.loop._io_context:
                    stream.io_polluted()
        else:
            got = stream.run_in_context(stream.on_self_read)
        if got and got < LARGE_READS_UNTIL:
            stream.small_read()
    if stream.reconcile:
        return 1  # libuv's read callback brings libuv's state up to date
    stream.in_alloc = False  # (nothing runs before libuv's read is over)
    return 0


@def_extern("_uvffi_on_filled")
def _on_filled(data, nread):
    # libuv calls this after every alloc callback, whatever happened there
    stream = _from_handle(data)
    if stream.reconcile:
        stream.after_alloc()
    else:
        stream.in_alloc = False
    if stream._hold_buffer is not None:
        stream.hold_filled(nread)
    elif stream.take_read_target() is not None:
        got = stream.run_in_context(stream.on_filled, nread)
        if got and got < LARGE_READS_UNTIL:
            stream.small_read()
    # else: nothing was lent (a self read's reconciling callback, or
    # on_alloc declined): libuv read nothing


@def_extern("_uvffi_write_cb")
def _write_cb(req, status):
    stream = _from_handle(req.handle.data)
    stream.reqs.pop(req, None)  # release_request(req), inlined (hot path)
    try:
        if stream.plain:
            try:
                stream.on_write(status)
            finally:
                if stream.loop._io_context:
                    stream.io_polluted()
        else:
            stream.run_in_context(stream.on_write, status)
    except Exception as exc:  # noqa: BLE001 - BaseException: onerror
        report_failure(stream, exc, "Fatal error in a stream write callback")


@def_extern("_uvffi_shutdown_cb")
def _shutdown_cb(req, status):
    obj = _from_handle(req.handle.data)
    obj.release_request(req)
    try:
        if obj.on_shutdown is not None:
            obj.on_shutdown(status)
    except Exception as exc:  # noqa: BLE001 - BaseException: onerror
        report_failure(obj, exc, "Fatal error in a stream shutdown callback")


@def_extern("_uvffi_connect_cb")
def _connect_cb(req, status):
    obj = _from_handle(req.handle.data)
    obj.release_request(req)
    try:
        obj.on_connect(status)
    except Exception as exc:  # noqa: BLE001 - BaseException: onerror
        report_failure(obj, exc, "Fatal error in a stream connect callback")


@def_extern("_uvffi_connection_cb")
def _connection_cb(server, status):
    stream = _from_handle(server.data)
    try:
        stream.on_connection(status)
    except Exception as exc:  # noqa: BLE001 - BaseException: onerror
        report_failure(stream, exc, "Fatal error in a server's accept callback")
