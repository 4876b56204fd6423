"""Who a request is served for, and so what it sees: a function key's caller, or a person signed in through App Service
Authentication (Easy Auth).

The JSON API under /api is key-protected by the host (AuthLevel.FUNCTION): a request that reaches its function came
with a key, and gets the role FUNCTION_KEY_ROLE names (default Inventory.Read). The pages under /ui are anonymous at the
host and guarded here: served only when WEBSITE_AUTH_ENABLED parses true (the platform then sets, and refuses from
outside, X-MS-CLIENT-PRINCIPAL) and that header holds a principal with one of the two app roles; otherwise 401 with one
line saying why. The Functions host trusts the header on the same condition (azure-facts: Easy Auth), so a deployment
without sign-in never exposes a page, whatever reaches it."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from shared.domain.booleans import SETTING_FALSE, SETTING_TRUE, parse_bool
from shared.domain.personal import Role, parse_role

ROLE_HEADER = "X-Inventory-Role"  # every answer says the role it was served under
PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
KEY_ROLE_SETTING = "FUNCTION_KEY_ROLE"
AUTH_SETTING = "WEBSITE_AUTH_ENABLED"
ROLE_CLAIM = "roles"  # Entra ID's app roles; the header's own role_typ names another type some services use
MAX_PRINCIPAL = 16_384  # characters of the header read at most: a principal is a few hundred


class SettingRefused(Exception):
    """An app setting this module reads holds a value it does not take."""


class Refused(Exception):
    """A page request that is not served: the message is the one line the 401 says."""


@dataclass(frozen=True)
class Principal:
    name: str
    roles: tuple[str, ...]  # every role claim, as given
    role: Role  # the role served: PersonalData when held, else Read


def key_role(env: Mapping[str, str] | None = None) -> Role:
    """The role a function key's caller is served under, read per request (a changed setting restarts the app anyway)."""
    text = (os.environ if env is None else env).get(KEY_ROLE_SETTING, "") or Role.READ.value
    try:
        return parse_role(text, KEY_ROLE_SETTING)
    except ValueError as exc:
        raise SettingRefused(str(exc)) from None


def auth_enabled(env: Mapping[str, str] | None = None) -> bool:
    """WEBSITE_AUTH_ENABLED as the platform injects it; a value that is no true word counts as off."""
    return parse_bool((os.environ if env is None else env).get(AUTH_SETTING, ""), SETTING_TRUE, SETTING_FALSE) is True


def page_principal(req: func.HttpRequest, env: Mapping[str, str] | None = None) -> Principal:
    """The signed-in person a page is served for; Refused, with the reason, when there is none to trust."""
    header = req.headers.get(PRINCIPAL_HEADER)
    if not auth_enabled(env):
        raise Refused(f"sign-in is off: the pages are served only when App Service Authentication is on ({AUTH_SETTING}=true)"
                      + ("; the X-MS-CLIENT-PRINCIPAL header sent is ignored" if header else ""))
    if not header:
        raise Refused(f"not signed in: the request carries no {PRINCIPAL_HEADER} header (sign in at /.auth/login/aad)")
    return parse_principal(header)


def parse_principal(header: str) -> Principal:
    """The principal in the header: base64 JSON with a `claims` list of {typ, val}; Refused when malformed or when it holds
    neither app role."""
    if len(header) > MAX_PRINCIPAL:
        raise Refused(f"malformed {PRINCIPAL_HEADER} header: longer than {MAX_PRINCIPAL} characters")
    try:
        document: Any = json.loads(base64.b64decode(header.strip() + "=" * (-len(header.strip()) % 4), validate=True))
    except (binascii.Error, ValueError):
        raise Refused(f"malformed {PRINCIPAL_HEADER} header: not base64-encoded JSON") from None
    claims = document.get("claims") if isinstance(document, dict) else None
    if not isinstance(claims, list) or not all(isinstance(c, dict) and isinstance(c.get("typ"), str) and isinstance(c.get("val"), str)
                                                for c in claims):
        raise Refused(f"malformed {PRINCIPAL_HEADER} header: no `claims` list of {{typ, val}} strings")
    role_types = {ROLE_CLAIM, str(document.get("role_typ") or ROLE_CLAIM)}
    name_type = str(document.get("name_typ") or "name")
    roles = tuple(c["val"] for c in claims if c["typ"] in role_types)
    name = next((c["val"] for c in claims if c["typ"] == name_type), "") or next((c["val"] for c in claims if c["typ"] == "name"), "")
    held = {r.lower() for r in roles}
    for role in (Role.PERSONAL_DATA, Role.READ):
        if role.value.lower() in held:
            return Principal(name, roles, role)
    raise Refused(f"signed in, but holding neither app role {Role.READ.value} nor {Role.PERSONAL_DATA.value}: ask for one to be assigned")


def refused(reason: str) -> func.HttpResponse:
    """The 401 of a page not served: one line of text, nothing else."""
    return func.HttpResponse(reason + "\n", status_code=401, mimetype="text/plain", charset="utf-8")
