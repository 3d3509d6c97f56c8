"""Run one user function: bind its parameters, call it as the Python worker would, log the outcome.

Sync functions run in the host's thread pool (PYTHON_THREADPOOL_THREAD_COUNT, default as the worker's
on Python 3.9+), async ones on the event loop. Every invocation gets an id, carried as a correlation id
into the function's own log lines, and ends with one structured log line: function, invocation id,
trigger, duration, outcome. That line's logger is the real host's category, `Function.<name>`, so
host.json's `logging.logLevel` for `Function` or `Function.<name>` applies to it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions._abc import RetryContext, TraceContext

from devstack.funchost.extension import HostExtension
from devstack.funchost.indexing import HostedFunction
from verbatim.platform.logging import correlation

# Hands an output binding's value to whoever owns that binding type (e.g. queue output -> Azurite).
OutputSink = Callable[[HostedFunction, Mapping[str, Any], Any], Awaitable[None]]


class FunctionNotFound(LookupError):
    pass


def new_invocation_id() -> str:
    """A random (version 4) UUID string; ids need to be unique, not secret, and this is on the hot path."""
    value = random.getrandbits(128)
    value = (value & ~(0xF << 76) | (0x4 << 76)) & ~(0x3 << 62) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class InvocationContext(func.Context):
    """The `context` argument a function may declare, as the Python worker passes it."""

    _thread_local = threading.local

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext(f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00")

    @property
    def retry_context(self) -> RetryContext:
        return _NoRetry()


class _TraceContext(TraceContext):
    def __init__(self, trace_parent: str) -> None:
        self._trace_parent = trace_parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _NoRetry(RetryContext):
    """Retry policies are not run locally: every invocation is the first attempt."""

    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class OutputValue(func.Out[Any]):
    """What a function sets on an output binding parameter."""

    def __init__(self) -> None:
        self._value: Any = None
        self.was_set = False

    def set(self, val: Any) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> Any:
        return self._value


@dataclass(frozen=True)
class _BindingPlan:
    """How to call one function, worked out once: which parameter gets what, where outputs go."""

    trigger: str | None
    inputs: tuple[tuple[str, Mapping[str, Any], HostExtension | None], ...]
    outputs: tuple[str, ...]
    sinks: tuple[tuple[Mapping[str, Any], OutputSink], ...]
    wants_context: bool
    logger: logging.Logger


class Invoker:
    """Binds and runs user functions; the host's `HostServices.invoke` is `Invoker.invoke`."""

    def __init__(
        self,
        functions: Mapping[str, HostedFunction],
        executor: Executor,
        function_directory: str,
        binding_providers: Mapping[str, HostExtension] | None = None,
        output_sinks: Mapping[str, OutputSink] | None = None,
    ) -> None:
        self.functions = functions
        self.executor = executor
        self.function_directory = function_directory
        self.binding_providers = dict(binding_providers or {})
        self.output_sinks = dict(output_sinks or {})
        self._plans = {name: self._plan(function) for name, function in functions.items()}
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def wait_idle(self, within: float) -> bool:
        """Wait until no invocation runs (True), or until `within` seconds passed (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    def _plan(self, function: HostedFunction) -> _BindingPlan:
        inputs, outputs, sinks, bound = [], [], [], set()
        for binding in function.bindings:
            name = binding.get("name")
            sink = self.output_sinks.get(str(binding.get("type")))
            if binding.get("direction") in ("out", "inout") and sink is not None:
                sinks.append((binding, sink))
            if not isinstance(name, str) or name == "$return":
                continue
            bound.add(name)
            if binding is function.trigger:
                continue
            if binding.get("direction") == "in":
                inputs.append((name, binding, self.binding_providers.get(str(binding.get("type")))))
            elif name in function.parameters:
                outputs.append(name)
        trigger_name = function.trigger.get("name")
        return _BindingPlan(
            trigger=trigger_name if isinstance(trigger_name, str) else None,
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            sinks=tuple(sinks),
            wants_context="context" in function.parameters and "context" not in bound,
            logger=logging.getLogger(f"Function.{function.name}"),
        )

    def _arguments(
        self, function: HostedFunction, plan: _BindingPlan, trigger_value: Any, invocation_id: str
    ) -> tuple[dict[str, Any], dict[str, OutputValue]]:
        arguments: dict[str, Any] = {}
        if plan.trigger is not None:
            arguments[plan.trigger] = trigger_value
        for name, binding, provider in plan.inputs:
            arguments[name] = provider.input_binding_value(function, binding) if provider else None
        outputs = {name: OutputValue() for name in plan.outputs}
        arguments.update(outputs)
        if plan.wants_context:
            arguments["context"] = InvocationContext(invocation_id, function.name, self.function_directory)
        return arguments, outputs

    async def invoke(self, function_name: str, trigger_value: Any, invocation_id: str | None = None) -> Any:
        """Run `function_name` with `trigger_value` bound to its trigger parameter; return what it returns."""
        function = self.functions.get(function_name)
        if function is None:
            raise FunctionNotFound(f"no function named {function_name!r}")
        invocation_id = invocation_id or new_invocation_id()
        self._in_flight += 1
        self._idle.clear()
        started = time.perf_counter()
        plan = self._plans[function.name]
        try:
            with correlation(invocation_id=invocation_id):
                arguments, outputs = self._arguments(function, plan, trigger_value, invocation_id)
                if function.is_async:
                    result = await function.handler(**arguments)
                else:
                    call = functools.partial(function.handler, **arguments)
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(self.executor, contextvars.copy_context().run, call)
                if plan.sinks:
                    await self._deliver_outputs(function, plan, outputs, result)
        except BaseException as error:
            outcome = "cancelled" if isinstance(error, asyncio.CancelledError) else "failed"
            plan.logger.error(
                "Executed 'Functions.%s' (%s)",
                function.name,
                outcome.capitalize(),
                extra=self._fields(function, invocation_id, started, outcome),
                exc_info=outcome == "failed",
            )
            raise
        else:
            if plan.logger.isEnabledFor(logging.INFO):
                plan.logger.info(
                    "Executed 'Functions.%s' (Succeeded)",
                    function.name,
                    extra=self._fields(function, invocation_id, started, "succeeded"),
                )
            return result
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    @staticmethod
    def _fields(function: HostedFunction, invocation_id: str, started: float, outcome: str) -> dict[str, Any]:
        return {
            "function": function.name,
            "invocation_id": invocation_id,
            "trigger": function.trigger_type,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "outcome": outcome,
        }

    @staticmethod
    async def _deliver_outputs(
        function: HostedFunction, plan: _BindingPlan, outputs: Mapping[str, OutputValue], result: Any
    ) -> None:
        for binding, sink in plan.sinks:
            name = binding.get("name")
            if name == "$return":
                if result is not None:
                    await sink(function, binding, result)
            elif isinstance(name, str) and name in outputs and outputs[name].was_set:
                await sink(function, binding, outputs[name].get())
