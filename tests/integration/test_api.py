"""Every API behaviour, over both transports (the ctx fixture runs each test
against the local engine and against bangerd)."""
import dataclasses
import threading
import time

import pytest

import banger


def test_status_reports_version_stamp(ctx, env):
    st = ctx.status()
    assert st["stamp"] == banger.version()
    assert st["state_dir"] == str(env["BANGER_STATE_DIR"])
    assert st["schema_version"] >= 1
    assert isinstance(st["pid"], int) and st["pid"] > 0


def test_transport_names(ctx):
    assert ctx.transport in ("local", "unix")


def test_config_defaults_and_provenance(ctx):
    cfg = ctx.config()
    vals = cfg["values"]
    assert cfg["found"] is False
    assert vals["bridge_name"] == {"value": "br-banger", "source": "builtin"}
    assert vals["vmm"]["value"] == "auto"
    assert vals["vm_defaults.memory_mib"]["source"] in ("auto", "builtin")
    assert vals["vm_defaults.disk_size"]["text"] == "8G"
    assert vals["ssh_key_path"]["value"].endswith("/ssh/id_ed25519")


def test_doctor_reports_every_check(ctx):
    rep = ctx.doctor()
    names = [c["name"] for c in rep["checks"]]
    for want in ("kvm", "firecracker", "qemu", "driver", "state", "config", "vm defaults"):
        assert want in names
    assert all(c["status"] in ("PASS", "WARN", "FAIL") for c in rep["checks"])


def test_doctor_streams_progress(ctx):
    events = []
    rep = ctx.call("doctor", on_event=events.append)
    assert [e["name"] for e in events] == [c["name"] for c in rep["checks"]]
    assert events[-1]["done"] == len(rep["checks"])


def test_unknown_method(ctx):
    with pytest.raises(banger.UnknownMethod) as ei:
        ctx.call("vm.teleport")
    assert "vm.teleport" in ei.value.message
    assert ei.value.code == -10


@pytest.mark.parametrize("params,word", [
    ({"count": "three"}, "'count' must be an integer"),
    ({"count": 1, "interval_ms": True}, "'interval_ms' must be an integer"),
    ({}, "missing required parameter 'count'"),
    ({"count": 1, "colour": "red"}, "unknown parameter 'colour'"),
    ({"count": -1}, "count must be between"),
])
def test_wrong_params(ctx, params, word):
    with pytest.raises(banger.InvalidArgument) as ei:
        ctx.call("debug.ticks", params)
    assert word in ei.value.message


def test_params_must_be_an_object(ctx):
    with pytest.raises(banger.ProtocolError):
        ctx.call("engine.status", [1, 2])


def test_progress_events_arrive_before_result(ctx):
    events = []
    res = ctx.call("debug.ticks", {"count": 5, "interval_ms": 1}, on_event=events.append)
    assert res == {"ticks": 5}
    assert [e["done"] for e in events] == [1, 2, 3, 4, 5]
    assert all(e["total"] == 5 and e["stage"] == "tick" for e in events)


def test_progress_callbacks_get_typed_events(ctx):
    events, raw = [], []
    res = ctx.call("debug.ticks", {"count": 3, "interval_ms": 1}, on_event=raw.append, progress=events.append)
    assert res == {"ticks": 3}
    assert all(type(p) is banger.Progress for p in events)
    assert [(p.stage, p.done, p.total) for p in events] == [("tick", 1, 3), ("tick", 2, 3), ("tick", 3, 3)]
    assert all(p.seconds is None and p.message is None and p.warning is None for p in events)
    assert [p.raw for p in events] == raw  # the dict as sent, fields added later included
    call = ctx.start("debug.ticks", {"count": 2, "interval_ms": 1}, progress=events.append)
    assert call.result(timeout=10) == {"ticks": 2} and [p.done for p in events[3:]] == [1, 2]


def test_progress_reads_an_event_as_the_c_adapter_does():
    p = banger.Progress.from_event({"stage": "boot", "seconds": 2, "done": True, "total": 1.5, "extra": [1]})
    assert (p.stage, p.seconds, p.done, p.total, p.message) == ("boot", 2.0, None, None, None)
    assert type(p.seconds) is float and p.raw["extra"] == [1]
    w = banger.Progress.from_event({"stage": "identity", "warning": "no key"})
    assert (w.message, w.warning) == ("no key", "no key")
    m = banger.Progress.from_event({"stage": 3, "message": "", "warning": "w", "seconds": "1"})
    assert (m.stage, m.message, m.warning, m.seconds) == (None, "", "w", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.stage = "x"


def test_cancel_a_long_call(ctx):
    events = []
    call = ctx.start("debug.ticks", {"count": 1000, "interval_ms": 10}, on_event=events.append)
    while not events:
        time.sleep(0.01)
    t0 = time.time()
    call.cancel()
    with pytest.raises(banger.Cancelled) as ei:
        call.result(timeout=10)
    assert time.time() - t0 < 2
    assert "cancelled after" in ei.value.message
    assert len(events) < 1000


def test_concurrent_calls(ctx):
    results, errors = [], []

    def worker(i):
        try:
            results.append(ctx.call("debug.ticks", {"count": 3, "interval_ms": 5})["ticks"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == [3] * 16


def test_rpc_methods_lists_the_table(ctx):
    methods = ctx.call("rpc.methods")["methods"]
    names = {m["name"] for m in methods}
    assert {"engine.status", "config.show", "doctor", "store.check", "debug.ticks"} <= names
    since = {m["name"]: m["since"] for m in methods}
    assert since["vm.create"] == "0.1" and since["vm.cp"] == "0.2" and since["debug.echo"] == "0.2"
    assert set(since.values()) <= {"0.1", "0.2"}


def test_store_check(ctx):
    rep = ctx.call("store.check")
    assert rep["exists"] is True
    assert rep["pending"] == []
    assert [1] == rep["applied"][:1]


def test_input_reaches_a_running_call_in_order(ctx):
    events = []
    call = ctx.start("debug.echo", on_event=events.append)
    for i in range(50):
        call.send_input({"n": i, "data": "x" * i})
    call.send_input({"eof": True})
    assert call.result(timeout=30) == {"count": 51}
    assert [e["echo"].get("n") for e in events[:50]] == list(range(50))
    assert events[50]["echo"] == {"eof": True}


def test_input_before_the_call_starts_is_kept_and_bad_input_refused(ctx):
    call = banger.Call("debug.echo")
    call.send_input({"first": 1})
    call.send_input({"eof": True})
    call._run(ctx)
    assert call.result() == {"count": 2}
    assert banger._load().banger_call_send_input(call._ptr, b"[1, 2]") == -9  # EPROTO: not an object


def test_unread_input_is_bounded(ctx):
    call = banger.Call("debug.ticks", {"count": 1, "interval_ms": 1})  # reads no input
    with pytest.raises(banger.TooBig):
        for _ in range(100):
            call.send_input({"data": "x" * (1 << 20)})
