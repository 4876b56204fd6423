"""The fields the usage table needs, as msgspec Structs: msgspec decodes into them and skips the rest of a record (its
annotations are evaluated by msgspec at run time, so this module does without postponed annotations). Imported only
where msgspec is installed: the benchmark installs it, the app does not depend on it."""

import msgspec


class Properties(msgspec.Struct):  # type: ignore[misc]  # Any where msgspec is not installed (make lint)
    responseCode: int | None = None
    backendResponseCode: int | None = None
    apiId: str | None = None
    operationId: str | None = None
    productId: str | None = None
    apimSubscriptionId: str | None = None
    userId: str | None = None
    backendId: str | None = None
    lastError: dict[str, object] | None = None  # present on errors: a backend failure when backendResponseCode is absent


class Record(msgspec.Struct):  # type: ignore[misc]
    time: str | None = None
    resourceId: str | None = None
    durationMs: float | None = None
    properties: Properties | None = None


DECODER = msgspec.json.Decoder(Record)
