"""{{name}}: a Sluice handler. It replies to every event with a copy whose
type is suffixed with `.handled`, and logs through the host."""

from sluice_guest import Event, handler, log


@handler
def handle(event: Event) -> Event | None:
    log.info(f"{{name}} got {event.id}")
    return event.to_builder().type(f"{event.type}.handled").build()
