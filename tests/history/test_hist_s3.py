"""The S3 shell against the moto server over HTTP: conditional writes, races, a full history.

Checked with moto 5.2.5: PutObject honours `If-None-Match: *` (412 when the key exists) and
`If-Match: <etag>` (412 on a different ETag, 404 NoSuchKey when the key is absent), as S3 does.
moto checks the condition and stores the object in two steps without a lock, so two requests
landing in the same instant could both pass; the races below are therefore interleaved
deterministically (the second writer commits between the first one's read and its put), which
is exactly the window S3's atomic check closes.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from report_processor.history import keys
from report_processor.history.quarantine import QuarantineError
from report_processor.history.queries import (
    add_to_quarantine,
    compare,
    list_quarantine,
    outcomes_of_test,
    remove_from_quarantine,
)
from report_processor.history.records import HistoryConfig
from report_processor.history.s3 import S3HistoryStore
from report_processor.history.session import load_index, rebuild_index
from report_processor.history.storage import ObjectTooLarge, PreconditionFailed, update_json
from tests.history.helpers import SCOPE, START, Night, names, run_night

CONFIG = HistoryConfig(wholesale_min_tests=2)


@pytest.fixture
def store(moto_server):
    s3 = moto_server.client("s3")
    bucket = f"ltr-history-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return S3HistoryStore(bucket, s3)


def test_conditional_puts_behave_as_s3_documents(store):
    first = store.put("k", b"1", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put("k", b"2", if_none_match=True)
    second = store.put("k", b"2", if_match=first)
    with pytest.raises(PreconditionFailed):
        store.put("k", b"3", if_match=first)  # stale ETag
    with pytest.raises(PreconditionFailed):
        store.put("missing", b"3", if_match=second)  # If-Match on an absent key
    blob = store.get("k", 10)
    assert blob is not None and blob.data == b"2" and blob.etag == second
    assert store.get("absent", 10) is None
    with pytest.raises(ObjectTooLarge):
        store.get("k", 0)


class RacingStore(S3HistoryStore):
    """Runs `before_put` (once) before a conditional put: another writer's turn."""

    before_put = None

    def put(self, key, data, **kwargs):
        hook, self.before_put = self.before_put, None
        if hook is not None and (kwargs.get("if_match") or kwargs.get("if_none_match")):
            hook(key)
        return super().put(key, data, **kwargs)


def _add(item):
    def change(document):
        return {"items": sorted([*(document or {"items": []})["items"], item])}

    return change


@pytest.mark.parametrize("existing", [False, True], ids=["index-absent", "index-present"])
def test_two_writers_racing_on_moto_both_survive(moto_server, existing):
    s3 = moto_server.client("s3")
    bucket = f"ltr-history-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    racing = RacingStore(bucket, s3)
    plain = S3HistoryStore(bucket, s3)
    if existing:
        update_json(plain, "index.json", _add("old"))
    racing.before_put = lambda key: update_json(plain, key, _add("b"))
    update_json(racing, "index.json", _add("a"), sleep=lambda _s: None)
    body = s3.get_object(Bucket=bucket, Key="index.json")["Body"].read()
    assert json.loads(body)["items"] == (["a", "b", "old"] if existing else ["a", "b"])


def test_a_history_in_s3_end_to_end(store):
    n1 = Night(1, "v1", {"a": "pass", "b": "pass", "c": "fail"})
    n2 = Night(2, "v2", {"a": "fail", "b": "pass", "d": "pass"})
    run_night(store, n1, CONFIG)
    two = run_night(store, n2, CONFIG, {"a": "Expected 200\nstack"})
    assert names(t.test_id for t in two.new_failures) == {"a"}
    assert names(two.fixed) == set()  # c disappeared, it was not fixed
    assert names(two.disappeared) == {"c"} and names(two.new_tests) == {"d"}
    assert two.new_failures[0].message == "Expected 200"
    listed = sorted(store.list_keys(SCOPE.prefix))
    run2 = keys.make_run_key(n2.started_at, "n2")
    assert keys.rows_key(SCOPE, run2) in listed
    assert keys.run_record_key(SCOPE, run2) in listed
    assert [run.run_id for run in rebuild_index(store, SCOPE, 10).runs] == ["n1", "n2"]
    assert [run.run_id for run in load_index(store, SCOPE).runs] == ["n1", "n2"]
    rows = outcomes_of_test(store, SCOPE, "a")
    assert [(row.run.run_id, row.outcome, row.seconds) for row in rows] == [
        ("n2", "failed", 0.25),
        ("n1", "passed", 0.25),
    ]
    diff = compare(store, SCOPE, "n2", "n1")
    assert names(diff.new_failures) == {"a"} and names(diff.disappeared_sample) == {"c"}
    back = compare(store, SCOPE, "n1", "n2")
    assert names(back.fixed) == {"a"} and names(back.new_test_sample) == {"c"}


def test_quarantine_commands_on_s3(store):
    now = START
    entry = add_to_quarantine(store, "shop", "prod", "T::x", "flaky", "ana", now, days=7)
    assert entry.expires == "2026-11-08T02:00:00.000Z"
    with pytest.raises(QuarantineError, match="1 to 30 days"):
        add_to_quarantine(store, "shop", "prod", "T::y", "r", "o", now, days=31)
    listed = list_quarantine(store, "shop", "prod")
    assert [e.test_id for e in listed.entries] == ["T::x"]
    assert listed.entries[0].state(now + timedelta(days=8)) == "expired"
    remove_from_quarantine(store, "shop", "prod", "T::x")
    assert list_quarantine(store, "shop", "prod").entries == ()
    with pytest.raises(QuarantineError, match="not on the quarantine list"):
        remove_from_quarantine(store, "shop", "prod", "T::x")


def test_put_stream_uploads_in_parts_and_leaves_the_file_open(store):
    import io
    import os

    payload = os.urandom(9 << 20)  # above boto3's 8 MiB multipart threshold
    stream = io.BytesIO(payload)
    store.put_stream("big.bin", stream, "application/octet-stream")
    assert not stream.closed
    blob = store.get("big.bin", 10 << 20)
    assert blob is not None and blob.data == payload
