"""The version lifecycle of `ccfrec serve` as TF Serving has it, against real servers on
loopback started through bin/ccfrec: version policies and labels of a model config file,
versions unloaded and their memory freed, failed versions shown and retried, a Pusher-style
copy swapped in under load, a bad request failing alone inside a batch, overload, and a
draining SIGTERM."""

import concurrent.futures
import os
import shutil
import signal
import threading
import time
import urllib.request

import grpc
import pytest
import tensorflow as tf

from tests import serving_server
from tests.serving_server import ITEM_IDS

PROBE = [ITEM_IDS[1], ITEM_IDS[2]]


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """Two different exports (seeds 0 and 1) and the top-k each answers for PROBE."""
    root = tmp_path_factory.mktemp("templates")
    result = {}
    for seed in (0, 1):
        path = serving_server.export(str(root / str(seed)), seed=seed)
        loaded = tf.saved_model.load(path)
        ids = loaded.signatures["serving_default"](history=tf.constant([PROBE]))["item_ids"]
        result[seed] = (path, [x.decode() for x in ids.numpy()[0]])
    assert result[0][1] != result[1][1]
    return result


@pytest.fixture(scope="module")
def pushes(tmp_path_factory, templates):
    """A server with the single-model flags and the default policy (latest version only)."""
    base = tmp_path_factory.mktemp("pushes")
    serving_server.copy_in_place(templates[0][0], str(base / "ccfrec" / "1"))
    server = serving_server.start(["--model-base", str(base), "--model-name", "ccfrec",
                                   "--poll-seconds", "0.2"],
                                  str(tmp_path_factory.mktemp("logs")))
    server.directory = base / "ccfrec"
    yield server
    assert server.stop() == 0


def _available(server, model="ccfrec"):
    return sorted(v for v, state in server.versions(model).items() if state == "AVAILABLE")


def test_pushes_keep_the_latest_version_and_bounded_memory(pushes, templates):
    """10 pushes: one version loaded at a time, older ones END; RSS stays bounded."""
    rss = {}
    for version in range(2, 12):
        serving_server.copy_in_place(templates[version % 2][0],
                                     str(pushes.directory / str(version)))
        pushes.wait_for(lambda: _available(pushes) == [version], what=f"version {version}")
        status, answer = pushes.predict([PROBE])
        assert status == 200
        assert answer["predictions"][0]["item_ids"] == templates[version % 2][1]
        rss[version] = pushes.rss_mib()
    states = pushes.versions()
    assert states[11] == "AVAILABLE"
    assert all(states[v] == "END" for v in range(1, 11))
    # Memory levels off once the allocator's pools are warm: the last 5 pushes add no more
    # than noise (a version's functions left alive cost about 40 MB each).
    assert rss[11] - rss[6] < 25, sorted(rss.items())
    print("RSS MiB after each push:", sorted(rss.items()))


def test_a_failed_version_shows_its_error_and_is_retried_when_it_changes(pushes, templates):
    broken = pushes.directory / "20"
    staging = str(pushes.directory.parent / "staging-20")
    shutil.copytree(templates[1][0], staging)
    # The same size, not the same bytes: the completion marker holds, loading fails.
    variables = os.path.join(staging, "variables", "variables.data-00000-of-00001")
    size = os.path.getsize(variables)
    with open(variables, "wb") as f:
        f.write(b"\0" * size)
    os.rename(staging, str(broken))
    pushes.wait_for(lambda: pushes.versions().get(20) == "END", what="version 20 failing")
    status, answer = pushes.call("/v1/models/ccfrec/versions/20")
    assert status == 200
    [entry] = answer["model_version_status"]
    assert entry["state"] == "END" and entry["status"]["error_code"] != "OK"
    assert entry["status"]["error_message"]
    assert _available(pushes) == [11]  # the previous version keeps serving
    time.sleep(1)  # several polls: not retried while unchanged
    assert pushes.log().count("version 20 of ccfrec does not load") == 1
    shutil.copyfile(os.path.join(templates[1][0], "variables",
                                 "variables.data-00000-of-00001"),
                    str(broken / "variables" / "variables.data-00000-of-00001"))
    pushes.wait_for(lambda: _available(pushes) == [20], what="version 20 retried")
    assert pushes.versions()[11] == "END"


def test_a_copy_into_place_swaps_under_load(pushes, templates):
    """4 clients without pause while a new version is copied in file by file: every request
    answered, both versions' answers seen, the old version unloaded."""
    current = _available(pushes)[0]
    old_answer = templates[1][1]
    assert pushes.predict([PROBE])[1]["predictions"][0]["item_ids"] == old_answer
    stop = threading.Event()
    seen, failures = [], []

    def client():
        while not stop.is_set():
            status, answer = pushes.predict([PROBE])
            if status != 200:
                failures.append((status, answer))
            else:
                seen.append(answer["predictions"][0]["item_ids"])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        running = [pool.submit(client) for _ in range(4)]
        time.sleep(0.5)
        new = current + 1
        serving_server.copy_in_place(templates[0][0], str(pushes.directory / str(new)),
                                     pause=0.01)
        pushes.wait_for(lambda: _available(pushes) == [new], what="the new version")
        time.sleep(0.5)
        stop.set()
        for future in running:
            future.result()
    assert not failures, failures[:3]
    assert old_answer in seen and templates[0][1] in seen
    assert seen[-1] == templates[0][1]
    assert {tuple(s) for s in seen} == {tuple(old_answer), tuple(templates[0][1])}
    assert pushes.versions()[current] == "END"


CONFIG = """
model_config_list {
  config {
    name: "ccfrec"
    base_path: "ccfrec"
    model_version_policy { latest { num_versions: 2 } }
    version_labels { key: "stable" value: 2 }
    version_labels { key: "canary" value: 3 }
  }
  config {
    name: "pinned"
    base_path: "pinned"
    model_version_policy { specific { versions: 1 versions: 3 } }
  }
}
"""


@pytest.fixture(scope="module")
def batched(tmp_path_factory, templates):
    """Two models of a config file (relative base paths), requests batched over 300 ms."""
    base = tmp_path_factory.mktemp("config")
    for model in ("ccfrec", "pinned"):
        for version in (1, 2, 3):
            serving_server.copy_in_place(templates[version % 2][0],
                                         str(base / model / str(version)))
    (base / "models.config").write_text(CONFIG)
    server = serving_server.start(["--model_config_file", str(base / "models.config"),
                                   "--model_config_file_poll_wait_seconds", "0.5",
                                   "--poll-seconds", "0.2", "--batch-wait-ms", "300"],
                                  str(tmp_path_factory.mktemp("logs")))
    server.base = base
    yield server
    server.stop()


def test_version_policies_and_labels_of_a_config_file(batched, templates):
    assert _available(batched) == [2, 3]
    assert _available(batched, "pinned") == [1, 3]
    for label, version in (("stable", 2), ("canary", 3)):
        status, answer = batched.call(f"/v1/models/ccfrec/labels/{label}:predict",
                                      {"instances": [PROBE]})
        assert status == 200
        assert answer["predictions"][0]["item_ids"] == templates[version % 2][1]
        predictions, _ = serving_server.grpc_stub(batched)
        reply = serving_server.grpc_predict(predictions, [PROBE], label=label)
        assert reply.model_spec.version.value == version
    status, answer = batched.call("/v1/models/pinned/versions/2:predict",
                                  {"instances": [PROBE]})
    assert status == 404 and "Specific(pinned, 2)" in answer["error"]
    # A new version: latest 2 now means 3 and 4; 2 is unloaded and its label answers 404.
    serving_server.copy_in_place(templates[0][0], str(batched.base / "ccfrec" / "4"))
    batched.wait_for(lambda: _available(batched) == [3, 4], what="version 4")
    assert batched.versions()[2] == "END"
    status, answer = batched.call("/v1/models/ccfrec/labels/stable:predict",
                                  {"instances": [PROBE]})
    assert status == 404 and "Specific(ccfrec, 2)" in answer["error"]
    assert _available(batched, "pinned") == [1, 3]


def _metric(server, name):
    text = urllib.request.urlopen(
        f"{server.url}/monitoring/prometheus/metrics").read().decode()
    return float(next(line.split()[-1] for line in text.splitlines()
                      if line.startswith(name + " ")))


def test_a_bad_request_fails_alone_in_its_batch(batched):
    """A tf.Example TensorFlow cannot parse, batched with three good ones within the 300 ms
    window: the batch runs, fails, runs again one request at a time; the bad one gets 400."""
    import base64

    good = [tf.train.Example(features=tf.train.Features(feature={
        "history": tf.train.Feature(bytes_list=tf.train.BytesList(value=[i.encode()])),
        "target": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"item009"]))}))
        .SerializeToString() for i in ITEM_IDS[:3]]
    bodies = [base64.b64encode(b).decode() for b in good + [b"\x0a\xff\xff not a proto"]]
    rows_before = _metric(batched, "ccfrec_batch_rows_sum")
    batches_before = _metric(batched, "ccfrec_batch_rows_count")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda body: batched.predict(
            [{"b64": body}], "serve_tf_examples", model="pinned"), bodies))
    assert [status for status, _ in answers] == [200, 200, 200, 400], answers
    assert "the model refused the input" in answers[3][1]["error"]
    assert all(a["predictions"][0]["target_rank"] >= 0 for _, a in answers[:3])
    # One batch of 4 rows, then the 4 requests alone.
    assert _metric(batched, "ccfrec_batch_rows_count") - batches_before == 5
    assert _metric(batched, "ccfrec_batch_rows_sum") - rows_before == 8


def test_a_changed_config_file_applies_while_serving(batched, templates):
    """The config file is read again: a label moves, a model leaves, a model comes; a config
    that does not parse is refused and the models stay as they were."""
    config = batched.base / "models.config"
    config.write_text("""
model_config_list {
  config {
    name: "ccfrec"
    base_path: "ccfrec"
    model_version_policy { latest { num_versions: 2 } }
    version_labels { key: "stable" value: 4 }
  }
  config {
    name: "first"
    base_path: "ccfrec"
    model_version_policy { specific { versions: 1 } }
  }
}
""")
    batched.wait_for(lambda: batched.call("/v1/models/first")[0] == 200
                     and _available(batched, "first") == [1], what="model first")
    status, answer = batched.call("/v1/models/pinned")
    assert status == 404 and "Servable not found" in answer["error"]
    status, answer = batched.call("/v1/models/ccfrec/labels/stable:predict",
                                  {"instances": [PROBE]})
    assert status == 200 and answer["predictions"][0]["item_ids"] == templates[0][1]
    status, answer = batched.call("/v1/models/first:predict", {"instances": [PROBE]})
    assert status == 200 and answer["predictions"][0]["item_ids"] == templates[1][1]
    config.write_text("model_config_list { config { name: ")
    batched.wait_for(lambda: "changed and is refused" in batched.log(),
                     what="the refused config")
    assert _available(batched, "first") == [1] and _available(batched) == [3, 4]


def test_sigterm_drains_requests_in_flight_then_exits_0(batched):
    """SIGTERM to the bin/ccfrec process (through bin/env-run's wrapper) while requests wait in
    the 300 ms batch window: they are answered, new connections are refused, exit 0."""
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        in_flight = [pool.submit(batched.predict, [PROBE]) for _ in range(6)]
        time.sleep(0.1)
        os.kill(batched.process.pid, signal.SIGTERM)
        answers = [future.result() for future in in_flight]
    assert [status for status, _ in answers] == [200] * 6
    started = time.time()
    batched.process.wait(timeout=15)
    assert batched.process.returncode == 0
    assert time.time() - started < 15
    assert "shutting down" in batched.log() and "stopped" in batched.log()
    with pytest.raises(OSError):
        batched.call("/v1/models/ccfrec", timeout=5)


def test_overload_is_refused_at_once(tmp_path, templates):
    """One row per batch and 8 rows of queue: most of 16 clients' requests are refused with
    503 (REST) / UNAVAILABLE (gRPC), at once, the rest answered; nothing else."""
    base = tmp_path / "models"
    serving_server.copy_in_place(templates[0][0], str(base / "ccfrec" / "1"))
    server = serving_server.start(["--model-base", str(base), "--model-name", "ccfrec",
                                   "--max-batch", "1", "--max-queued-rows", "8"], str(tmp_path))
    try:
        rows = [PROBE] * 4

        def rest(_):
            started = time.perf_counter()
            status, answer = server.predict(rows)
            return status, answer, time.perf_counter() - started

        predictions, _ = serving_server.grpc_stub(server)

        def remote(_):
            try:
                serving_server.grpc_predict(predictions, rows)
                return "OK"
            except grpc.RpcError as error:
                return error.code().name

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(rest, range(400)))
            codes = list(pool.map(remote, range(400)))
        statuses = [status for status, _, _ in answers]
        assert set(statuses) == {200, 503}, set(statuses)
        refused = [(answer, seconds) for status, answer, seconds in answers if status == 503]
        assert "overloaded" in refused[0][0]["error"]
        assert sorted(s for _, s in refused)[len(refused) // 2] < 0.05
        assert set(codes) == {"OK", "UNAVAILABLE"}, set(codes)
        assert server.call("/v1/models/ccfrec")[0] == 200
    finally:
        # SIGINT (Ctrl-C) drains and exits 0 as SIGTERM does.
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=30) == 0
