"""The server's settings and its defences: key, Host header, CORS, where it may bind.

Defaults are the safe ones: loopback only, a key on every ``/v1`` request, no CORS. Binding to
any other address needs ``allow_network=True`` (the CLI's ``--allow-network``) and a key; the
Host header must name this machine as the client reached it, so a web page that rebinds its
own domain to 127.0.0.1 (DNS rebinding) is refused before it reaches the model.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from engine.errors import InvalidConfigError
from engine.server.errors import APIError, unauthorized

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MAX_BODY_BYTES = 4 * 1024 * 1024  # a long prompt is ~1 MB of text; 4 MB leaves room for JSON escaping


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str = ""
    allow_network: bool = False  # required for any non-loopback address
    cors_origins: tuple[str, ...] = ()  # no CORS headers at all unless origins are listed
    allowed_hosts: tuple[str, ...] = ()  # extra Host names accepted (a LAN name, when serving the network)
    max_body_bytes: int = MAX_BODY_BYTES
    max_queue: int = 64

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidConfigError(f"port must be between 1 and 65535 (0: any free port), not {self.port}")
        if not self.api_key:
            raise InvalidConfigError("The server needs an API key: every request must carry it.")
        if not is_loopback(self.host):
            if not self.allow_network:
                raise InvalidConfigError(
                    f"Binding to {self.host} makes the model reachable from other machines. Use 127.0.0.1, or "
                    "say so explicitly (--allow-network, or 'Serve the network' in the app).")
        if self.max_body_bytes < 1024:
            raise InvalidConfigError("max_body_bytes must be at least 1024")
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))

    @property
    def warning(self) -> str:
        """A sentence to show when the server is reachable from other machines ('' on loopback)."""
        if is_loopback(self.host):
            return ""
        return (f"The server listens on {self.host}: anyone who can reach this machine on port {self.port} and "
                "knows the key can use the model. Traffic is not encrypted (plain HTTP).")

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_key() -> str:
    return "hearth-" + secrets.token_urlsafe(24)


def check_key(authorization: str | None, key: str) -> None:
    """``Authorization: Bearer <key>``, compared in constant time."""
    if not authorization:
        raise unauthorized("Missing API key: send it as 'Authorization: Bearer <key>'. The key is shown in "
                           "Hearth's Server view, or printed by 'hearth-cli serve'.")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
        raise unauthorized("Incorrect API key provided.")


def host_allowed(host_header: str | None, config: ServerConfig) -> bool:
    """Is the Host header a name this server answers to? (The DNS-rebinding defence.)"""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8080
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name in LOOPBACK_NAMES or name in config.allowed_hosts or name == config.host.lower():
        return True
    if is_loopback(name):
        return True
    # Serving the network on a wildcard address: the key is the defence; names can't be known here.
    return config.host in ("0.0.0.0", "::") and not config.allowed_hosts


def bad_host(host_header: str | None) -> APIError:
    return APIError(400, f"Invalid Host header {host_header!r}: this server answers only to its own address "
                         "(a protection against DNS rebinding).", code="invalid_host")
