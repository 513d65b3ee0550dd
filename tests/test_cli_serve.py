"""`xinyong serve`: the reports' verification address from serve's own arguments, and a busy port
refused before anything claims to be serving."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


from conftest import Cli
from xinyong.cli.operations import own_address


def test_own_address_uses_the_arguments_and_names_wildcards_by_the_machine() -> None:
    assert own_address("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert own_address("credit.example.cn", 80) == "http://credit.example.cn:80"
    assert own_address("0.0.0.0", 8080) == f"http://{socket.gethostname()}:8080"
    assert own_address("::", 8080) == f"http://{socket.gethostname()}:8080"
    assert own_address("::1", 9000) == "http://[::1]:9000"


def test_a_busy_port_is_refused_without_claiming_to_serve(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'store.db'}")
    cli("init")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--host", "127.0.0.1", "--port", port, ok=False)
    assert result.exit_code == 1
    assert "serving" not in result.output
    assert f"cannot serve on 127.0.0.1:{port}" in result.output and len(result.output.strip().splitlines()) == 1


def test_serve_without_public_url_warns_once_and_reports_carry_its_own_address(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    Cli(f"sqlite:///{db}")("init")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "COLUMNS": "200"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "xinyong"), "--db", f"sqlite:///{db}", "serve", "--host",
                               "0.0.0.0", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while len(lines) < 2 and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            lines.append(line)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    expected = f"http://{socket.gethostname()}:{port}"
    assert sum("warning" in line for line in lines) == 1, lines
    assert f"{expected}/verify/CODE" in lines[0], lines
    assert "serving" in lines[1], lines
