"""Triggers and bindings only; the logic lives in the shared package."""

import azure.functions as func

from shared import bootstrap, logs
from shared.entrypoints import http_api, http_expiry, http_keys, http_pages, http_usage, openapi, page_overview, page_reports, page_resource, streams

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)  # key-protected unless a page (guarded by the app itself)
# host.json sets routePrefix "": the JSON API lives under api/, the pages under ui/ (App Service Authentication tells them apart)
_settings = bootstrap.app_settings()  # schedules are read when the worker indexes the app; the services reuse this reading


@app.function_name("apim_events")
@app.event_grid_trigger(arg_name="event")
def apim_events(event: func.EventGridEvent) -> None:
    # The library hands over a func.CloudEvent instead when the payload has `specversion`.
    with logs.invocation("apim_events") as outcomes:  # one summary line per invocation, also when it raises
        outcomes[bootstrap.services().processor.handle(event).outcome.value] += 1


@app.function_name("gateway_token_sweep")
@app.timer_trigger(schedule=_settings.token_sweep_schedule, arg_name="timer")
def gateway_token_sweep(timer: func.TimerRequest) -> None:
    bootstrap.services().sweeper.sweep_gateway_tokens()


@app.function_name("circuit_breaker_sweep")
@app.timer_trigger(schedule=_settings.breaker_sweep_schedule, arg_name="timer")
def circuit_breaker_sweep(timer: func.TimerRequest) -> None:
    bootstrap.services().sweeper.sweep_circuit_breakers()


@app.function_name("reconcile")
@app.timer_trigger(schedule=_settings.reconcile_schedule, arg_name="timer")
def reconcile(timer: func.TimerRequest) -> None:
    bootstrap.services().reconciler.run()


@app.route(route="api/inventory/{kind}", methods=["GET"])
def inventory(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.list_inventory(req, bootstrap.services().queries)


@app.route(route="api/resource", methods=["GET"])
def resource(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.get_resource(req, bootstrap.services().queries)


@app.route(route="api/history", methods=["GET"])
def history(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.get_history(req, bootstrap.services().queries)


@app.route(route="api/changes", methods=["GET"])
def changes(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.get_changes(req, bootstrap.services().queries)


@app.route(route="api/access", methods=["GET"])
def access(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.get_access(req, bootstrap.services().queries)


@app.route(route="api/flags", methods=["GET"])
def flags(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.get_flags(req, bootstrap.services().queries)


@app.route(route="api/summary", methods=["GET"])
def summary(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.get_summary(req, bootstrap.services().queries)


@app.route(route="api/expiring", methods=["GET"])
def expiring(req: func.HttpRequest) -> func.HttpResponse:
    return http_expiry.get_expiring(req, bootstrap.services().store, bootstrap.services().clock)


@app.route(route="api/alerts", methods=["GET"])
def alerts(req: func.HttpRequest) -> func.HttpResponse:
    return http_expiry.get_alerts(req, bootstrap.services().store, bootstrap.services().clock)


@app.route(route="api/usage", methods=["GET"])
def usage(req: func.HttpRequest) -> func.HttpResponse:
    return http_usage.get_usage(req, bootstrap.services().queries, bootstrap.services().store)


@app.route(route="api/unused", methods=["GET"])
def unused(req: func.HttpRequest) -> func.HttpResponse:
    return http_usage.get_unused(req, bootstrap.services().queries, bootstrap.services().store)


@app.route(route="api/requests", methods=["GET"])
def requests(req: func.HttpRequest) -> func.HttpResponse:
    return http_usage.get_requests(req, bootstrap.services().queries, bootstrap.services().store)


@app.route(route="api/keys", methods=["GET"])
def keys(req: func.HttpRequest) -> func.HttpResponse:
    return http_keys.get_keys(req, bootstrap.services().queries, bootstrap.services().store)


@app.function_name("health")
@app.route(route="api/health", methods=["GET"])
def health_check(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.get_health(req, bootstrap.health_report)


@app.timer_trigger(schedule=_settings.count_snapshot_schedule, arg_name="timer")
def count_snapshots(timer: func.TimerRequest) -> None:
    bootstrap.take_count_snapshots()


@app.function_name("purge")
@app.timer_trigger(schedule=_settings.purge_schedule, arg_name="timer")
def purge(timer: func.TimerRequest) -> None:
    bootstrap.services().purger.run()


@app.function_name("gateway_logs")
@app.timer_trigger(schedule=_settings.gateway_logs_schedule, arg_name="timer")
def gateway_logs(timer: func.TimerRequest) -> None:
    bootstrap.ingest(bootstrap.process_gateway_logs())  # None when GATEWAY_LOGS_STORAGE is not set: nothing to read


@app.function_name("activity_logs")
@app.timer_trigger(schedule=_settings.activity_logs_schedule, arg_name="timer")
def activity_logs(timer: func.TimerRequest) -> None:
    bootstrap.ingest(bootstrap.process_activity_logs())  # None when ACTIVITY_LOGS_STORAGE is not set: nothing to read

# Event Hubs moves a partition's checkpoint on whatever the function does; a retry policy holds it until the call
# succeeds (Microsoft: "Event Hubs checkpoints aren't written until after the retry policy ... has completed").
@app.function_name("gateway_logs_stream")
@app.retry(strategy="exponential_backoff", max_retry_count="-1", minimum_interval="00:00:05", maximum_interval="00:05:00")
@app.event_hub_message_trigger(arg_name="events", connection="GATEWAY_LOGS_EVENTHUB_CONNECTION", event_hub_name="%GATEWAY_LOGS_EVENTHUB%",
                               cardinality=func.Cardinality.MANY, consumer_group="%LOGS_EVENTHUB_CONSUMER_GROUP%")
def gateway_logs_stream(events: list[func.EventHubEvent]) -> None:
    streams.take(events, bootstrap.process_gateway_log_stream(), _settings.logs_eventhub_namespace)


@app.function_name("activity_logs_stream")
@app.retry(strategy="exponential_backoff", max_retry_count="-1", minimum_interval="00:00:05", maximum_interval="00:05:00")
@app.event_hub_message_trigger(arg_name="events", connection="ACTIVITY_LOGS_EVENTHUB_CONNECTION", event_hub_name="%ACTIVITY_LOGS_EVENTHUB%",
                               cardinality=func.Cardinality.MANY, consumer_group="%LOGS_EVENTHUB_CONSUMER_GROUP%")
def activity_logs_stream(events: list[func.EventHubEvent]) -> None:
    streams.take(events, bootstrap.process_activity_log_stream(), _settings.logs_eventhub_namespace)


@app.function_name("openapi")
@app.route(route="api/openapi.json", methods=["GET"])
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return openapi.get_openapi(req)


@app.function_name("ui_whoami")
@app.route(route="ui/whoami", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)  # the app refuses it without sign-in
def ui_whoami(req: func.HttpRequest) -> func.HttpResponse:
    return http_pages.whoami(req)


@app.function_name("ui_overview")
@app.route(route="ui/overview", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)  # the app refuses it without sign-in
def ui_overview(req: func.HttpRequest) -> func.HttpResponse:
    return page_overview.overview(req, bootstrap.services().queries, bootstrap.services().store, bootstrap.health_report)


@app.function_name("ui_report")
@app.route(route="ui/report", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_report(req: func.HttpRequest) -> func.HttpResponse:
    return page_reports.report(req, bootstrap.services().queries, bootstrap.services().store)


@app.function_name("ui_resource")
@app.route(route="ui/resource", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_resource(req: func.HttpRequest) -> func.HttpResponse:
    return page_resource.resource(req, bootstrap.services().queries, bootstrap.services().store)


@app.function_name("ui_static")
@app.route(route="ui/static/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)  # the stylesheet and the script
def ui_static(req: func.HttpRequest) -> func.HttpResponse:
    return http_pages.static(req)
