"""``URI``: the test's steps are in a JSON file, on the server's disk or on a web server.

Fetch parameters: ``{"TestName": "<name>", "URI": "<where>"}``. ``URI`` is a path (relative to the
server's working directory, as in ConTest's ``start.json``: ``test_samples/randecho.json``), a
``file://`` URI (host empty or ``localhost``), or an ``http://``/``https://`` URL. The document is
``{"steps": [{"name", "label", "parameters"}, ...]}`` decoded with Go's rules (but an unknown key
is refused, as everywhere in a descriptor); the test's name comes from the parameters, never from
the document.

Differences from ConTest, all so that a bad fetch fails clearly at submission instead of hanging
it or failing later with a confusing message:

* HTTP fetches have a time limit (:data:`DEFAULT_TIMEOUT`, for the whole exchange including
  redirects) and a size limit (:data:`MAX_DOCUMENT_SIZE`); ConTest waits forever;
* an HTTP answer other than 2xx is an error naming the status (ConTest tries to decode the error
  page as a test);
* an ``http``/``https`` URL must name a host, and an empty ``URI`` counts as missing.

What a server lets it read is the operator's choice (see :mod:`contest.hostpolicy`): on
``contest serve``, files only under ``--fetch-root`` (default: the server's working folder;
relative paths are taken there, ``..`` and absolute paths outside it are refused), only regular
files, and URLs only under an ``--allow-fetch-url`` prefix (redirects included). ``contest run``
reads any file and URL.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from contest import hostpolicy
from contest.context import PluginContext
from contest.errors import ContestError, ParameterError
from contest.golang.time import format_duration
from contest.golang.unmarshal import GoStruct
from contest.hostpolicy import HostAccessError
from contest.job.descriptor import decode_steps_document
from contest.paramspec import Parameter, Parameters
from contest.testfetcher import TestFetcher

if TYPE_CHECKING:
    from contest.job.descriptor import StepDescriptor

NAME = "URI"
SUPPORTED_SCHEMES: Final = ("file", "https", "http")
#: Seconds an HTTP(S) fetch may take, start to end.
DEFAULT_TIMEOUT: Final = 30.0
#: Bytes a test document may have; a steps file is a few kilobytes.
MAX_DOCUMENT_SIZE: Final = 16 * 1024 * 1024


class FetchError(ContestError):
    """The test document could not be read, fetched or decoded."""


@dataclass(frozen=True)
class FetchParameters:
    """Validated parameters; ``location`` is the local path (``file``) or the URL (http/https)."""

    test_name: str
    uri: str
    scheme: str
    location: str


class URI(TestFetcher):
    """Steps from a JSON document named by a path or URL.

    ``timeout`` and ``max_size`` bound HTTP(S) fetches (``max_size`` local files too);
    ``transport`` replaces httpx's network transport (tests).
    """

    name = NAME
    fetch_parameters = Parameters(
        Parameter("TestName", doc="the test's name (required, except for cleanup steps)"),
        Parameter(
            "URI",
            required=True,
            doc="a path on the server, a file:// URI, or an http(s):// URL of the steps file",
        ),
        go_struct=True,
    )

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_size: int = MAX_DOCUMENT_SIZE,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_size = max_size
        self._transport = transport

    def validate_fetch_parameters(self, params: Any, require_name: bool = True) -> FetchParameters:
        s = GoStruct(params, "uri.FetchParameters")
        test_name = s.string("TestName")
        uri = s.optional_string("URI")
        if require_name and test_name == "":
            raise ParameterError("TestName: test name cannot be empty for fetch parameters")
        if not uri:
            raise ParameterError("URI: file URI not specified in fetch parameters")
        try:
            parts = urllib.parse.urlsplit(uri)
        except ValueError as exc:
            raise ParameterError(f"URI: invalid URI {uri!r}: {exc}") from None
        scheme = parts.scheme.lower() or "file"
        if scheme not in SUPPORTED_SCHEMES:
            raise ParameterError(f"URI: unsupported scheme {scheme}")
        host = parts.netloc.rpartition("@")[2]
        if scheme == "file":
            if host not in ("", "localhost"):
                raise ParameterError(
                    f"URI: invalid host in URI: '{host}'. Only 'localhost' or empty string are "
                    f"supported for scheme {scheme}"
                )
            path = urllib.parse.unquote(parts.path)
            if path == "":
                raise ParameterError(f"URI: {uri!r} names no file")
            hostpolicy.current().fetch_path("URI", path)
            return FetchParameters(test_name, uri, scheme, path)
        if parts.hostname is None:
            raise ParameterError(f"URI: {uri!r} names no host")
        hostpolicy.current().check_fetch_url("URI", uri)
        return FetchParameters(test_name, uri, scheme, uri)

    async def fetch(self, ctx: PluginContext, params: Any) -> tuple[str, list[StepDescriptor]]:
        fp = params
        if not isinstance(fp, FetchParameters):
            fp = self.validate_fetch_parameters(params, require_name=False)
        ctx.log.debug("Fetching test %r from %s", fp.test_name, fp.uri)
        if fp.scheme == "file":
            # resolved when read, so that a link swapped since validation cannot lead outside
            path = hostpolicy.current().fetch_path("URI", fp.location)
            data = await asyncio.to_thread(self._read_file, fp.location, path)
        else:
            data = await self._get(fp.location)
        steps, errors = decode_steps_document(data)
        if errors:
            detail = "; ".join(str(e) for e in errors)
            raise FetchError(f"cannot decode JSON test description from {fp.uri}: {detail}")
        return fp.test_name, steps

    def _read_file(self, name: str, path: Path) -> bytes:
        try:
            return hostpolicy.read_capped(path, self.max_size)
        except OSError as exc:
            raise FetchError(
                f"cannot read test description '{name}': {exc.strerror or exc}"
            ) from None

    async def _get(self, url: str) -> bytes:
        """GET ``url`` (following redirects) within the time limit; the body, if 2xx."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._get_unbounded(url)
        except TimeoutError:
            raise FetchError(
                f"cannot fetch test description from {url}: "
                f"no complete answer within {format_duration(self.timeout)}"
            ) from None
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__
            raise FetchError(f"cannot fetch test description from {url}: {detail}") from None
        except HostAccessError as exc:
            raise FetchError(f"cannot fetch test description from {url}: {exc}") from None

    async def _get_unbounded(self, url: str) -> bytes:
        policy = hostpolicy.current()

        async def allowed(request: httpx.Request) -> None:
            # every hop of a redirect chain, not only the first URL, must be allowed
            policy.check_fetch_url("URI", str(request.url))

        async with (
            httpx.AsyncClient(
                transport=self._transport,
                follow_redirects=True,
                timeout=self.timeout,
                event_hooks={"request": [allowed]},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if not response.is_success:
                raise FetchError(
                    f"cannot fetch test description from {url}: HTTP {response.status_code} "
                    f"{response.reason_phrase}".rstrip()
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_size:
                    raise FetchError(
                        f"test description at {url} is larger than {self.max_size} bytes"
                    )
            return bytes(body)


def new() -> URI:
    return URI()


def load() -> tuple[str, Callable[[], TestFetcher]]:
    """Entry point of the ``contest.testfetchers`` group."""
    return NAME, new
