"""The log archive over Blob Storage (GATEWAY_LOGS_STORAGE): listings by virtual folder and ranged reads of
append blobs. One ContainerClient per process, built by the composition root and reused by every run."""

from __future__ import annotations

from collections.abc import Iterator

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobPrefix, ContainerClient

from shared.integrations.log_archive import BlobInfo


class BlobArchive:
    def __init__(self, client: ContainerClient) -> None:
        self._client = client

    @property
    def url(self) -> str:
        return str(self._client.url)

    @property
    def container(self) -> str:
        return str(self._client.container_name)

    def prefixes(self, prefix: str) -> list[str]:
        try:
            return [item.name for item in self._client.walk_blobs(name_starts_with=prefix or None, delimiter="/")
                    if isinstance(item, BlobPrefix)]
        except ResourceNotFoundError:  # no container yet: a new diagnostic setting takes up to 90 minutes to write
            return []

    def blobs(self, prefix: str) -> Iterator[BlobInfo]:
        try:
            for blob in self._client.list_blobs(name_starts_with=prefix or None):
                yield BlobInfo(blob.name, blob.creation_time, int(blob.size))
        except ResourceNotFoundError:
            return

    def read(self, name: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        # Azurite answers 206 with no content at offset == size, where Azure answers 416: the caller never asks there.
        return bytes(self._client.download_blob(name, offset=offset, length=length).readall())
