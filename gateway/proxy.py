"""Forwarding to facility containers: pooled keep-alive connections and streamed bodies.

One requests.Session per upstream, each with its own urllib3 connection pool (thread-safe), so the
gateway's worker threads share warm keep-alive connections to every facility. Bodies travel in
fixed-size chunks in both directions: memory per request stays flat whatever the body's size.

A request is prepared by requests (URL encoding, header checks, body framing) and sent through the
session adapter's urllib3 pool directly: requests' own send and response wrapping (connection
lookup by URL, cookie extraction, a Response object per request) cost more CPU than the rest of
the forwarding, and the gateway uses none of it.
"""

import http.cookiejar
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ClosedPoolError,
    InvalidHeader,
    MaxRetryError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from . import accesslog
from .errors import (
    BadGateway,
    FacilityUnavailable,
    PayloadTooLarge,
    UpstreamAborted,
    UpstreamTimeout,
)

CHUNK = 64 * 1024
# Bodies up to this size are read whole before forwarding: cheaper than chunking, and bounded.
SMALL_BODY = 64 * 1024


class _StaleConnectionRetry(Retry):
    """Retry a safe request once when a pooled connection turns out closed, never after a timeout.

    A keep-alive connection the facility closed just as it was reused fails with a protocol error;
    one retry on a fresh connection hides that race. A timeout is passed on at once (504).
    """

    def increment(self, method=None, url=None, response=None, error=None, **kwargs):
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response=response, error=error, **kwargs)


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    # forward() hands prepared requests straight to the adapter's pool, so none of the session's
    # settings apply; they are disarmed anyway, in case anyone ever calls session.request():
    # no proxies or ~/.netrc credentials, no default headers, and above all no cookie jar that
    # could carry one user's cookies into another user's request.
    session.trust_env = False
    session.headers.clear()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    retry = _StaleConnectionRetry(
        total=1, connect=0, read=1, redirect=0, status=0, other=0,
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}), raise_on_status=False,
    )  # fmt: skip
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=retry)
    session.mount("http://", adapter)
    return session


@dataclass(frozen=True)
class Channel:
    """A facility's keep-alive connections: its session, whose adapter holds the urllib3 pool."""

    session: requests.Session
    adapter: HTTPAdapter
    pool: urllib3.HTTPConnectionPool


class UpstreamPool:
    """One keep-alive Session per upstream origin, made on first use, dropped with its route."""

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self._channels: dict[str, Channel] = {}
        self._lock = threading.Lock()

    def channel(self, upstream: str) -> Channel:
        channel = self._channels.get(upstream)
        if channel is None:
            with self._lock:
                channel = self._channels.get(upstream)
                if channel is None:
                    channel = self._channels[upstream] = _new_channel(upstream, self.pool_size)
        return channel

    def keep_only(self, upstreams: Iterable[str]) -> None:
        """Close the pools of upstreams that left the routing table (deleted facilities)."""
        keep = set(upstreams)
        with self._lock:
            gone = [u for u in self._channels if u not in keep]
            closing = [self._channels.pop(u) for u in gone]
        for channel in closing:
            channel.session.close()


def _new_channel(upstream: str, pool_size: int) -> Channel:
    session = _new_session(pool_size)
    adapter = session.get_adapter(upstream)
    # The adapter's pool manager keeps one pool (pool_connections=1) and this session only ever
    # talks to one origin, so the pool looked up once stays the adapter's pool for good.
    return Channel(session, adapter, adapter.poolmanager.connection_from_url(upstream))


class CountingBody:
    """A request body streamed from the client, counted and cut off at the gateway's limit.

    With a known length it exposes `len`, so requests sends Content-Length rather than chunks.
    """

    def __init__(self, stream, limit: int, length: int | None, record: accesslog.AccessRecord):
        self._stream = stream
        self._limit = limit
        self._record = record
        if length is not None:
            self.len = length

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self._stream.read(CHUNK)
            if not chunk:
                return
            self._record.bytes_in += len(chunk)
            if self._record.bytes_in > self._limit:
                raise PayloadTooLarge()
            yield chunk


class ResponseBody:
    """A facility's response body, streamed chunk by chunk; closing it releases the connection."""

    def __init__(self, response: urllib3.BaseHTTPResponse, record: accesslog.AccessRecord):
        self._response = response
        self._record = record

    def __iter__(self) -> Iterator[bytes]:
        try:
            # decode_content=False: compressed bodies pass through as sent, with Content-Encoding.
            for chunk in self._response.stream(CHUNK, decode_content=False):
                self._record.bytes_out += len(chunk)
                yield chunk
        except (urllib3.exceptions.HTTPError, OSError) as e:
            accesslog.event("upstream_aborted", logging.WARNING, error=type(e).__name__)
            # Raising (rather than ending quietly) makes the server drop the client connection, so
            # a truncated body can never look complete to the client.
            raise UpstreamAborted() from None

    def close(self) -> None:
        # Also reached when the body was never iterated (HEAD, client gone). As requests' close():
        # a body read to its end has already given its connection back to the pool; otherwise
        # the connection is closed (it still holds unread bytes) and its slot released.
        self._response.close()
        self._response.release_conn()


@dataclass
class Upstream:
    """A facility's answer: status and headers now, the body to stream afterwards."""

    status: int
    headers: list[tuple[str, str]]
    body: ResponseBody


def forward(
    channel: Channel,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | CountingBody | None,
    timeout: tuple[float, float],
    record: accesslog.AccessRecord,
) -> Upstream:
    """Send one request to a facility and return its response with a streaming body."""
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    prepared.prepare_url(url, None)
    prepared.prepare_headers(headers)
    prepared.prepare_body(body, None)
    # Exactly what HTTPAdapter.send() passes to urllib3; the errors are mapped as requests would
    # have translated them (ConnectionError 503, ConnectTimeout 503, ReadTimeout 504, others 502).
    try:
        response = channel.pool.urlopen(
            method=prepared.method,
            url=prepared.path_url,
            body=prepared.body,
            headers=prepared.headers,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
            retries=channel.adapter.max_retries,
            timeout=Timeout(connect=timeout[0], read=timeout[1]),
            chunked=not (prepared.body is None or "Content-Length" in prepared.headers),
        )
    except (ProtocolError, OSError, ClosedPoolError) as e:
        raise FacilityUnavailable() from e  # not answering, or the connection broke
    except MaxRetryError as e:
        if isinstance(e.reason, ResponseError):
            raise BadGateway() from e
        raise FacilityUnavailable() from e  # refused, or no connection within the connect timeout
    except ReadTimeoutError as e:
        raise UpstreamTimeout() from e
    except InvalidHeader as e:
        raise BadGateway() from e
    return Upstream(
        status=response.status,
        headers=list(response.headers.items()),
        body=ResponseBody(response, record),
    )
