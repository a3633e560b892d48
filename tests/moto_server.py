"""A ``moto_server`` subprocess on a free loopback port, stopped by its PID (never by name)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(process: subprocess.Popen[Any], endpoint: str, timeout: float, what: str) -> Iterator[str]:
    """Wait until ``process`` answers on ``endpoint``; yield the endpoint; stop the process by its PID."""
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{what} did not start on {endpoint}") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """Start moto_server on 127.0.0.1 at a free port; yield its endpoint URL; stop it by PID."""
    port = free_port()
    executable = Path(sys.executable).with_name("moto_server")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    with serving(process, f"http://127.0.0.1:{port}", timeout, "moto_server") as endpoint:
        yield endpoint
