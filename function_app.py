"""Triggers and bindings only; the logic lives in the shared package."""

import azure.functions as func

from shared import bootstrap

app = func.FunctionApp()


@app.function_name("apim_events")
@app.event_grid_trigger(arg_name="event")
def apim_events(event: func.EventGridEvent) -> None:
    # The library hands over a func.CloudEvent instead when the payload has `specversion`.
    bootstrap.processor().handle(event)
