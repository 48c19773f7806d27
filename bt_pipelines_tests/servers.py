"""Real protocol servers for tests, each in its own process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


@contextmanager
def _serving(command: list[str], port: int) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server() -> Iterator[str]:
    """An S3-protocol server (moto's); yields its endpoint URL."""
    port = free_port()
    with _serving([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], port):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def gcs_server() -> Iterator[str]:
    """A GCS-protocol emulator; yields host:port for STORAGE_EMULATOR_HOST."""
    port = free_port()
    with _serving([sys.executable, "-m", "bt_pipelines_tests.gcs_emulator", str(port)], port):
        yield f"http://127.0.0.1:{port}"


def s3_client(endpoint: str):
    from dagster_aws.s3 import S3Resource

    return S3Resource(endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1").get_client()


def gcs_client(host: str):
    from dagster_gcp import GCSResource

    os.environ["STORAGE_EMULATOR_HOST"] = host
    return GCSResource(project="test-project").get_client()
