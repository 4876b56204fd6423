"""The rules behind the command's messages and tables, in memory: azure-core's text shortened to whole sentences,
settings read by name, URL settings checked, cells cut to the terminal's width."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import Settings
from shared.domain.errors import InvalidSettings, one_line, sentences
from shared.entrypoints.output import NARROWEST, clip, fitted, width

pytestmark = pytest.mark.unit

WORDS = st.lists(st.sampled_from(["token", "credential", "failed.", "See", "https://aka.ms/x.", "ユーザー", "again!", "why?"]),
                 min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(WORDS, st.integers(min_value=20, max_value=300))
def test_a_shortened_message_ends_at_a_sentence_end(words: list[str], limit: int) -> None:
    text = " ".join(words)
    short = sentences(text, limit)
    assert text.startswith(short.removesuffix(" …"))
    if short != text and not short.endswith(" …"):
        assert short.endswith((".", "!", "?")) and text[len(short):][:1] == " "  # a whole sentence, never a cut URL
        assert len(short) <= limit or not re.search(r"[.!?](?=\s)", short)  # longer only when it is the first sentence


def test_the_appendix_azure_core_adds_is_dropped() -> None:
    text = ("Server failed to authenticate the request. Make sure the value of the Authorization header is formed correctly.\n"
            "RequestId:87ec11f5\nTime:2026-12-02T02:59:30.197Z\nErrorCode:AuthorizationFailure\nContent: <?xml version=\"1.0\"?>")
    assert one_line(text) == ("Server failed to authenticate the request. Make sure the value of the Authorization header is "
                              "formed correctly.")


@pytest.mark.parametrize(("env", "message"), [
    ({"INVENTORY_STORAGE_RETRY_TOTAL": "abc"}, "INVENTORY_STORAGE_RETRY_TOTAL must be a whole number such as 3, not 'abc'"),
    ({"TOKEN_WARNING_DAYS": "nan"}, "TOKEN_WARNING_DAYS must be a number such as 7, not 'nan'"),
    ({"ARM_ENDPOINT": "http://example.com"}, "ARM_ENDPOINT 'http://example.com' uses plain http"),
    ({"ARM_AUDIENCE": "management"}, "ARM_AUDIENCE must be a URL such as https://management.azure.com"),
    ({"AzureWebJobsStorage__serviceUri": "http://[::1"}, "AzureWebJobsStorage__serviceUri must be a URL"),
    ({"DEAD_LETTER_STORAGE__blobServiceUri": "ftp://x"}, "must be a URL such as https://ACCOUNT.blob.core.windows.net"),
])
def test_settings_are_named_when_they_cannot_be_read(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidSettings) as raised:
        Settings.from_env(env)
    assert message in raised.value.message


def test_plain_http_is_accepted_for_loopback_only() -> None:
    assert Settings.from_env({"ARM_ENDPOINT": "http://127.0.0.1:8080", "INVENTORY_STORAGE__tableServiceUri": "http://localhost:1/a"})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 400), st.integers(1, 12)), min_size=1, max_size=12), st.integers(10, 200))
def test_columns_narrow_to_the_room_but_not_below_their_floor(columns: list[tuple[int, int]], room: int) -> None:
    widths, headers = [w for w, _ in columns], [h for _, h in columns]
    result = fitted(widths, headers, room)
    floors = [min(w, max(h, NARROWEST)) for w, h in columns]
    assert all(f <= r <= w for f, r, w in zip(floors, result, widths, strict=True))
    assert sum(result) <= room or result == floors


@given(st.text(alphabet=st.sampled_from("abcユ\u0301 "), max_size=60), st.integers(2, 40))
def test_a_clipped_cell_fits(text: str, columns: int) -> None:
    cut = clip(text, columns)
    assert width(cut) <= columns and (cut == text or cut.endswith("…"))
