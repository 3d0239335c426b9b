"""Alerts over TLS (`rediss://`) with a password, against a real redis-server started with TLS."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from conftest import REPO, free_port, pipeline_env, run_cli


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def tls_redis(tmp_path):
    if not shutil.which("openssl") or not shutil.which("redis-server"):
        pytest.skip("needs openssl and redis-server")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "ca.key"), "-out",
             str(tmp_path / "ca.crt"), "-days", "1", "-subj", "/CN=itd-test-ca")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "srv.key"), "-out",
             str(tmp_path / "srv.csr"), "-subj", "/CN=127.0.0.1")
    (tmp_path / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(tmp_path / "srv.csr"), "-CA", str(tmp_path / "ca.crt"), "-CAkey",
             str(tmp_path / "ca.key"), "-CAcreateserial", "-out", str(tmp_path / "srv.crt"), "-days", "1",
             "-extfile", str(tmp_path / "ext.cnf"))
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file",
                             str(tmp_path / "srv.crt"), "--tls-key-file", str(tmp_path / "srv.key"),
                             "--tls-ca-cert-file", str(tmp_path / "ca.crt"), "--tls-auth-clients", "no",
                             "--requirepass", "s3cret-pw", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if proc.poll() is not None:
        pytest.skip("this redis-server was built without TLS")
    yield port, tmp_path / "ca.crt"
    proc.terminate()
    proc.wait(10)


def test_alerts_over_tls_with_a_password_that_is_never_printed(tls_redis, tmp_path):
    import redis

    port, ca = tls_redis
    sink = '{"url": "rediss://:s3cret-pw@127.0.0.1:%d/0", "tls_ca": "%s"}' % (port, ca)
    res = run_cli("run", "configs/demo.yaml", "--set", f"sinks.redis={sink}", "--set",
                  f"sinks.jsonl.path={tmp_path / 'a.jsonl'}", env=pipeline_env(), timeout=240, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "s3cret-pw" not in res.stderr + res.stdout
    client = redis.Redis(host="127.0.0.1", port=port, password="s3cret-pw", ssl=True, ssl_ca_certs=str(ca))
    events = [fields[b"event"] for _, fields in client.xrange("itd:alerts")]
    assert events.count(b"new") >= 1 and events.count(b"new") == events.count(b"end")
