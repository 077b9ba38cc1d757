"""The test fetcher contract: where a test's steps come from."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

from contest.context import PluginContext
from contest.paramspec import Parameters

if TYPE_CHECKING:
    from contest.job.descriptor import StepDescriptor

__all__ = ["TestFetcher"]


class TestFetcher(abc.ABC):
    """Turns ``TestFetcherFetchParameters`` into a test name and its step descriptors.

    It is called once, at submission: the fetched steps are stored with the job (its extended
    descriptor), so a resumed or inspected job never fetches again.

    ``fetch_parameters`` declares the parameters' keys (see :mod:`contest.paramspec`); the job
    builder checks a descriptor against them first. ``None``: not declared.
    """

    __test__ = False
    fetch_parameters: ClassVar[Parameters | None] = None

    @abc.abstractmethod
    def validate_fetch_parameters(self, params: Any, require_name: bool = True) -> Any:
        """Check the (decoded JSON) parameters; raise ``ParameterError``; return the parsed form."""

    @abc.abstractmethod
    async def fetch(self, ctx: PluginContext, params: Any) -> tuple[str, list[StepDescriptor]]: ...
