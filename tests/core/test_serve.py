"""`manage.py serve --processes N`: several server processes on one port."""

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from django.core.management import CommandError, call_command

from tests.live_server import _free_port, server_env, serving

pytestmark = pytest.mark.django_db(transaction=True)


def _listeners(port: int) -> int:
    """Sockets listening on 127.0.0.1:port, from the kernel's own table."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[1] == wanted and row[3] == "0A")  # 0A: LISTEN


class socket_listening:
    """Another program's socket on a free port."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


def test_several_processes_need_redis(settings):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("serve", processes=2, no_migrate=True, no_worker=True)


def test_a_port_in_use_is_named(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"  # only checked, never reached
    with socket_listening() as port, pytest.raises(CommandError, match=f"127.0.0.1:{port}"):
        call_command("serve", processes=2, port=port, no_migrate=True, no_worker=True)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="several processes need Redis")
def test_two_processes_share_the_port_and_stop_together():
    port = _free_port()
    env = server_env(f"http://127.0.0.1:{port}")
    with serving(env, port, "--no-worker", "--processes", "2", log_name="serve-2.log") as proc:
        assert _listeners(port) == 2
        for _ in range(20):  # every connection is answered, whichever process takes it
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as page:
                assert page.status == 200
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 2
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while _listeners(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _listeners(port) == 0
    assert not any(os.path.exists(f"/proc/{child}") for child in children)
