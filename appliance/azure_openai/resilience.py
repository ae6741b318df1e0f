"""Calling Azure OpenAI without hammering it or hanging on it.

Every call has a timeout (the client's). A 429 is honoured: a short Retry-After is
waited for once, a long one marks the service busy until then. 5xx answers and
connection errors are retried a few times with jittered exponential backoff; after
``circuit_failures`` failed calls in a row the circuit opens and calls are refused
outright for ``circuit_open_s``, then one trial call is let through. Nothing retries
without bound, and a refused call costs nothing.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from appliance.azure_openai.settings import AzureSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class AzureUnavailableError(RuntimeError):
    """Azure cannot be used now; ``retry_after`` seconds until it may; ``permanent`` when
    only a configuration change helps (bad key, unknown deployment)."""

    def __init__(
        self, problem: str, retry_after: float | None = None, *, permanent: bool = False
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after
        self.permanent = permanent


def retry_after_seconds(headers: Any, now: Callable[[], float] = time.time) -> float | None:
    """Azure sends ``retry-after-ms`` and/or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class CircuitBreaker:
    def __init__(self, failures: int, open_s: float, clock: Callable[[], float]) -> None:
        self.threshold = failures
        self.open_s = open_s
        self._clock = clock
        self.consecutive = 0
        self.open_until = 0.0

    def check(self) -> float:
        """0 when a call may go ahead, else seconds until it may."""
        return float(max(0.0, self.open_until - self._clock()))

    def success(self) -> None:
        self.consecutive = 0
        self.open_until = 0.0

    def failure(self) -> None:
        self.consecutive += 1
        if self.consecutive >= self.threshold:
            self.open_until = self._clock() + self.open_s
            log.warning(
                "Azure circuit open for %.0f s after %d failures", self.open_s, self.consecutive
            )

    def trip(self, seconds: float) -> None:
        self.open_until = self._clock() + seconds


class AzureCaller:
    """Runs calls to Azure under the policy above. Thread-safe."""

    def __init__(
        self,
        settings: AzureSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        self.breaker = CircuitBreaker(settings.circuit_failures, settings.circuit_open_s, clock)
        self.busy_until = 0.0
        self.calls = 0
        self.last_problem: str | None = None

    def unavailable_for(self) -> float:
        """0 when a call may be made now, else seconds to wait."""
        with self._lock:
            return float(max(self.breaker.check(), self.busy_until - self._clock(), 0.0))

    def _backoff(self, attempt: int) -> float:
        return float(min(8.0, 0.25 * 2**attempt) * (0.5 + self._jitter()))

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` under the retry policy; raises ``AzureUnavailableError``."""
        import openai

        wait = self.unavailable_for()
        if wait > 0:
            raise AzureUnavailableError(
                self.last_problem or "Azure is not being called for now", retry_after=wait
            )
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            self.calls += 1
            try:
                result = fn()
            except openai.RateLimitError as exc:
                asked = retry_after_seconds(exc.response.headers)
                delay = asked if asked is not None else self._backoff(attempt)
                if delay <= self.settings.max_retry_wait_s and attempt + 1 < attempts:
                    log.info("Azure %s: rate limited, retrying in %.1f s", what, delay)
                    self._sleep(delay)
                    continue
                with self._lock:
                    self.busy_until = self._clock() + delay
                self.last_problem = f"Azure is rate limiting (retry in {delay:.0f} s)"
                raise AzureUnavailableError(self.last_problem, retry_after=delay) from exc
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                self._fail_permanently(f"Azure refused the key for {what} ({exc.status_code})")
                raise AzureUnavailableError(self.last_problem or "", permanent=True) from exc
            except openai.NotFoundError as exc:
                self._fail_permanently(f"Azure deployment for {what} not found (404)")
                raise AzureUnavailableError(self.last_problem or "", permanent=True) from exc
            except (
                openai.APIConnectionError,
                openai.InternalServerError,
                openai.APIStatusError,
                openai.APIError,
                ValueError,
            ) as exc:
                # ValueError: a malformed answer (bad JSON in a stream chunk).
                retriable = not isinstance(exc, openai.APIStatusError) or exc.status_code >= 500
                problem = f"Azure {what} failed: {type(exc).__name__}: {exc}"
                if retriable and attempt + 1 < attempts:
                    backoff = self._backoff(attempt)
                    log.info("%s; retrying in %.2f s", problem, backoff)
                    self._sleep(backoff)
                    continue
                self.record_failure(problem)
                raise AzureUnavailableError(
                    problem, retry_after=self.breaker.check() or None
                ) from exc
            self.record_success()
            return result
        raise AssertionError("unreachable")

    def record_success(self) -> None:
        with self._lock:
            self.breaker.success()
            self.last_problem = None

    def record_failure(self, problem: str) -> None:
        with self._lock:
            self.last_problem = problem
            self.breaker.failure()

    def _fail_permanently(self, problem: str) -> None:
        log.error("%s: check azure.endpoint, azure.deployment and the key", problem)
        with self._lock:
            self.last_problem = problem
            # A bad key stays bad: stop calling for a long while (a config change restarts us).
            self.breaker.trip(max(self.settings.circuit_open_s, 600.0))


def make_client(settings: AzureSettings) -> Any:
    """The official client, with its own retries off (ours apply) and our timeout."""
    from openai import AzureOpenAI

    if not settings.endpoint:
        raise ValueError("azure.endpoint is not set")
    return AzureOpenAI(
        azure_endpoint=settings.endpoint,
        api_key=settings.resolved_key(),
        api_version=settings.api_version,
        max_retries=0,
        timeout=settings.timeout_s,
    )
