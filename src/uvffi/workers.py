"""gunicorn worker classes whose worker processes run on a uvffi loop.

    gunicorn app:app -w 2 -k uvffi.workers.AiohttpWorker   # aiohttp.web
    gunicorn app:app -w 2 -k uvffi.workers.UvicornWorker   # ASGI, via uvicorn

gunicorn's master process forks the workers; each worker makes its own
uvffi loop after the fork and serves the listening socket that the master
shares with all of them.  See docs/gunicorn.md.

This module needs gunicorn (``import uvffi`` never imports it).  Each class
needs its framework as well, and is made on first access, so
``uvffi.workers.AiohttpWorker`` works without uvicorn installed and the
other way round; a missing package is an ImportError that names it.

- ``AiohttpWorker``: aiohttp's ``aiohttp.worker.GunicornWebWorker`` with a
  uvffi loop in place of ``asyncio.new_event_loop()`` (what aiohttp's own
  ``GunicornUVLoopWebWorker`` does for uvloop, here without an event loop
  policy: those are deprecated from Python 3.14).
- ``UvicornWorker``: the uvicorn worker (``uvicorn_worker.UvicornWorker``
  when the uvicorn-worker package is installed, else the deprecated
  ``uvicorn.workers.UvicornWorker``) with uvicorn's ``loop`` setting set to
  ``"uvffi:new_event_loop"``, which uvicorn 0.36+ takes as a loop factory.

Both add one thing to the frameworks' graceful shutdown (on SIGTERM, which
is also how gunicorn retires the old workers on SIGHUP): the worker stops
accepting, then waits ``SHUTDOWN_DRAIN`` seconds (when it has connections)
before the framework closes the idle ones.  Without the pause, a connection
that the worker accepted just before its shutdown, but whose request had
not been read yet, counts as idle and is closed without an answer (or, with
aiohttp on Python < 3.12, is left hanging until the client gives up): with
a stream of requests, about one lost request per reload, on asyncio's own
loop and uvloop as well.  ``SHUTDOWN_DRAIN = 0`` in a subclass turns the
pause off.
"""
from __future__ import annotations

import asyncio
import inspect
import sys
import warnings
from typing import Any

try:
    import gunicorn.workers.base as _gunicorn_base
    from gunicorn.arbiter import Arbiter as _Arbiter
except ImportError as exc:
    raise ImportError(
        "uvffi.workers needs gunicorn, which is not installed "
        "(pip install gunicorn)") from exc

import uvffi

__all__ = ("AiohttpWorker", "UvicornWorker")

_UVFFI_LOOP_FACTORY = "uvffi:new_event_loop"

# seconds between "stop accepting" and "close the idle connections"
SHUTDOWN_DRAIN = 0.5


def _close_current_loop() -> None:
    """Close the loop the worker inherited from the master, if any (an app
    preloaded with ``--preload`` may have made one), as aiohttp's worker
    does.  A uvffi loop closed in a forked child leaves the parent's libuv
    state alone."""
    with warnings.catch_warnings():
        # get_event_loop() without a current loop: deprecated from 3.12,
        # an error from 3.14 (a fresh worker usually has none)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            return
    loop.close()


# -- aiohttp ---------------------------------------------------------------

def _make_aiohttp_worker() -> type:
    try:
        from aiohttp import web
        from aiohttp.worker import GunicornWebWorker
    except ImportError as exc:
        raise ImportError(
            "uvffi.workers.AiohttpWorker needs aiohttp, which is not "
            "installed (pip install aiohttp)") from exc

    class DrainingAppRunner(web.AppRunner):  # type: ignore[misc,valid-type]
        """An AppRunner whose cleanup stops the sites, gives the
        connections accepted last ``drain`` seconds to deliver their
        request, then does aiohttp's cleanup (close the idle connections,
        wait for the requests in progress, on_shutdown, on_cleanup)."""

        def __init__(self, app: Any, *, drain: float, **kwargs: Any) -> None:
            super().__init__(app, **kwargs)
            self._uvffi_drain = drain

        async def cleanup(self) -> None:
            sites = list(self.sites)
            for site in sites:
                await site.stop()
            server = self.server
            if sites and self._uvffi_drain > 0 and server is not None:
                await asyncio.sleep(0)  # connections accepted last, made
                if server.connections:
                    await asyncio.sleep(self._uvffi_drain)
            await super().cleanup()

    class AiohttpWorker(GunicornWebWorker):  # type: ignore[misc,valid-type]
        """aiohttp's gunicorn worker (``aiohttp.worker.GunicornWebWorker``)
        running on a uvffi loop.

        ``gunicorn module:app -k uvffi.workers.AiohttpWorker``, where
        ``app`` is an ``aiohttp.web.Application`` or a coroutine function
        returning one (or returning an ``AppRunner``, used as it is: without
        the shutdown drain).
        """

        SHUTDOWN_DRAIN = SHUTDOWN_DRAIN

        def init_process(self) -> None:
            # GunicornWebWorker.init_process with the loop made by uvffi:
            # close an inherited loop, make and set ours, then gunicorn's
            # own init_process (signals through self.loop, then run()).
            _close_current_loop()
            self.loop = uvffi.new_event_loop()
            asyncio.set_event_loop(self.loop)
            _gunicorn_base.Worker.init_process(self)

        def load_wsgi(self) -> None:
            super().load_wsgi()
            app = self.wsgi
            if isinstance(app, web.Application):
                async def make_runner() -> Any:
                    return self._draining_runner(app)
            elif inspect.iscoroutinefunction(app):
                async def make_runner() -> Any:
                    made = await app()
                    if isinstance(made, web.Application):
                        return self._draining_runner(made)
                    return made
            else:
                return  # aiohttp's _run reports what it cannot serve
            # aiohttp's worker takes "a coroutine function returning an
            # Application or an AppRunner" as the app
            self.wsgi = make_runner

        def _draining_runner(self, app: Any) -> Any:
            # the runner GunicornWebWorker._run makes for an Application,
            # with the drain on cleanup
            return DrainingAppRunner(
                app,
                drain=self.SHUTDOWN_DRAIN,
                logger=self.log,
                keepalive_timeout=self.cfg.keepalive,
                access_log=self.log.access_log if self.cfg.accesslog else None,
                access_log_format=self._get_valid_log_format(
                    self.cfg.access_log_format),
                shutdown_timeout=self.cfg.graceful_timeout / 100 * 95,
            )

    return _published(AiohttpWorker, DrainingAppRunner)


def _published(worker, helper):
    """A worker class made inside a factory, named as if defined here
    (gunicorn and pickling find it as uvffi.workers.NAME), with its helper
    class as an attribute."""
    for cls in (helper, worker):
        cls.__module__ = __name__
    helper.__qualname__ = "%s.%s" % (worker.__name__, helper.__name__)
    worker.__qualname__ = worker.__name__
    setattr(worker, helper.__name__, helper)
    return worker


# -- uvicorn ---------------------------------------------------------------

def _uvicorn_base() -> type:
    try:
        import uvicorn.config
    except ImportError as exc:
        raise ImportError(
            "uvffi.workers.UvicornWorker needs uvicorn, which is not "
            "installed (pip install uvicorn uvicorn-worker)") from exc
    if not hasattr(uvicorn.config.Config, "get_loop_factory"):
        raise ImportError(
            "uvffi.workers.UvicornWorker needs uvicorn 0.36 or later (a "
            "'module:callable' loop setting taken as a loop factory); "
            "installed: uvicorn %s" % getattr(uvicorn, "__version__", "?"))
    try:
        from uvicorn_worker import UvicornWorker as base
    except ImportError:
        try:
            with warnings.catch_warnings():
                # "uvicorn.workers is deprecated, use uvicorn-worker":
                # that package is taken when installed (above)
                warnings.simplefilter("ignore", DeprecationWarning)
                from uvicorn.workers import UvicornWorker as base
        except ImportError as exc:
            raise ImportError(
                "uvffi.workers.UvicornWorker needs a uvicorn gunicorn "
                "worker: pip install uvicorn-worker") from exc
    return base


def _make_uvicorn_worker() -> type:
    base = _uvicorn_base()
    from uvicorn.server import Server

    class DrainingServer(Server):  # type: ignore[misc,valid-type]
        """uvicorn's Server whose shutdown stops accepting, gives the
        connections accepted last ``drain`` seconds to deliver their
        request, then does uvicorn's shutdown (close the idle connections,
        wait for the requests in progress, lifespan shutdown)."""

        def __init__(self, config: Any, drain: float) -> None:
            super().__init__(config=config)
            self._uvffi_drain = drain

        async def shutdown(self, sockets: Any = None) -> None:
            for server in self.servers:
                server.close()
            if (self._uvffi_drain > 0 and self.server_state.connections
                    and not self.force_exit):
                await asyncio.sleep(self._uvffi_drain)
            await super().shutdown(sockets=sockets)

    class UvicornWorker(base):  # type: ignore[misc,valid-type]
        """uvicorn's gunicorn worker running the ASGI app on a uvffi loop.

        ``gunicorn module:app -k uvffi.workers.UvicornWorker``.  Subclass
        it to change other uvicorn settings, keeping ``"loop"``::

            class MyWorker(uvffi.workers.UvicornWorker):
                CONFIG_KWARGS = {**uvffi.workers.UvicornWorker.CONFIG_KWARGS,
                                 "http": "h11"}
        """

        CONFIG_KWARGS: dict[str, Any] = {
            **base.CONFIG_KWARGS, "loop": _UVFFI_LOOP_FACTORY}
        SHUTDOWN_DRAIN = SHUTDOWN_DRAIN

        async def _serve(self) -> None:
            # the base worker's _serve, with the draining Server
            self.config.app = self.wsgi
            server = DrainingServer(self.config, self.SHUTDOWN_DRAIN)
            install_sigquit = getattr(self, "_install_sigquit_handler", None)
            if install_sigquit is not None:
                install_sigquit()
            await server.serve(sockets=self.sockets)
            if not server.started:
                sys.exit(_Arbiter.WORKER_BOOT_ERROR)

    return _published(UvicornWorker, DrainingServer)


_FACTORIES = {
    "AiohttpWorker": _make_aiohttp_worker,
    "UvicornWorker": _make_uvicorn_worker,
}


def __getattr__(name: str) -> type:
    # PEP 562: each class is made (and its framework imported) on first use
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise AttributeError(
            "module %r has no attribute %r" % (__name__, name)) from None
    cls = factory()
    globals()[name] = cls
    return cls


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
