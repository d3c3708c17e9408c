"""The CLI as a seller runs it: subprocesses, a real config file, with and without a running daemon."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CATALOG

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def syncd(*args: str, config: Path | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    cmd = [sys.executable, "-m", "syncd", *(["--config", str(config)] if config else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
database = "{tmp_path / 'state' / 'syncd.db'}"
admin_listen = "127.0.0.1:{free_port()}"
public_listen = "127.0.0.1:{free_port()}"

[locations.main]
sources = ["threepl", "manual"]
""")
    (tmp_path / "catalog.csv").write_text(CATALOG)
    return path


def test_bad_config_exits_2_naming_each_key_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[daemon]\nadmin_listen = "nowhere"\ncolour = "blue"\n[outbox]\nmax_attempts = -1\n')
    proc = syncd("check-config", config=bad)
    assert proc.returncode == 2
    assert "daemon.admin_listen: Value error, expected HOST:PORT" in proc.stderr
    assert "daemon.colour: unknown key" in proc.stderr
    assert "outbox.max_attempts: Input should be greater than 0" in proc.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[daemon\n")
    proc = syncd("check-config", config=broken)
    assert proc.returncode == 2 and "broken.toml" in proc.stderr
    assert syncd("check-config", config=tmp_path / "missing.toml").returncode == 2


def test_example_config_is_valid() -> None:
    proc = syncd("check-config", config=ROOT / "config.example.toml")
    assert proc.returncode == 0, proc.stderr
    assert "config ok" in proc.stdout


def test_without_a_daemon_commands_open_the_database_directly(config: Path, tmp_path: Path) -> None:
    out = syncd("migrate", config=config, check=True).stdout
    from syncd.store.db import latest_version

    assert f"schema version {latest_version()}; applied: 0001_init.sql, " in out
    assert "applied: nothing" in syncd("migrate", config=config, check=True).stdout
    out = syncd("catalog", "import", str(tmp_path / "catalog.csv"), config=config, check=True).stdout
    assert json.loads(out) == {"products": 5, "listings": 8, "kits": 1}
    syncd("catalog", "import", str(tmp_path / "catalog.csv"), config=config, check=True)  # idempotent
    syncd("stock", "count", "MUG", "main", "7", config=config, check=True)
    held = json.loads(syncd("reserve", "MUG", "2", "--ttl", "600", config=config, check=True).stdout)
    assert held["qty"] == 2
    refused = syncd("reserve", "MUG", "6", config=config)
    assert refused.returncode == 1 and "only 5" in refused.stdout
    product = json.loads(syncd("explain", "MUG", config=config, check=True).stdout)
    assert (product["on_hand"], product["reserved"], product["available"]) == (7, 2, 5)
    exported = syncd("catalog", "export", config=config, check=True).stdout
    assert exported.splitlines()[0] == "sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share"
    assert syncd("backup", str(tmp_path / "copy.db"), config=config, check=True).returncode == 0
    assert (tmp_path / "copy.db").stat().st_size > 0


def test_bad_catalog_is_reported_and_imports_nothing(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,title,location,channel,external_id,variation_id,safety_buffer,cap,share\n"
                   "A,A,main,amazon,X,,0,,\nB,B,main,amazon,X,,0,,\nC,C,attic,ebay,Y,,0,,\n")
    proc = syncd("catalog", "import", str(bad), config=config)
    assert proc.returncode == 1
    assert "ambiguous" in proc.stdout and "unknown location 'attic'" in proc.stdout
    assert syncd("explain", "A", config=config).returncode == 1


def test_with_a_daemon_running_commands_go_through_its_api(config: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    daemon = subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(config), "run"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while syncd("status", config=config).returncode == 2:
            assert time.monotonic() < deadline, "daemon did not come up"
            assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
            time.sleep(0.2)
        status = syncd("status", "--json", config=config)
        assert status.returncode == 0 and json.loads(status.stdout)["status"] == "ok"
        syncd("catalog", "import", str(tmp_path / "catalog.csv"), config=config, check=True)
        syncd("stock", "count", "MUG", "main", "3", config=config, check=True)
        product = json.loads(syncd("explain", "MUG", config=config, check=True).stdout)
        assert product["available"] == 3
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    assert daemon.returncode == 0  # SIGTERM is a clean stop
    assert syncd("status", config=config).returncode == 2  # unreachable


def test_every_command_help_ends_with_an_example() -> None:
    for args in (["run"], ["status"], ["check-config"], ["migrate"], ["catalog", "import"], ["stock", "count"],
                 ["reserve"], ["orders"], ["explain"], ["dlq", "retry"], ["price", "set"], ["listing", "pause"],
                 ["backup"], ["demo"]):
        out = syncd(*args, "--help", check=True).stdout.strip()
        assert out.splitlines()[-1].startswith("Example: syncd"), (args, out)


def test_an_enabled_channel_without_its_credentials_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[channels.mercadolibre]\nenabled = true\nclient_id = "123"\n')
    proc = syncd("check-config", config=bad)
    assert proc.returncode == 2
    assert "channels.mercadolibre.client_secret: required when the channel is enabled" in proc.stderr
    assert "channels.mercadolibre.user_id: required when the channel is enabled" in proc.stderr
    assert "client_id" not in proc.stderr.replace("client_id =", "")  # given keys are not reported


def test_run_speaks_systemds_notify_protocol(config: Path, tmp_path: Path) -> None:
    import socket as sock

    path = str(tmp_path / "notify.sock")
    listener = sock.socket(sock.AF_UNIX, sock.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")  # a 1 s watchdog: pings every 0.5 s
    daemon = subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(config), "run"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        messages = [listener.recv(256).decode() for _ in range(3)]
        assert messages[0] == "READY=1"
        assert messages[1:] == ["WATCHDOG=1", "WATCHDOG=1"]
        daemon.terminate()
        while (message := listener.recv(256).decode()) == "WATCHDOG=1":
            continue
        assert message == "STOPPING=1"
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        listener.close()
