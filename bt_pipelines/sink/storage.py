"""Storage backends for the lake: a local folder, S3 (or any S3-compatible store), GCS.

All keys are relative to the destination root and built by `layout`, never from raw names.
Writes of a single object are atomic on every backend (a rename locally, a PUT remotely),
which is what the manifest commit relies on.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import socket
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from ..source.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")
_PERMANENT_S3 = {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
                 "InvalidBucketName", "AccountProblem", "NoSuchKey", "InvalidRequest", "AuthorizationHeaderMalformed"}


class StorageError(Exception):
    """The lake's storage refused or failed an operation; the message says what to check."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient  # worth trying again (5xx, throttling, a dropped connection)


def retrying(action: Callable[[], T], *, attempts: int = 4, base_delay: float = 0.5) -> T:
    """Run a storage call, again after a backoff while it fails in a transient way."""
    for attempt in range(attempts):
        try:
            return action()
        except StorageError as exc:
            if not exc.transient or attempt + 1 == attempts:
                if exc.transient:
                    raise StorageError(f"{exc} (after {attempts} attempts)") from None
                raise
            delay = random.uniform(0, base_delay * 2**attempt)
            log.info("storage call failed (%s); retry %d in %.1fs", exc, attempt + 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class Storage(ABC):
    url: str

    def uri(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}"

    @abstractmethod
    def put_file(self, local: Path, key: str) -> None:
        """Store a finished local file under `key` (the local file may be moved)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes | None: ...

    @abstractmethod
    def get_file(self, key: str, spool: Path) -> Path:
        """A local path holding the stored file `key` (downloaded into `spool` when remote)."""

    @contextmanager
    def local_copy(self, key: str, spool: Path) -> Iterator[Path]:
        """`get_file`, and the downloaded copy removed afterwards (a local lake's file is read in place)."""
        local = self.get_file(key, spool)
        try:
            yield local
        finally:
            if local.is_relative_to(spool):
                local.unlink(missing_ok=True)

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys of every object under `prefix/`."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None: ...

    def spool_dir(self) -> Path:
        """Where files are written before `put_file`."""
        return Path(tempfile.mkdtemp(prefix="bt-pipelines-"))

    @contextmanager
    def spool(self) -> Iterator[Path]:
        """A fresh `spool_dir`, removed with whatever is left in it."""
        folder = self.spool_dir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class LocalStorage(Storage):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def uri(self, key: str) -> str:
        return str(self.root / key)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StorageError(f"refusing to touch {key!r}: outside the lake at {self.root}")
        return path

    def spool_dir(self) -> Path:
        # On the lake's own file system, so finished files move into place with a rename.
        with self._errors("write", "_bt_pipelines/tmp"):
            base = self._path("_bt_pipelines/tmp")
            base.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix=f"run.{socket.gethostname()}.{os.getpid()}.", dir=base))

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StorageError(f"could not {action} {self.uri(key)}: {exc.strerror or exc}; check that the "
                               "destination folder exists and is writable") from None

    def put_file(self, local: Path, key: str) -> None:
        with self._errors("write", key):
            self._move(local, key)

    def _move(self, local: Path, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local, target)
        except OSError:  # another file system: copy, then rename into place
            partial = target.with_name(f".{target.name}.partial")
            shutil.copyfile(local, partial)
            os.replace(partial, target)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        partial = target.with_name(f".{target.name}.partial")
        with self._errors("write", key):
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, target)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def get_file(self, key: str, spool: Path) -> Path:
        path = self._path(key)  # stored files are never changed in place: read it where it is
        if not path.is_file():
            raise StorageError(f"{self.uri(key)} is listed in its manifest but missing from the lake; run a full "
                               "refresh of that partition")
        return path

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        with self._errors("list", prefix):
            if not base.is_dir():
                return []
            return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def delete(self, keys: Iterable[str]) -> None:
        """Delete files, and the folders they leave empty (up to the lake's root)."""
        root = self.root.resolve()
        for key in keys:
            path = self._path(key)
            with self._errors("delete", key):
                path.unlink(missing_ok=True)
                for parent in path.parents:
                    if parent == root or not parent.is_relative_to(root) or any(parent.iterdir()):
                        break
                    parent.rmdir()


class _BucketStorage(Storage):
    """An object store: keys live under `prefix` in a bucket. Every call is one `_call`: the
    backend's errors turned into `StorageError`s (`_errors`), transient ones tried again."""

    def __init__(self, scheme: str, bucket: str, prefix: str):
        self.prefix = prefix.strip("/")
        self.url = f"{scheme}://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _folder(self, prefix: str) -> str:
        return self._key(prefix).rstrip("/") + "/"

    def _relative(self, full_keys: Iterable[str]) -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(key[strip:] for key in full_keys)

    @abstractmethod
    def _errors(self, action: str, key: str) -> AbstractContextManager[None]: ...

    def _call(self, action: str, key: str, call: Callable[[], T]) -> T:
        def guarded() -> T:
            with self._errors(action, key):
                return call()

        return retrying(guarded)

    @abstractmethod
    def _upload(self, local: Path, key: str) -> None: ...

    @abstractmethod
    def _download(self, key: str, local: Path) -> None: ...

    def put_file(self, local: Path, key: str) -> None:
        self._call("write", key, lambda: self._upload(local, key))
        local.unlink(missing_ok=True)

    def get_file(self, key: str, spool: Path) -> Path:
        local = spool / key.rpartition("/")[2]
        self._call("read", key, lambda: self._download(key, local))
        return local


class S3Storage(_BucketStorage):
    """S3 through a boto3 client (from dagster-aws `S3Resource.get_client()`)."""

    def __init__(self, bucket: str, prefix: str, client: Any):
        from boto3.s3.transfer import TransferConfig

        super().__init__("s3", bucket, prefix)
        self.bucket, self.client = bucket, client
        self.transfer = TransferConfig(multipart_threshold=64 * 1024 * 1024, multipart_chunksize=32 * 1024 * 1024)

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            reason = f"{error.get('Code')}: {error.get('Message')}"
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            transient = error.get("Code") not in _PERMANENT_S3 and (status >= 500 or status in (408, 429) or not status)
        except (BotoCoreError, S3UploadFailedError) as exc:
            reason = str(exc).rpartition("An error occurred ")[2] or str(exc)
            transient = not isinstance(exc, NoCredentialsError) and not any(c in reason for c in _PERMANENT_S3)
        else:
            return
        raise StorageError(f"S3 could not {action} {self.uri(key)}: {reason}; check that the bucket exists, the "
                           "endpoint, and that the credentials may write to it", transient=transient)

    def _upload(self, local: Path, key: str) -> None:
        self.client.upload_file(str(local), self.bucket, self._key(key), Config=self.transfer)

    def _download(self, key: str, local: Path) -> None:
        self.client.download_file(self.bucket, self._key(key), str(local), Config=self.transfer)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call("write", key, lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data))

    def get_bytes(self, key: str) -> bytes | None:
        def get() -> bytes | None:
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None

        return self._call("read", key, get)

    def list(self, prefix: str) -> list[str]:
        def listing() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=self._folder(prefix))
            return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

        return self._relative(self._call("list", prefix, listing))

    def delete(self, keys: Iterable[str]) -> None:
        keys = [self._key(k) for k in keys]
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            answer = self._call("delete", chunk[0]["Key"], lambda chunk=chunk: self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}))
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StorageError(f"S3 could not delete {len(answer['Errors'])} objects, e.g. {first.get('Key')}: "
                                   f"{first.get('Code')} {first.get('Message')}")


class GCSStorage(_BucketStorage):
    """GCS through a google-cloud-storage client (from dagster-gcp `GCSResource.get_client()`)."""

    def __init__(self, bucket: str, prefix: str, client: Any):
        super().__init__("gs", bucket, prefix)
        self.bucket_name, self.client = bucket, client
        self.bucket = client.bucket(bucket)

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        from google.api_core.exceptions import GoogleAPIError, ServerError, TooManyRequests
        from google.auth.exceptions import GoogleAuthError, TransportError

        try:
            yield
        except (GoogleAPIError, GoogleAuthError) as exc:
            transient = isinstance(exc, ServerError | TooManyRequests | TransportError)
            raise StorageError(f"GCS could not {action} {self.uri(key)}: {exc}; check that the bucket exists "
                               "and the credentials may write to it", transient=transient) from None

    def _upload(self, local: Path, key: str) -> None:
        self.bucket.blob(self._key(key)).upload_from_filename(str(local))

    def _download(self, key: str, local: Path) -> None:
        self.bucket.blob(self._key(key)).download_to_filename(str(local))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call("write", key, lambda: self.bucket.blob(self._key(key)).upload_from_string(data))

    def get_bytes(self, key: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        def get() -> bytes | None:
            try:
                return self.bucket.blob(self._key(key)).download_as_bytes()
            except NotFound:
                return None

        return self._call("read", key, get)

    def list(self, prefix: str) -> list[str]:
        blobs = self._call("list", prefix, lambda: list(self.client.list_blobs(self.bucket_name,
                                                                                prefix=self._folder(prefix))))
        return self._relative(b.name for b in blobs)

    def delete(self, keys: Iterable[str]) -> None:
        from google.api_core.exceptions import NotFound

        def delete(key: str) -> None:
            with suppress(NotFound):
                self.bucket.blob(self._key(key)).delete()

        for key in keys:
            self._call("delete", key, lambda key=key: delete(key))


def parse_destination(destination: str) -> tuple[str, str, str]:
    """`(scheme, bucket or path, prefix)`: s3://b/p, gs://b/p, file:///p or a plain path."""
    if not destination or not destination.strip():
        raise ConfigError("destination is empty: set it to a folder, s3://bucket/prefix or gs://bucket/prefix "
                          "(or the BT_PIPELINES_DESTINATION environment variable)")
    parsed = urlparse(destination)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and destination[1:3] in (":\\", ":/")):
        path = parsed.path if parsed.scheme == "file" else destination
        return "file", path, ""
    if parsed.scheme in ("s3", "gs"):
        if not parsed.netloc:
            raise ConfigError(f"destination {destination!r} has no bucket: write {parsed.scheme}://<bucket>/<prefix>")
        return parsed.scheme, parsed.netloc, parsed.path.strip("/")
    raise ConfigError(f"destination {destination!r} has an unknown scheme {parsed.scheme!r}: use a local path, "
                      "file://, s3:// or gs://")


def open_storage(destination: str, *, s3_client: Any = None, gcs_client: Any = None) -> Storage:
    scheme, where, prefix = parse_destination(destination)
    if scheme == "file":
        return LocalStorage(where)
    if scheme == "s3":
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Storage(where, prefix, s3_client)
    if gcs_client is None:
        from google.cloud import storage as gcs

        gcs_client = gcs.Client()
    return GCSStorage(where, prefix, gcs_client)
