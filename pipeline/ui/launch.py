"""Start the console: check the Redis URL, bind the port, decide on authentication, run uvicorn.

User mistakes (bad URL, port in use, exposed without a token) come back as one line; Redis unreachable at start
is only a warning, since the page shows it and recovers by itself.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import sys

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from pipeline.config import redact_url

TOKEN_ENV = "ITD_UI_TOKEN"


class ConsoleError(Exception):
    """The console cannot start (one line for the user)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client(url: str) -> aioredis.Redis:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConsoleError(f"bad Redis URL {redact_url(url)!r}: must start with redis://, rediss:// or unix://")
    try:
        return aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                                        retry=AsyncRetry(NoBackoff(), 0))
    except ValueError as e:
        raise ConsoleError(f"bad Redis URL {redact_url(url)!r}: {e}") from None


def _check_redis(url: str) -> str | None:
    """None when Redis answers, else why not."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        client.ping()
        client.close()
    except (redis.RedisError, OSError, ValueError) as e:
        return redact_url(str(e).splitlines()[0] if str(e) else type(e).__name__)
    return None


def _listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise ConsoleError(f"--port {port}: must be from 0 to 65535")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as e:  # bind errors carry the errno; name-resolution errors (negative codes) their own text
        why = os.strerror(e.errno) if e.errno and e.errno > 0 else (e.strerror or str(e))
        raise ConsoleError(f"cannot listen on {host}:{port}: {why}") from None


def run_console(url: str, host: str, port: int, forget_after_s: float = 300.0) -> int:
    """Serve until interrupted; raises `ConsoleError` for a user mistake."""
    import uvicorn

    from pipeline.ui.server import build_app
    from pipeline.ui.store import ConsoleStore

    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise ConsoleError(f"--host {host} exposes the console beyond this machine: set {TOKEN_ENV} (a bearer "
                           f"token, also the password of the browser's login prompt) or bind 127.0.0.1")
    client = _client(url)
    sock = _listen(host, port)
    problem = _check_redis(url)
    where = redact_url(url)
    shown = f"[{host}]" if ":" in host else host
    print(f"console on http://{shown}:{sock.getsockname()[1]}/ (redis {where}"
          f"{', token required' if token else ''}); Ctrl-C stops it", file=sys.stderr, flush=True)
    if problem:
        print(f"warning: redis {where} unreachable ({problem}); the page says so and reconnects by itself",
              file=sys.stderr, flush=True)
    if forget_after_s < 0:
        raise ConsoleError(f"--forget-after {forget_after_s:g}: must be 0 or more seconds")
    app = build_app(ConsoleStore(client, forget_after_s=forget_after_s), token)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
