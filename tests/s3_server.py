"""A real S3 HTTP endpoint on localhost (moto's ThreadedMotoServer) and a bucket in it, for blob-store tests."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

BUCKET = "ladder-test"


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    # What an operator sets for MinIO, R2 or any S3-compatible store (docs/deploy.md); botocore reads it.
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=endpoint,
    )
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()
    os.environ.pop("AWS_ENDPOINT_URL_S3", None)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_blob_url(s3_endpoint, monkeypatch) -> str:
    """LADDER_BLOB_URL=s3://ladder-test/<fresh prefix> for this test."""
    from ladder.settings import reset_settings

    url = f"s3://{BUCKET}/t-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("LADDER_BLOB_URL", url)
    reset_settings()
    return url


def s3_keys(url: str) -> list[str]:
    """Every object under an s3:// prefix, relative to it (read through boto3, not the code under test)."""
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return sorted(o["Key"][len(prefix) + 1 :] for page in pages for o in page.get("Contents", []))
