"""The command's exit codes, and every failure as one line that names the part that failed and the one thing to do
next. `main` maps whatever a subcommand raises through `explain`, so every subcommand follows the same rules."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

from shared.domain.errors import ConflictRetriesExhausted, InvalidArgument, InvalidQuery, InvalidSettings, one_line
from shared.integrations.arm import ArmCredentialError, ArmError, ArmThrottled, ArmUnreachable
from shared.integrations.storage import StorageNotConfigured, connection_setting
from shared.queries.inventory import NotFound
from shared.queries.summary import NotMigrated

OK = 0
FAILED = 1  # a failure outside (the store, ARM, a credential), a resource not found, or an operation left incomplete
USAGE = 2  # bad arguments, bad settings, a file that cannot be read at all
EXIT_CODES = f"""Exit codes, the same for every command:
  {OK}  success
  {FAILED}  a failure of something outside (the store, ARM, a credential), a resource or service not found, or an incomplete
     operation: a replay in which an event could not be decoded or was rejected, a sync in which a kind could not be listed
     or a row ARM no longer listed could not be confirmed gone
  {USAGE}  bad usage: bad arguments, bad settings, a file that cannot be read at all"""
SETTINGS_DOC = "docs/settings.md"
CREDENTIAL_HELP = ("sign in with `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or run where a managed "
                   "identity is (--verbose shows what each credential tried)")
STORE_ERRORS = (AzureError, ConflictRetriesExhausted)


class Failure(Exception):
    """A failure the command has already put in words, with its exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the one-line message for a failure, or None for an exception no rule knows (a bug)."""
    if isinstance(exc, Failure):
        return exc.code, str(exc)
    if isinstance(exc, InvalidSettings):
        return USAGE, then(f"bad setting: {exc.message}", f"fix it in the environment or local.settings.json ({SETTINGS_DOC})")
    if isinstance(exc, InvalidQuery | InvalidArgument):
        return USAGE, exc.message
    if isinstance(exc, StorageNotConfigured):
        return USAGE, then("no inventory store is configured", f"{exc} ({SETTINGS_DOC})")
    if isinstance(exc, NotFound | NotMigrated):
        return FAILED, str(exc)
    if isinstance(exc, ArmError | ArmCredentialError):
        return FAILED, arm_error(exc)
    if isinstance(exc, STORE_ERRORS):
        return FAILED, store_error(exc)
    return None


def arm_error(exc: AzureError) -> str:
    """ARM's failure, or its credential's, with what to do about it."""
    if isinstance(exc, ArmCredentialError):
        return then(f"the credential for ARM could not get a token: {one_line(exc, 200)}", CREDENTIAL_HELP)
    if isinstance(exc, ArmUnreachable):
        return then(one_line(exc, 300), "check ARM_ENDPOINT and the network, then run again")
    assert isinstance(exc, ArmError)
    advice = {401: "check the credential's tenant and ARM_AUDIENCE",
              403: "give the identity a role that reads the API Management service (API Management Service Reader)",
              404: "check the service's ARM id (subscription, resource group, name)"}
    if isinstance(exc, ArmThrottled):
        wait = f"{exc.retry_after:.0f} seconds" if exc.retry_after is not None else "a while"
        return then(f"ARM is throttling reads: {one_line(exc, 300)}", f"run again in {wait}")
    return then(f"ARM refused: {one_line(exc, 300)}", advice.get(exc.status, "run again later"))


def store_error(exc: BaseException) -> str:
    """The inventory store's failure, naming the setting its connection comes from."""
    setting = connection_setting() or "INVENTORY_STORAGE"
    if isinstance(exc, ConflictRetriesExhausted):
        return then(f"the inventory store: {one_line(exc, 300)}", "other writers keep changing the row: run again (it is safe)")
    if isinstance(exc, ClientAuthenticationError) and exc.response is None:  # the token credential, before any request
        return then(f"the credential for the inventory store ({setting}) could not get a token: {one_line(exc, 200)}", CREDENTIAL_HELP)
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        code = getattr(exc, "error_code", None) or exc.reason or ""
        code = getattr(code, "value", code)  # the Table SDK's TableErrorCode
        what = f"{exc.status_code} {code}".strip()
        if exc.status_code in (401, 403):
            return then(f"the inventory store refused the credentials of {setting} ({what}): {one_line(exc.message, 200)}",
                        f"check the account key or connection string in {setting}, or the identity's role on the account")
        return then(f"the inventory store failed ({what}): {one_line(exc.message, 300)}", "run again (replays and syncs are safe to repeat)")
    return then(f"the inventory store is unreachable: {one_line(exc, 300)}", f"check {setting} and that the account (or Azurite) is running")


def checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argument's type: validated with the query layer's own parser before anything connects, its error argparse's
    (bad usage, exit 2)."""
    def check(text: str) -> str:
        try:
            parse(text)
        except InvalidQuery as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return check


def then(what: str, action: str) -> str:
    """`what` failed, then the one thing to do next, as one line."""
    return f"{what}{'' if what.endswith(('.', '!', '?')) else '.'} Next: {action}."
