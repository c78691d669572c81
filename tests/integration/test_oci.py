"""The OCI registry client (lib/oci) against Debian's real docker-registry,
driven through tests/unit/oci/oci-pull-tool (one JSON object per line:
events, then a result or an error)."""
import fcntl
import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BUILD
from registry import (MT_DOCKER_LIST, MT_OCI_INDEX, Proxy, Stub, TokenServer, free_port, have_zstd,
                      make_layer, sha256_digest)
from registry import registry, servers  # noqa: F401,F811 (fixtures)

TOOL = BUILD / "tests" / "unit" / "oci" / "oci-pull-tool"

@pytest.fixture(autouse=True)
def _tool_built():
    if not TOOL.exists():
        pytest.fail(f"{TOOL} is not built (tests/unit/oci)")

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}
ARMV7 = {"os": "linux", "architecture": "arm", "variant": "v7"}
S390X = {"os": "linux", "architecture": "s390x"}


class Pull:
    def __init__(self, proc_or_result):
        out, self.stderr, self.rc = proc_or_result
        self.lines = [json.loads(l) for l in out.splitlines() if l.strip()]
        self.events = [l["event"] for l in self.lines if "event" in l]
        self.results = [l["result"] for l in self.lines if "result" in l]
        self.errors = [l["error"] for l in self.lines if "error" in l]
        # A sanitized build reports leaks and UB on stderr.
        assert "Sanitizer" not in self.stderr and "runtime error" not in self.stderr, self.stderr

    @property
    def result(self):
        assert self.rc == 0 and len(self.results) == 1, (self.rc, self.errors, self.stderr)
        return self.results[0]

    @property
    def error(self):
        assert self.rc == 1 and len(self.errors) == 1, (self.rc, self.results, self.stderr)
        return self.errors[0]


def tool_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
}
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    env.update(extra or {})
    return env


def start_pull(cache, ref, *opts, env=None):
    return subprocess.Popen([str(TOOL), *opts, str(cache), ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=tool_env(env))


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return Pull((out, err, proc.returncode))


def pull(cache, ref, *opts, env=None, timeout=120):
    return finish(start_pull(cache, ref, *opts, env=env), timeout)


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def blobs_dir(cache):
    return Path(cache) / "oci" / "blobs" / "sha256"


def temp_files(cache):
    return sorted(p.name for p in blobs_dir(cache).glob("*.tmp.*"))


def lock_files(cache):
    """Lock files anywhere in the cache: each goes with the lock's release."""
    return sorted(p.name for p in (Path(cache) / "oci").rglob("*.lock"))


def cached(cache, digest):
    return blobs_dir(cache) / digest.split(":", 1)[1]


def three_layers(fmt="docker"):
    return [
        make_layer({"etc/os-release": b"ID=banger-test\n", "bin/hello": b"#!/bin/sh\necho hi\n"}, "gzip", fmt),
        make_layer({"srv/data.bin": os.urandom(200_000)}, "none", fmt),
        make_layer({"srv/app.txt": b"app\n" * 1000}, "gzip", fmt),
    ]


def check_pulled(res, img, cache):
    assert res["manifest_digest"] == img.digest
    assert res["config"]["digest"] == img.config_digest
    assert [l["digest"] for l in res["layers"]] == [l.digest for l in img.layers]
    assert [l["media_type"] for l in res["layers"]] == [l.media_type for l in img.layers]
    for blob in [res["config"], *res["layers"]]:
        p = Path(blob["path"])
        assert p == cached(cache, blob["digest"])
        assert p.stat().st_size == blob["size"]
        assert file_digest(p) == blob["digest"]
    assert temp_files(cache) == []
    assert lock_files(cache) == []


def final_events(p):
    """digest -> the last pull event of that blob."""
    out = {}
    for e in p.events:
        if e["stage"] == "pull":
            out[e["digest"]] = e
    return out


def test_multi_layer_pull(registry, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    ref = f"{registry.host}/team/app:1"
    p = pull(tmp_path, ref)
    res = p.result
    check_pulled(res, img, tmp_path)
    assert [l["compression"] for l in res["layers"]] == ["tar+gzip", "tar", "tar+gzip"]
    assert res["resolved_digest"] == img.digest
    assert res["registry"] == registry.host and res["repository"] == "team/app" and res["tag"] == "1"
    cfg = res["image_config"]
    assert cfg["config"]["Env"][1] == "GREETING=hello"
    assert cfg["config"]["Cmd"] == ["/bin/sh"] and cfg["config"]["WorkingDir"] == "/srv"
    assert cfg["config"]["User"] == "app"
    assert cfg["rootfs"]["diff_ids"] == [l.diff_id for l in img.layers]

    # Events: resolve first, then one final event per blob with done == total.
    assert p.events[0] == {"stage": "resolve", "ref": ref}
    finals = final_events(p)
    assert set(finals) == {img.config_digest, *[l.digest for l in img.layers]}
    for d, e in finals.items():
        assert e["done"] == e["total"] and "cached" not in e

    # The cache is an OCI image layout naming the ref.
    root = tmp_path / "oci"
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
    assert names[f"{registry.host}/team/app:1"] == img.digest
    assert file_digest(cached(tmp_path, img.digest)) == img.digest


def test_oci_manifest_all_layer_types(registry, tmp_path):
    kinds = ["none", "gzip"] + (["zstd"] if have_zstd() else [])
    layers = [make_layer({f"f{i}": os.urandom(5000)}, c, "oci") for i, c in enumerate(kinds)]
    img = registry.push_image("oci/app", "v1", layers, fmt="oci")
    res = pull(tmp_path, f"{registry.host}/oci/app:v1").result
    check_pulled(res, img, tmp_path)
    assert [l["compression"] for l in res["layers"]] == ["tar", "tar+gzip", "tar+zstd"][:len(kinds)]
    assert res["config"]["media_type"] == "application/vnd.oci.image.config.v1+json"


@pytest.mark.skipif(not have_zstd(), reason="zstd CLI missing: apt-get install zstd (scripts/install-deps does)")
def test_docker_zstd_layer(registry, tmp_path):
    img = registry.push_image("z/app", "1", [make_layer({"a": b"a" * 10000}, "zstd", "docker")])
    res = pull(tmp_path, f"{registry.host}/z/app:1").result
    check_pulled(res, img, tmp_path)
    assert res["layers"][0]["compression"] == "tar+zstd"


def test_pull_by_digest_then_offline(registry, servers, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    proxy = servers(Proxy(registry.host))
    ref = f"{proxy.host}/team/app@{img.digest}"
    res = pull(tmp_path, ref).result
    check_pulled(res, img, tmp_path)
    assert res["digest"] == img.digest and "tag" not in res
    n = len(proxy.requests)
    assert n == 1 + 4  # manifest, config, three layers

    # Again, by digest: everything is cached, not a single request...
    p = pull(tmp_path, ref)
    assert p.result["manifest_digest"] == img.digest
    assert len(proxy.requests) == n
    assert all(e.get("cached") for e in final_events(p).values())
    # ... so it works with the registry gone.
    proxy.close()
    registry.stop()
    assert pull(tmp_path, ref).result["manifest_digest"] == img.digest


def test_pull_by_unknown_digest(registry, tmp_path):
    registry.push_image("team/app", "1", three_layers())
    ref = f"{registry.host}/team/app@sha256:{'ab' * 32}"
    err = pull(tmp_path, ref).error
    assert err["name"] == "ENOTFOUND"
    assert err["message"] == f"{ref} not found in {registry.host} (check the name and tag)"


def test_manifest_served_by_digest_must_match(servers, tmp_path):
    """A registry answering a by-digest request with other bytes."""
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {}, "layers": []}).encode()
    stub = servers(Stub(lambda h: (200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, body)))
    want = "sha256:" + "cd" * 32
    err = pull(tmp_path, f"{stub.host}/x@{want}").error
    assert err["name"] == "EPROTO"
    assert err["message"] == f"digest mismatch for {want}: got {sha256_digest(body)}"
    assert not cached(tmp_path, sha256_digest(body)).exists()


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_index_resolves_linux_amd64(registry, tmp_path, fmt):
    layers = three_layers(fmt)
    arm = registry.push_image("multi/app", None, layers[:1], fmt=fmt, arch="arm64")
    amd = registry.push_image("multi/app", None, layers, fmt=fmt, arch="amd64")
    v7 = registry.push_image("multi/app", None, layers[1:], fmt=fmt, arch="arm")
    idx = registry.push_index("multi/app", "1", [(arm, ARM64), (amd, AMD64), (v7, ARMV7)], fmt=fmt)
    p = pull(tmp_path, f"{registry.host}/multi/app:1")
    res = p.result
    check_pulled(res, amd, tmp_path)
    assert res["resolved_digest"] == idx
    assert res["image_config"]["architecture"] == "amd64"
    # The index and the chosen manifest are cached; the others are not.
    assert file_digest(cached(tmp_path, idx)) == idx
    assert cached(tmp_path, amd.digest).exists()
    assert not cached(tmp_path, arm.digest).exists()
    index = json.loads((tmp_path / "oci" / "index.json").read_text())
    assert index["manifests"][0]["mediaType"] == (MT_DOCKER_LIST if fmt == "docker" else MT_OCI_INDEX)
    assert index["manifests"][0]["digest"] == idx


def test_index_without_linux_amd64(registry, tmp_path):
    layers = three_layers("oci")
    arm = registry.push_image("multi/app", None, layers[:1], fmt="oci", arch="arm64")
    v7 = registry.push_image("multi/app", None, layers[1:2], fmt="oci", arch="arm")
    s390 = registry.push_image("multi/app", None, layers[2:], fmt="oci", arch="s390x")
    attest = registry.push_image("multi/app", None, layers[:1], fmt="oci", arch="unknown", os_name="unknown")
    idx = registry.push_index("multi/app", "arm", [(arm, ARM64), (v7, ARMV7), (s390, S390X),
                                                   (attest, {"os": "unknown", "architecture": "unknown"})])
    ref = f"{registry.host}/multi/app:arm"
    err = pull(tmp_path, ref).error
    assert err["name"] == "EUNSUPPORTED"
    assert err["message"] == (f"{ref} has no linux/amd64 image; "
                              "available platforms: linux/arm64, linux/arm/v7, linux/s390x")
    # Only the index was stored: nothing was downloaded for other platforms.
    assert [p.name for p in blobs_dir(tmp_path).iterdir()] == [idx.split(":")[1]]


def test_plain_manifest_for_another_arch(registry, tmp_path):
    registry.push_image("arm/app", "1", three_layers()[:1], arch="arm64")
    ref = f"{registry.host}/arm/app:1"
    err = pull(tmp_path, ref).error
    assert err["name"] == "EUNSUPPORTED"
    assert err["message"] == f"{ref} is a linux/arm64 image: banger runs linux/amd64 images"


def test_second_pull_by_tag_uses_cache(registry, servers, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    proxy = servers(Proxy(registry.host))
    ref = f"{proxy.host}/team/app:1"
    pull(tmp_path, ref).result
    assert len(proxy.blob_gets()) == 4
    before = len(proxy.requests)
    p = pull(tmp_path, ref)
    check_pulled(p.result, img, tmp_path)
    new = proxy.requests[before:]
    assert [(r["method"], r["path"]) for r in new] == [("GET", "/v2/team/app/manifests/1")]
    assert len(proxy.blob_gets()) == 4
    assert all(e["cached"] and e["done"] == e["total"] for e in final_events(p).values())


def test_index_second_pull_one_request(registry, servers, tmp_path):
    layers = three_layers("oci")
    amd = registry.push_image("multi/app", None, layers, fmt="oci")
    arm = registry.push_image("multi/app", None, layers[:1], fmt="oci", arch="arm64")
    registry.push_index("multi/app", "1", [(arm, ARM64), (amd, AMD64)])
    proxy = servers(Proxy(registry.host))
    ref = f"{proxy.host}/multi/app:1"
    pull(tmp_path, ref).result
    before = len(proxy.requests)
    check_pulled(pull(tmp_path, ref).result, amd, tmp_path)
    assert [r["path"] for r in proxy.requests[before:]] == ["/v2/multi/app/manifests/1"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_corrupted_cached_blob_is_refetched(registry, servers, tmp_path, damage):
    img = registry.push_image("team/app", "1", three_layers())
    proxy = servers(Proxy(registry.host))
    ref = f"{proxy.host}/team/app:1"
    pull(tmp_path, ref).result
    victim = img.layers[1]
    path = cached(tmp_path, victim.digest)
    data = path.read_bytes()
    if damage == "flip":
        data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    elif damage == "truncate":
        data = data[:len(data) // 2]
    else:
        data = b""
    path.write_bytes(data)
    before = len(proxy.blob_gets())
    p = pull(tmp_path, ref)
    check_pulled(p.result, img, tmp_path)
    assert proxy.blob_gets()[before:] == [victim.digest]
    finals = final_events(p)
    assert "cached" not in finals[victim.digest]
    assert finals[img.layers[0].digest]["cached"] is True


@pytest.mark.parametrize("damage", ["truncate", "flip", "extend"])
def test_registry_serving_wrong_bytes(registry, tmp_path, damage):
    img = registry.push_image("team/app", "1", three_layers())
    victim = img.layers[2]
    blob = registry.blob_path(victim.digest)
    data = blob.read_bytes()
    if damage == "truncate":
        blob.write_bytes(data[:len(data) // 2])
    elif damage == "flip":
        blob.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    else:
        blob.write_bytes(data + b"trailing junk")
    err = pull(tmp_path, f"{registry.host}/team/app:1").error
    assert err["name"] == "EPROTO"
    assert err["message"].startswith(f"digest mismatch for {victim.digest}: ")
    if damage != "extend":
        assert f"got {sha256_digest(blob.read_bytes())}" in err["message"]
    assert not cached(tmp_path, victim.digest).exists()
    assert temp_files(tmp_path) == [] and lock_files(tmp_path) == []
    # The layers before it are cached and intact.
    for l in img.layers[:2]:
        assert file_digest(cached(tmp_path, l.digest)) == l.digest


def test_not_found(registry, tmp_path):
    registry.push_image("team/app", "1", three_layers())
    for ref in (f"{registry.host}/team/nope:1", f"{registry.host}/team/app:nope"):
        err = pull(tmp_path, ref).error
        assert err["name"] == "ENOTFOUND"
        assert err["message"] == f"{ref} not found in {registry.host} (check the name and tag)"


def test_missing_blob(registry, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    victim = img.layers[0]
    registry.blob_path(victim.digest).unlink()
    ref = f"{registry.host}/team/app:1"
    err = pull(tmp_path, ref).error
    assert err["name"] == "ENOTFOUND"
    assert err["message"] == f"blob {victim.digest} of {ref} not found in {registry.host}"
    assert temp_files(tmp_path) == [] and lock_files(tmp_path) == []


def test_bearer_token_flow_and_redirects_drop_auth(registry, servers, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    tokens = servers(TokenServer("t0ken"))
    cdn = servers(Proxy(registry.host))  # where blobs are redirected: records headers
    front = servers(Proxy(registry.host, token="t0ken", realm=tokens.realm, redirect_blobs=cdn.host))
    res = pull(tmp_path, f"{front.host}/team/app:1").result
    check_pulled(res, img, tmp_path)
    # One token for the whole pull, asked with the challenge's service/scope.
    assert tokens.queries() == [{"service": "test-registry", "scope": "repository:team/app:pull"}]
    authed = [r for r in front.requests if r["headers"].get("Authorization") == "Bearer t0ken"]
    assert len(authed) == 5  # manifest + 4 blob GETs answered with 307
    # The blob host got the blobs, never the registry's token.
    assert sorted(cdn.blob_gets()) == sorted([img.config_digest] + [l.digest for l in img.layers])
    assert all("Authorization" not in r["headers"] for r in cdn.requests)


def test_blob_redirect(registry, servers, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    front = servers(Proxy(registry.host, redirect_blobs=registry.host))
    check_pulled(pull(tmp_path, f"{front.host}/team/app:1").result, img, tmp_path)
    assert len(front.blob_gets()) == 4


@pytest.mark.parametrize("case", ["wrong-token", "token-refused", "basic"])
def test_authentication_required(registry, servers, tmp_path, case):
    registry.push_image("team/app", "1", three_layers())
    tokens = servers(TokenServer("not-the-token", status=401 if case == "token-refused" else 200))
    front = servers(Proxy(registry.host, token="t0ken", realm=None if case == "basic" else tokens.realm))
    err = pull(tmp_path, f"{front.host}/team/app:1").error
    assert err["name"] == "EPERM"
    assert err["message"].startswith("authentication required: banger pulls anonymously")
    assert "team/app" in err["message"]
    if case == "wrong-token":
        assert len(tokens.requests) == 1  # no retry loop


def test_server_error(servers, tmp_path):
    body = b'{"errors":[{"code":"UNKNOWN","message":"storage backend exploded"}]}'
    stub = servers(Stub(lambda h: (500, {"Content-Type": "application/json"}, body)))
    err = pull(tmp_path, f"{stub.host}/team/app:1").error
    assert err["name"] == "EIO"
    assert "HTTP 500" in err["message"] and "storage backend exploded" in err["message"]
    assert f"http://{stub.host}/v2/team/app/manifests/1" in err["message"]


def test_blob_server_error(registry, servers, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    front = servers(Proxy(registry.host))
    forward = front.forward

    def flaky(h):
        if "/blobs/" in h.path:
            h.reply(503, {"Content-Type": "text/plain"}, b"try later")
        else:
            forward(h)
    front.forward = flaky
    err = pull(tmp_path, f"{front.host}/team/app:1").error
    assert err["name"] == "EIO"
    assert "HTTP 503" in err["message"] and img.config_digest in err["message"]
    assert temp_files(tmp_path) == [] and not cached(tmp_path, img.config_digest).exists()


def test_connection_refused(tmp_path):
    port = free_port()
    err = pull(tmp_path, f"127.0.0.1:{port}/team/app:1").error
    assert err["name"] == "EIO"
    assert f"cannot connect to http://127.0.0.1:{port}/v2/team/app/manifests/1" in err["message"]


def test_insecure_registries(registry, servers, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    front = servers(Proxy(registry.host, bind="127.0.0.2"))
    ref = f"{front.host}/team/app:1"
    # Not localhost: https by default, which a plain-http server cannot speak.
    err = pull(tmp_path, ref).error
    assert err["name"] == "EIO" and f"https://{front.host}/v2/" in err["message"]
    assert "insecure_registries" in err["message"]
    for listed in (front.host, "127.0.0.2", f"example.com, {front.host} ,x"):
        res = pull(tmp_path, ref, "--insecure", listed).result
        check_pulled(res, img, tmp_path)


def test_ipv6_loopback_is_plain_http(registry, servers, tmp_path):
    img = registry.push_image("team/app", "1", three_layers())
    try:
        front = servers(Proxy(registry.host, bind="::1"))
    except OSError:
        pytest.skip("no IPv6 loopback")
    assert front.host.startswith("[::1]:")
    check_pulled(pull(tmp_path, f"{front.host}/team/app:1").result, img, tmp_path)


@pytest.mark.parametrize("mt", ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                                "application/vnd.example.weird"])
def test_unsupported_layer_type(registry, tmp_path, mt):
    layer = make_layer({"a": b"x"}, "gzip")
    layer.media_type = mt
    fmt = "docker" if "docker" in mt else "oci"
    foreign = "foreign" in mt or "nondistributable" in mt
    registry.push_image("team/win", "1", [layer], fmt=fmt,
                        extra_layer_fields={"urls": ["https://example.com/layer"]} if foreign else None)
    err = pull(tmp_path, f"{registry.host}/team/win:1").error
    assert err["name"] == "EUNSUPPORTED"
    assert mt in err["message"] and "layer 1" in err["message"]
    assert not cached(tmp_path, layer.digest).exists()


def test_schema1_and_artifacts_are_refused(servers, tmp_path):
    schema1 = json.dumps({"schemaVersion": 1, "name": "x", "tag": "1", "fsLayers": []}).encode()
    artifact = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json",
                                      "digest": "sha256:" + "ab" * 32, "size": 10},
                           "layers": []}).encode()
    bodies = {"/v2/x/manifests/old": (schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws"),
              "/v2/x/manifests/helm": (artifact, "application/vnd.oci.image.manifest.v1+json")}
    stub = servers(Stub(lambda h: (200, {"Content-Type": bodies[h.path][1]}, bodies[h.path][0])))
    err = pull(tmp_path, f"{stub.host}/x:old").error
    assert err["name"] == "EUNSUPPORTED" and "schema 1" in err["message"]
    err = pull(tmp_path, f"{stub.host}/x:helm").error
    assert err["name"] == "EUNSUPPORTED"
    assert "not a container image" in err["message"] and "helm" in err["message"]


def test_bad_reference(tmp_path):
    err = pull(tmp_path, "Debian:bookworm").error
    assert err["name"] == "EINVAL" and "lowercase" in err["message"]


def big_image(registry, size=8 << 20):
    return registry.push_image("big/app", "1", [make_layer({"small": b"s"}, "gzip"),
                                                make_layer({"big.bin": os.urandom(size)}, "none")])


def test_concurrent_processes_download_each_blob_once(registry, servers, tmp_path):
    img = big_image(registry, 4 << 20)
    proxy = servers(Proxy(registry.host, chunk_delay=0.005))  # the big blob takes ~0.3 s
    ref = f"{proxy.host}/big/app:1"
    procs = [start_pull(tmp_path, ref) for _ in range(2)]
    results = [finish(p) for p in procs]
    for r in results:
        check_pulled(r.result, img, tmp_path)
    gets = proxy.blob_gets()
    assert sorted(gets) == sorted({img.config_digest, *[l.digest for l in img.layers]}), gets
    # They really overlapped: both had resolved before the big blob was in.
    big = [r for r in proxy.requests if r["path"].endswith(img.layers[1].digest)][0]
    manifests = [r for r in proxy.requests if "/manifests/" in r["path"]]
    assert len(manifests) == 2 and max(r["start"] for r in manifests) < big["end"]
    # Each blob was downloaded by one process and found cached by the other.
    for d in gets:
        assert sorted(bool(final_events(r)[d].get("cached")) for r in results) == [False, True]


def test_concurrent_threads_download_each_blob_once(registry, servers, tmp_path):
    img = big_image(registry, 2 << 20)
    proxy = servers(Proxy(registry.host, chunk_delay=0.002))
    p = pull(tmp_path, f"{proxy.host}/big/app:1", "--threads", "4")
    assert p.rc == 0 and len(p.results) == 4, p.errors
    for r in p.results:
        check_pulled(r, img, tmp_path)
    assert sorted(proxy.blob_gets()) == sorted({img.config_digest, *[l.digest for l in img.layers]})


def test_progress_events_are_throttled(registry, servers, tmp_path):
    img = big_image(registry, 4 << 20)
    proxy = servers(Proxy(registry.host, chunk_delay=0.01))  # ~64 chunks: about 0.7 s
    t0 = time.time()
    p = pull(tmp_path, f"{proxy.host}/big/app:1")
    elapsed = time.time() - t0
    p.result
    big = img.layers[1]
    evs = [e for e in p.events if e["stage"] == "pull" and e["digest"] == big.digest]
    dones = [e["done"] for e in evs]
    assert dones == sorted(dones)
    assert evs[-1]["done"] == evs[-1]["total"] == len(big.data)
    assert 2 <= len(evs) <= elapsed * 10 + 3, (len(evs), elapsed)


def test_cancel_during_download_removes_temp_files(registry, servers, tmp_path):
    img = big_image(registry)
    proxy = servers(Proxy(registry.host, chunk_delay=0.01))
    p = pull(tmp_path, f"{proxy.host}/big/app:1", "--cancel-at-bytes", "1")
    err = p.error
    assert err["name"] == "ECANCELED", err
    assert temp_files(tmp_path) == [] and lock_files(tmp_path) == []
    assert not cached(tmp_path, img.layers[1].digest).exists()


def test_cancel_while_stalled(registry, servers, tmp_path):
    """Cancellation also lands while no bytes arrive (progress callback)."""
    img = big_image(registry, 1 << 20)
    proxy = servers(Proxy(registry.host, chunk_delay=5))
    t0 = time.time()
    p = pull(tmp_path, f"{proxy.host}/big/app:1", "--cancel-after-ms", "1500")
    assert p.error["name"] == "ECANCELED"
    assert time.time() - t0 < 5
    assert temp_files(tmp_path) == [] and lock_files(tmp_path) == []
    assert not cached(tmp_path, img.layers[1].digest).exists()
    # The next pull starts over cleanly.
    fast = servers(Proxy(registry.host))
    check_pulled(pull(tmp_path, f"{fast.host}/big/app:1").result, img, tmp_path)


def test_stale_temp_files_are_cleaned(registry, tmp_path):
    """A pull killed mid-download leaves a temp file; the next one removes it."""
    img = registry.push_image("team/app", "1", three_layers())
    d = blobs_dir(tmp_path)
    d.mkdir(parents=True)
    stale = d / (img.layers[0].digest.split(":")[1] + ".tmp.abc123")
    stale.write_bytes(b"partial")
    check_pulled(pull(tmp_path, f"{registry.host}/team/app:1").result, img, tmp_path)
    assert not stale.exists()


def test_waits_for_another_pulls_lock(registry, tmp_path):
    """A blob locked by another process (here: this test) is waited for,
    the wait can be cancelled, and it proceeds once the lock is released."""
    img = registry.push_image("team/app", "1", three_layers())
    ref = f"{registry.host}/team/app:1"
    d = blobs_dir(tmp_path)
    d.mkdir(parents=True)
    with open(d / (img.config_digest.split(":")[1] + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        t0 = time.time()
        err = pull(tmp_path, ref, "--cancel-after-ms", "700").error
        assert err["name"] == "ECANCELED"
        assert err["message"] == f"cancelled while waiting for another pull of {img.config_digest}"
        assert 0.6 < time.time() - t0 < 10
        assert not cached(tmp_path, img.config_digest).exists()

        proc = start_pull(tmp_path, ref)
        threading.Timer(0.5, lambda: fcntl.flock(lock, fcntl.LOCK_UN)).start()
        check_pulled(finish(proc).result, img, tmp_path)
