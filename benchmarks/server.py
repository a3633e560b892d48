"""The benchmark's ``moto_server``: seeded in-process, then served on a loopback port.

Run as ``python -m benchmarks.server PORT SPEC_JSON``. SPEC_JSON is a list of ``[region, what, n]`` with
``what`` a rule name, ``"all"`` (every rule) or ``"s3-bulk"`` (empty buckets). The process seeds moto's
backends through boto3 under ``mock_aws`` (no HTTP round trips), then serves them with moto's own
WSGI application (as its ``ThreadedMotoServer`` runs it) on 127.0.0.1:PORT, prints ``READY`` and runs
until it is terminated (the benchmark stops it by PID).

Latency: ``GET /bench/latency?ms=N`` makes the server wait N ms before answering each later request,
a stand-in for the round trip to a real AWS endpoint (loopback has none), for the CLI scale-out figure.

Two patches make moto closer to AWS where the benchmark depends on it, and change no answer a rule reads:

* ListBuckets: moto cuts the list at ``MaxBuckets`` and returns no ``ContinuationToken``, so a sweep of
  more than 1,000 buckets would silently see 1,000. Patched to paginate as AWS does (``ContinuationToken``,
  ``BucketRegion`` in each entry; S3 API reference, ListBuckets).
* CreateKey: moto generates an RSA-2048 private key for *every* key, symmetric ones included (for its
  Sign/Verify emulation), ~50 ms of CPU per key. Patched to generate it on first use only.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from typing import Any


def _patch_moto() -> None:
    import moto.kms.models as kms_models
    from moto.core.responses import ActionResult
    from moto.s3.responses import S3Response

    original_generate = kms_models.generate_private_key  # type: ignore[attr-defined]

    class _LazyPrivateKey:
        def __init__(self, key_spec: str) -> None:
            self._key_spec = key_spec
            self._key: Any = None

        def __getattr__(self, name: str) -> Any:
            if self._key is None:
                self._key = original_generate(self._key_spec)
            return getattr(self._key, name)

    kms_models.generate_private_key = _LazyPrivateKey  # type: ignore[attr-defined,assignment]

    def all_buckets(self: Any) -> Any:
        self.data["Action"] = "ListAllMyBuckets"
        self._authenticate_and_authorize_s3_action()
        prefix = self._get_param("prefix")
        region = self._get_param("bucket-region")
        limit = int(self._get_param("max-buckets") or 10000)
        token = self._get_param("continuation-token")
        buckets = sorted(
            self.backend.list_buckets(prefix=prefix, bucket_region=region, max_buckets=None),
            key=lambda b: b.name,
        )
        if token:
            buckets = [b for b in buckets if b.name > token]
        page, rest = buckets[:limit], buckets[limit:]
        result: dict[str, Any] = {
            "Owner": {"ID": "bcaf1ffd86f41161ca5fb16fd081034f", "DisplayName": "webfile"},
            "Buckets": [
                {"Name": b.name, "CreationDate": b.creation_date_ISO8601, "BucketRegion": b.region_name}
                for b in page
            ],
        }
        if rest:
            result["ContinuationToken"] = page[-1].name
        if prefix:
            result["Prefix"] = prefix
        self.data["Action"] = "ListBuckets"
        return self.serialized(ActionResult(result))

    S3Response.all_buckets = all_buckets  # type: ignore[method-assign]


class _Latency:
    """WSGI middleware: an optional fixed delay per request, set through ``/bench/latency?ms=N``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/bench/latency":
            from urllib.parse import parse_qs

            query = parse_qs(environ.get("QUERY_STRING", ""))
            self.seconds = float(query.get("ms", ["0"])[0]) / 1000
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if self.seconds:
            time.sleep(self.seconds)
        return self.app(environ, start_response)


def serve(port: int) -> Any:
    """moto's ThreadedMotoServer application behind :class:`_Latency`, on a thread; returns the server."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = _Latency(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def seed(spec: list[list[Any]]) -> None:
    import boto3

    from benchmarks.landscape import SEEDERS, seed_region, seed_s3_bulk

    for region, what, n in spec:
        session = boto3.Session(region_name=region)
        if what == "all":
            seed_region(session, int(n))
        elif what == "s3-bulk":
            seed_s3_bulk(session, int(n))
        else:
            SEEDERS[what](session, int(n))


def main(argv: list[str]) -> int:
    port, spec = int(argv[0]), json.loads(argv[1])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _patch_moto()
    from moto import mock_aws

    mock = mock_aws()
    mock.start()  # the backends the server serves are the ones seeded here
    seed(spec)
    server = serve(port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("READY", flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
