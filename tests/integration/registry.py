"""Registry helpers for the OCI client tests.

- Registry: Debian's real docker-registry (`apt-get install docker-registry`)
  on a free 127.0.0.1 port with filesystem storage in a temp dir and no
  auth, plus pushes over the registry HTTP API (monolithic blob uploads,
  manifests, Docker manifest lists and OCI indexes).
- Layers and images built in Python (tarfile; zstd through the `zstd` CLI).
- Small HTTP servers to put in front of it: a forwarding Proxy (counts
  requests, requires a bearer token, redirects blob GETs, throttles bodies),
  a token service, and a Stub answering from a function.
"""
import gzip
import hashlib
import http.client
import io
import json
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

LAYER_TYPES = {
    ("docker", "none"): "application/vnd.docker.image.rootfs.diff.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", "zstd"): "application/vnd.docker.image.rootfs.diff.tar.zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
}


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def have_zstd():
    return shutil.which("zstd") is not None


# ---- layers and images ----

@dataclass
class Layer:
    data: bytes  # the blob as pushed (compressed or not)
    media_type: str
    diff_id: str  # digest of the uncompressed tar

    @property
    def digest(self):
        return sha256_digest(self.data)


def make_tar(files):
    """files: {path: bytes}; directories are implied."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def make_layer(files, compression="gzip", fmt="docker"):
    """A layer blob with the media type for fmt ("docker"/"oci")."""
    tar = make_tar(files)
    if compression == "gzip":
        data = gzip.compress(tar, mtime=0)
    elif compression == "zstd":
        data = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout
    elif compression == "none":
        data = tar
    else:
        raise ValueError(compression)
    return Layer(data, LAYER_TYPES[(fmt, compression)], sha256_digest(tar))


@dataclass
class Image:
    repo: str
    digest: str  # of the manifest
    manifest: bytes
    media_type: str
    config: bytes
    config_digest: str
    layers: list = field(default_factory=list)

    @property
    def size(self):
        return len(self.manifest)


# ---- the registry ----

class Registry:
    """A docker-registry process; host is "127.0.0.1:PORT"."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.storage = self.workdir / "storage"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.config = self.workdir / "config.yml"
        # Foreign-layer URLs allowed so that tests can push such manifests.
        self.config.write_text(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {self.storage}
  delete:
    enabled: true
http:
  addr: {self.host}
  secret: banger-tests
validation:
  manifests:
    urls:
      allow:
        - ^https?://
""")
        self.log_path = self.workdir / "registry.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.config)], stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()}")
            try:
                if self.request("GET", "/v2/")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise TimeoutError(f"docker-registry did not answer on {self.host}")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def blob_path(self, digest):
        """Where the registry keeps a blob's bytes (to corrupt it)."""
        hexd = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    # ---- pushes over the HTTP API ----

    def push_blob(self, repo, data):
        digest = sha256_digest(data)
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert status == 202, (status, body)
        loc = urllib.parse.urlsplit(urllib.parse.urljoin(f"http://{self.host}/", headers["Location"]))
        query = (loc.query + "&" if loc.query else "") + "digest=" + urllib.parse.quote(digest)
        status, _, body = self.request("PUT", f"{loc.path}?{query}", body=data,
                                       headers={"Content-Type": "application/octet-stream",
                                                "Content-Length": str(len(data))})
        assert status == 201, (status, body)
        return digest

    def push_manifest(self, repo, ref, body, media_type):
        status, headers, resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", body=body,
                                             headers={"Content-Type": media_type})
        assert status == 201, (status, resp)
        digest = sha256_digest(body)
        assert headers.get("Docker-Content-Digest") == digest
        return digest

    def push_image(self, repo, tag, layers, fmt="docker", arch="amd64", os_name="linux", runtime=None,
                   extra_layer_fields=None):
        """Pushes layers, a config and a manifest; tag may be None (by
        digest only, e.g. for index entries)."""
        runtime = runtime if runtime is not None else {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hello"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/srv",
            "User": "app",
        }
        config = json.dumps({
            "architecture": arch,
            "os": os_name,
            "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        }, sort_keys=True).encode()
        config_digest = self.push_blob(repo, config)
        descs = []
        for l in layers:
            if not (extra_layer_fields and "urls" in extra_layer_fields):
                self.push_blob(repo, l.data)
            d = {"mediaType": l.media_type, "size": len(l.data), "digest": l.digest}
            d.update(extra_layer_fields or {})
            descs.append(d)
        mt = MT_DOCKER_MANIFEST if fmt == "docker" else MT_OCI_MANIFEST
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": {"mediaType": MT_DOCKER_CONFIG if fmt == "docker" else MT_OCI_CONFIG,
                       "size": len(config), "digest": config_digest},
            "layers": descs,
        }, indent=3).encode()
        digest = self.push_manifest(repo, tag or sha256_digest(manifest), manifest, mt)
        return Image(repo, digest, manifest, mt, config, config_digest, list(layers))

    def push_index(self, repo, tag, entries, fmt="oci"):
        """entries: [(Image, platform dict)]; a Docker manifest list or an
        OCI index."""
        mt = MT_DOCKER_LIST if fmt == "docker" else MT_OCI_INDEX
        body = json.dumps({
            "schemaVersion": 2,
            "mediaType": mt,
            "manifests": [{"mediaType": img.media_type, "size": img.size, "digest": img.digest,
                           "platform": plat} for img, plat in entries],
        }, indent=2).encode()
        return self.push_manifest(repo, tag, body, mt)


@pytest.fixture
def registry(tmp_path_factory):
    if not Path(REGISTRY_BIN).exists():
        pytest.fail("docker-registry is not installed: apt-get install docker-registry (scripts/install-deps)")
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


# ---- helper HTTP servers ----

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.owner.handle(self)

    do_HEAD = do_GET

    def reply(self, status, headers=None, body=b"", chunk_delay=0.0):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            step = 64 * 1024
            for off in range(0, len(body), step):
                if off and chunk_delay:
                    time.sleep(chunk_delay)
                self.wfile.write(body[off:off + step])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class HttpServer:
    """A threaded server on 127.0.0.1 (or bind, "::1" for IPv6) whose requests go to
    self.handle(handler); every request is recorded."""

    def __init__(self, bind="127.0.0.1"):
        self.requests = []
        self.lock = threading.Lock()
        cls = _Server6 if ":" in bind else _Server
        self.server = cls((bind, 0), _Handler)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.host = f"[{bind}]:{self.port}" if ":" in bind else f"{bind}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, h):
        rec = {"method": h.command, "path": h.path, "headers": dict(h.headers), "start": time.time()}
        with self.lock:
            self.requests.append(rec)
        return rec

    def handle(self, h):
        raise NotImplementedError

    def blob_gets(self):
        with self.lock:
            return [r["path"].rsplit("/", 1)[1] for r in self.requests
                    if r["method"] == "GET" and "/blobs/" in r["path"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Stub(HttpServer):
    """Answers with fn(handler) -> (status, headers, body)."""

    def __init__(self, fn, bind="127.0.0.1"):
        self.fn = fn
        super().__init__(bind)

    def handle(self, h):
        self.record(h)
        status, headers, body = self.fn(h)
        h.reply(status, headers, body)


class TokenServer(HttpServer):
    """A token service at /token: hands out `token` (or answers `status`)."""

    def __init__(self, token="secret-token", status=200):
        self.token, self.status = token, status
        super().__init__()
        self.realm = f"http://{self.host}/token"

    def handle(self, h):
        self.record(h)
        if self.status != 200:
            h.reply(self.status, {"Content-Type": "application/json"}, b'{"details":"no"}')
            return
        h.reply(200, {"Content-Type": "application/json"},
                json.dumps({"token": self.token, "expires_in": 300}).encode())

    def queries(self):
        with self.lock:
            return [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r["path"]).query))
                    for r in self.requests]


class Proxy(HttpServer):
    """Forwards to upstream ("host:port"). Options:
    token: require "Authorization: Bearer <token>" on /v2/, answering 401
      with a Bearer challenge naming realm (or a Basic one when realm is None);
    redirect_blobs: "host:port" to answer blob GETs with a 307 to;
    chunk_delay: seconds to sleep per 64 KiB of blob body (slow registry)."""

    def __init__(self, upstream, token=None, realm=None, redirect_blobs=None, chunk_delay=0.0,
                 bind="127.0.0.1"):
        self.upstream, self.token, self.realm = upstream, token, realm
        self.redirect_blobs, self.chunk_delay = redirect_blobs, chunk_delay
        super().__init__(bind)

    def handle(self, h):
        rec = self.record(h)
        try:
            self.forward(h)
        finally:
            rec["end"] = time.time()

    def forward(self, h):
        if self.token and h.path.startswith("/v2/"):
            if h.headers.get("Authorization") != f"Bearer {self.token}":
                repo = h.path[4:].split("/manifests/")[0].split("/blobs/")[0]
                if self.realm:
                    challenge = (f'Bearer realm="{self.realm}",service="test-registry",'
                                 f'scope="repository:{repo}:pull"')
                else:
                    challenge = 'Basic realm="test"'
                h.reply(401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                        b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
                return
        if self.redirect_blobs and h.command == "GET" and "/blobs/" in h.path:
            h.reply(307, {"Location": f"http://{self.redirect_blobs}{h.path}"})
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() in ("accept", "user-agent")}
            conn.request(h.command, h.path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except OSError as e:  # upstream gone (a test stopped it)
            h.reply(502, {"Content-Type": "text/plain"}, str(e).encode())
            return
        finally:
            conn.close()
        keep = {k: v for k, v in resp.getheaders()
                if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive",
                                     "date", "server")}
        h.reply(resp.status, keep, body, self.chunk_delay if "/blobs/" in h.path else 0.0)


@pytest.fixture
def servers():
    """Starts helper servers and closes them after the test:
    servers(Proxy(...)) returns the server."""
    started = []

    def start(server):
        started.append(server)
        return server

    yield start
    for s in started:
        s.close()
