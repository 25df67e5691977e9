"""Write Sluice CloudEvent handlers in Python.

A handler is a function that takes an :class:`Event` and returns the reply
(an :class:`Event`), or ``None`` to consume the event; register it with
:func:`handler`. Raise :class:`HandlerError` to fail the invocation with a
reason (the host answers 422 with it, like a Rust ``Err``); any other
exception traps the invocation like a Rust panic (500, with the exception's
last traceback line). Either way the trigger's delivery rules apply. Build with ``componentize-py`` against Sluice's
``wit/`` files (``sluice build`` does it)::

    from sluice_guest import Event, handler, log

    @handler
    def handle(event: Event) -> Event | None:
        log.info(f"got {event.type}")
        order = event.json()
        return (event.to_builder()
                .type("com.example.order.priced")
                .json({"total": order["qty"] * 2.5})
                .build())

Source functions (world ``source``) register with :func:`source` instead.

The bindings that ``componentize-py`` generates (``wit_world``) are only
imported when the host calls in, so this module also imports in plain
CPython, e.g. to unit-test a handler's logic.
"""

from __future__ import annotations

import json as _json
import os
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

__all__ = [
    "Event",
    "EventBuilder",
    "HandlerError",
    "RunOutput",
    "handler",
    "source",
    "log",
]

#: The value of an extension attribute: Sluice keeps strings, booleans and
#: integers apart (the three types the CloudEvents JSON format tells apart).
ExtensionValue = Union[str, bool, int]


class HandlerError(Exception):
    """Fails the invocation with ``message``; it reaches the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Event:
    """One CloudEvent: context attributes, extensions, and data as bytes."""

    __slots__ = (
        "id",
        "source",
        "type",
        "specversion",
        "datacontenttype",
        "dataschema",
        "subject",
        "time",
        "extensions",
        "data",
    )

    def __init__(
        self,
        id: str = "",
        source: str = "",
        type: str = "",
        specversion: str = "1.0",
        datacontenttype: Optional[str] = None,
        dataschema: Optional[str] = None,
        subject: Optional[str] = None,
        time: Optional[str] = None,
        extensions: Optional[Dict[str, ExtensionValue]] = None,
        data: Optional[bytes] = None,
    ) -> None:
        self.id = id
        self.source = source
        self.type = type
        self.specversion = specversion
        self.datacontenttype = datacontenttype
        self.dataschema = dataschema
        self.subject = subject
        self.time = time
        #: Extension attributes by (lower-case) name, in order.
        self.extensions: Dict[str, ExtensionValue] = dict(extensions or {})
        #: The payload, byte for byte (``None`` when the event has none).
        self.data = data

    def json(self) -> Any:
        """The data parsed as JSON; :class:`HandlerError` when it is not."""
        if self.data is None:
            raise HandlerError("invalid JSON data: the event has no data")
        try:
            return _json.loads(self.data)
        except ValueError as e:
            raise HandlerError(f"invalid JSON data: {e}") from None

    def text(self) -> str:
        """The data decoded as UTF-8 (empty when there is none)."""
        return (self.data or b"").decode("utf-8")

    def to_builder(self) -> "EventBuilder":
        """A builder starting from a copy of this event, for the reply."""
        return EventBuilder(self)

    @staticmethod
    def builder(type: str, source: str = "", id: str = "") -> "EventBuilder":
        """A builder for a new event (empty ``id``/``source`` are filled
        in by the host for source functions)."""
        return EventBuilder(Event(id=id, source=source, type=type))

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, source={self.source!r}, type={self.type!r})"

    # Conversions from and to the generated bindings.

    @classmethod
    def _from_wit(cls, raw: Any) -> "Event":
        return cls(
            id=raw.id,
            source=raw.source,
            type=raw.type,
            specversion=raw.specversion,
            datacontenttype=raw.datacontenttype,
            dataschema=raw.dataschema,
            subject=raw.subject,
            time=raw.time,
            extensions={name: value.value for name, value in raw.extensions},
            data=raw.data,
        )

    def _to_wit(self) -> Any:
        from wit_world.imports import types

        exts: List[Tuple[str, Any]] = []
        for name, value in self.extensions.items():
            if isinstance(value, bool):
                exts.append((name, types.ExtensionValue_Boolean(value)))
            elif isinstance(value, int):
                exts.append((name, types.ExtensionValue_Integer(value)))
            else:
                exts.append((name, types.ExtensionValue_String(str(value))))
        data = self.data
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        return types.Event(
            id=self.id,
            source=self.source,
            type=self.type,
            specversion=self.specversion,
            datacontenttype=self.datacontenttype,
            dataschema=self.dataschema,
            subject=self.subject,
            time=self.time,
            extensions=exts,
            data=data,
        )


class EventBuilder:
    """Chained setters for a reply; :meth:`build` checks and returns it."""

    def __init__(self, base: Event) -> None:
        self._e = Event(
            id=base.id,
            source=base.source,
            type=base.type,
            specversion=base.specversion,
            datacontenttype=base.datacontenttype,
            dataschema=base.dataschema,
            subject=base.subject,
            time=base.time,
            extensions=base.extensions,
            data=base.data,
        )

    def id(self, value: str) -> "EventBuilder":
        self._e.id = value
        return self

    def source(self, value: str) -> "EventBuilder":
        self._e.source = value
        return self

    def type(self, value: str) -> "EventBuilder":
        self._e.type = value
        return self

    def subject(self, value: Optional[str]) -> "EventBuilder":
        self._e.subject = value
        return self

    def time(self, value: Optional[str]) -> "EventBuilder":
        self._e.time = value
        return self

    def dataschema(self, value: Optional[str]) -> "EventBuilder":
        self._e.dataschema = value
        return self

    def extension(self, name: str, value: Optional[ExtensionValue]) -> "EventBuilder":
        """Set extension ``name`` (``None`` removes it)."""
        if value is None:
            self._e.extensions.pop(name, None)
        else:
            self._e.extensions[name] = value
        return self

    def data(self, data: Optional[bytes], content_type: Optional[str] = None) -> "EventBuilder":
        """Raw data, with its media type (kept as it was when ``None``)."""
        self._e.data = data
        if content_type is not None:
            self._e.datacontenttype = content_type
        return self

    def text(self, text: str, content_type: str = "text/plain") -> "EventBuilder":
        return self.data(text.encode("utf-8"), content_type)

    def json(self, value: Any) -> "EventBuilder":
        """``value`` as compact JSON data, ``datacontenttype`` JSON."""
        body = _json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return self.data(body.encode("utf-8"), "application/json")

    def build(self) -> Event:
        """The event; :class:`HandlerError` if a required attribute is empty."""
        e = self._e
        if not e.type:
            raise HandlerError("invalid reply: `type` must not be empty")
        for name in e.extensions:
            if not name or not all(c.isascii() and (c.islower() or c.isdigit()) for c in name):
                raise HandlerError(
                    f"invalid reply: extension name {name!r} must be lower-case a-z0-9"
                )
        return e


class RunOutput:
    """What one run of a source function produced: events to emit, and the
    state for the next run (``None`` keeps the current state)."""

    def __init__(self, events: List[Event], state: Optional[bytes] = None) -> None:
        self.events = events
        self.state = state


def _trap() -> None:
    """Trap the invocation like a Rust panic: the traceback goes to stderr
    (the host log, whose last lines explain a trap), then ``abort()`` traps
    without another word, so the exception's own line is the reason's
    last. (Letting the exception escape would trap too, but
    componentize-py's runtime then writes its own panic message last.)"""
    traceback.print_exc()
    sys.stderr.flush()
    os.abort()


def _err(message: str) -> BaseException:
    from componentize_py_types import Err
    from wit_world.imports import types

    return Err(types.HandlerError(message))


def handler(fn: Callable[[Event], Optional[Event]]) -> Callable[[Event], Optional[Event]]:
    """Register ``fn`` as the component's handler (world ``handler``).

    A :class:`HandlerError` fails the invocation with its message (like a
    Rust handler's ``Err``); any other exception traps it, like a Rust
    panic, its traceback going to the host log and its last line
    (``ValueError: ...``) into the trap's reason.
    """
    module = sys.modules[fn.__module__]

    class WitWorld:
        def handle(self, event: Any) -> Any:
            try:
                reply = fn(Event._from_wit(event))
                if reply is not None and not isinstance(reply, Event):
                    raise HandlerError(
                        f"the handler returned {type(reply).__name__}, not an Event or None"
                    )
                return None if reply is None else reply._to_wit()
            except HandlerError as e:
                raise _err(e.message) from None
            except BaseException:
                _trap()

    module.WitWorld = WitWorld  # type: ignore[attr-defined]
    return fn


def source(
    fn: Callable[[Dict[str, str], Optional[bytes]], Union[RunOutput, List[Event]]],
) -> Callable[[Dict[str, str], Optional[bytes]], Union[RunOutput, List[Event]]]:
    """Register ``fn(config, state)`` as the component's source run (world
    ``source``). It returns a :class:`RunOutput` or a list of events."""
    module = sys.modules[fn.__module__]

    class WitWorld:
        def run(self, config: Any, state: Any) -> Any:
            from componentize_py_types import Err
            from wit_world.imports import source_types

            try:
                out = fn(dict(config), state)
                if isinstance(out, list):
                    out = RunOutput(out)
                return source_types.RunOutput(
                    events=[e._to_wit() for e in out.events], state=out.state
                )
            except HandlerError as e:
                raise Err(source_types.SourceError(e.message)) from None
            except BaseException:
                _trap()

    module.WitWorld = WitWorld  # type: ignore[attr-defined]
    return fn


class _Log:
    """Records into the host log, tagged with the function and event id."""

    @staticmethod
    def _write(level: str, message: str) -> None:
        from wit_world.imports import log as wit_log

        wit_log.log(getattr(wit_log.Level, level), str(message))

    def trace(self, message: str) -> None:
        self._write("TRACE", message)

    def debug(self, message: str) -> None:
        self._write("DEBUG", message)

    def info(self, message: str) -> None:
        self._write("INFO", message)

    def warn(self, message: str) -> None:
        self._write("WARN", message)

    def error(self, message: str) -> None:
        self._write("ERROR", message)


#: Host logging: ``log.info("...")``, also ``trace``, ``debug``, ``warn``,
#: ``error``.
log = _Log()
