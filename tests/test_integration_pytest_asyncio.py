"""How a project runs its pytest-asyncio tests on uvffi: the conftest.py
below (the one docs/drop-in.md shows), in a child pytest in tmp_path so that
it does not touch this suite's own plugins and fixtures.

Newer pytest-asyncio (1.5 here) asks the `pytest_asyncio_loop_factories`
hook for loop factories and deprecates overriding the `event_loop_policy`
fixture; older versions (0.23 and later; 1.2 here) take the loop from that
fixture. The conftest supports both."""
import subprocess
import sys

import pytest

pytest_asyncio = pytest.importorskip(
    "pytest_asyncio",
    reason="pytest-asyncio not installed (pip install .[integration])")

from _integration import child_env  # noqa: E402

CONFTEST = '''
import pytest
import pytest_asyncio.plugin

import uvffi

if hasattr(getattr(pytest_asyncio.plugin, "PytestAsyncioSpecs", None),
            "pytest_asyncio_loop_factories"):
    # newer pytest-asyncio (1.5 checked): the loop factories hook
    def pytest_asyncio_loop_factories(config, item):
        return {"uvffi": uvffi.new_event_loop}
else:
    # older pytest-asyncio (0.23 and later; 1.2 checked): a policy
    @pytest.fixture(scope="session")
    def event_loop_policy():
        return uvffi.EventLoopPolicy()
'''

TESTS = '''
import asyncio
import sys

import pytest
import pytest_asyncio

import uvffi


@pytest_asyncio.fixture
async def echo_port():
    async def echo(reader, writer):
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_test_and_async_fixture_run_on_uvffi(echo_port):
    assert isinstance(asyncio.get_running_loop(), uvffi.Loop)
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
    writer.write(b"ping")
    assert await reader.read() == b"ping"
    writer.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_module_scoped_loop_is_uvffi():
    assert isinstance(asyncio.get_running_loop(), uvffi.Loop)


@pytest.mark.asyncio
async def test_subprocess_and_executor_on_uvffi():
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, sum, [1, 2, 3]) == 6
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print(7)",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out.strip() == b"7" and proc.returncode == 0
'''

INI = """[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""


def test_pytest_asyncio_project_conftest_runs_tests_on_uvffi(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_example.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text(INI)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "-p", "no:randomly", "-rA", "--rootdir", str(tmp_path),
         str(tmp_path)],
        cwd=str(tmp_path), env=child_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout
    assert "3 passed" in proc.stdout, proc.stdout
    assert "PASSED test_example.py::test_test_and_async_fixture_run_on_uvffi" \
        in proc.stdout


def test_pytest_asyncio_without_the_conftest_uses_another_loop(tmp_path):
    # the control: the same assertion fails when nothing selects uvffi
    (tmp_path / "test_example.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text(INI)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), str(tmp_path / "test_example.py")
         + "::test_module_scoped_loop_is_uvffi"],
        cwd=str(tmp_path), env=child_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "1 failed" in proc.stdout, proc.stdout
