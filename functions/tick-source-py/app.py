"""A source function (world `source`) for tests: each run emits `count`
(config, default 1) events of type `com.example.source.tick` whose JSON data
is their index and the run number, kept in the state."""

from sluice_guest import Event, RunOutput, source


@source
def run(config: dict, state: bytes | None) -> RunOutput:
    runs = int(state or b"0")
    events = [
        Event.builder("com.example.source.tick")
        .extension("lang", "python")
        .json({"index": i, "run": runs})
        .build()
        for i in range(int(config.get("count", "1")))
    ]
    return RunOutput(events, state=str(runs + 1).encode())
