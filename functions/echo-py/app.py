"""Replies with the event it received, its `type` suffixed with `.echoed`.
Everything else (id, source, extensions, data) is kept as it came; the
Python twin of functions/echo."""

from sluice_guest import Event, handler


@handler
def handle(event: Event) -> Event:
    return event.to_builder().type(f"{event.type}.echoed").build()
