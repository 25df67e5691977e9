"""Misbehaves on purpose, for the host's isolation tests, by event type:
`raise` raises ValueError, `spin` loops forever (the CPU deadline must stop
it), `hog` allocates without bound (the memory cap must stop it), `log`
logs one record and consumes the event."""

from sluice_guest import Event, handler, log


@handler
def handle(event: Event):
    if event.type == "raise":
        raise ValueError(f"misbehave-py refused {event.id}")
    if event.type == "spin":
        n = 0
        while True:
            n += len(event.id)
    if event.type == "hog":
        hoard = []
        while True:
            hoard.append(bytearray(b"\xa5" * (1 << 20)))
    if event.type == "log":
        log.warn(f"misbehave-py logged {event.id}")
        return None
    return event
