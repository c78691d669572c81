"""Typed objects over the dispatch: ctx.vms, ctx.images, ctx.kernels.

    with banger.open() as ctx:
        with ctx.vms.create(ephemeral=True) as vm:      # deleted on exit
            r = vm.exec("make", "test", cwd="/root/repo")
            print(r.exit_code, r.stdout)
            for stream, data in vm.stream("sh", "-c", "seq 3"):
                print(stream, data)
            vm.cp_to("./src", "/root/", progress=print)  # banger.Progress events
"""
import base64
import queue


class ExecResult:
    """What vm.exec returned: exit_code (128 + N for signal N), stdout and
    stderr as text (bytes when not UTF-8), signal (name) or None."""

    def __init__(self, raw):
        self.raw = raw
        self.exit_code = raw["exit_code"]
        self.signal = raw.get("signal")
        self.stdout = _text_or_bytes(raw, "stdout")
        self.stderr = _text_or_bytes(raw, "stderr")

    def __repr__(self):
        return f"ExecResult(exit_code={self.exit_code}, stdout={self.stdout!r:.60}, stderr={self.stderr!r:.60})"


def _text_or_bytes(raw, key):
    if f"{key}_b64" in raw:
        return base64.b64decode(raw[f"{key}_b64"])
    return raw.get(key, "")


class CommandFailed(Exception):
    def __init__(self, argv, result):
        super().__init__(f"{argv!r} exited {result.exit_code}: {result.stderr!r:.200}")
        self.result = result


class Stream:
    """Iterates (stream, bytes) as a command prints; then .exit_code. Write
    to its stdin with .send(bytes) and .close_stdin(); .signal(N)."""

    def __init__(self, ctx, params, method="vm.exec", stdin=True):
        self._q = queue.Queue()
        self.exit_code = None
        self.result = None
        extra = {"stream": True, "stdin_stream": True} if stdin else {"stream": True}
        self._call = ctx.start(method, {**params, **extra}, on_event=self._on_event)
        self._done = False

    def _on_event(self, ev):
        if "output" in ev:
            self._q.put((ev["output"], base64.b64decode(ev["data"])))

    def send(self, data):
        self._call.send_input({"stdin": base64.b64encode(data).decode()})

    def close_stdin(self):
        self._call.send_input({"stdin_eof": True})

    def signal(self, signo):
        self._call.send_input({"signal": int(signo)})

    def resize(self, rows, cols):
        self._call.send_input({"resize": [int(rows), int(cols)]})

    def __iter__(self):
        while True:
            try:
                yield self._q.get(timeout=0.05)
                continue
            except queue.Empty:
                pass
            if not self._call._thread.is_alive():
                break
        while not self._q.empty():
            yield self._q.get()
        self.result = self._call.result()
        self.exit_code = self.result["exit_code"]

    def wait(self):
        for _ in self:
            pass
        return self.exit_code


class Session:
    """A durable session in a VM (the guest owns its process). Fields as of
    the last call: .state ("running"/"exited"), .pid, .exit_code, .signal.
    With `with`, a session still running is stopped on exit."""

    def __init__(self, vm, doc):
        self._vm = vm
        self.doc = doc

    name = property(lambda self: self.doc["name"])
    state = property(lambda self: self.doc["state"])
    pid = property(lambda self: self.doc.get("pid"))
    exit_code = property(lambda self: self.doc.get("exit_code"))
    signal = property(lambda self: self.doc.get("signal"))

    def __repr__(self):
        return f"Session({self.name!r}, {self.state})"

    def _params(self, **extra):
        return {"name": self._vm.id, "session": self.name, **extra}

    def _verb(self, method, **extra):
        doc = self._vm._ctx.call(method, self._params(**extra))
        self.doc = {k: v for k, v in doc.items()}
        return self

    def refresh(self):
        return self._verb("vm.session.show")

    def send(self, text):
        """Writes text to a pipe session's stdin."""
        return self._vm._ctx.call("vm.session.send", self._params(data=text))["bytes"]

    def stop(self):
        return self._verb("vm.session.stop")

    def kill(self, signal="KILL"):
        return self._verb("vm.session.kill", signal=str(signal))

    def logs(self, output=None, tail=None):
        """Its output so far (str; bytes when not UTF-8): both streams in order, or
        output="stdout"/"stderr"."""
        p = self._params()
        if output:
            p["output"] = output
        if tail is not None:
            p["tail"] = int(tail)
        return _text_or_bytes(self._vm._ctx.call("vm.session.logs", p), "stdout")

    def follow(self, tail=None):
        """A Stream of its output until it ends."""
        p = self._params(follow=True)
        if tail is not None:
            p["tail"] = int(tail)
        return Stream(self._vm._ctx, p, "vm.session.logs", stdin=False)

    def attach(self, holder="python"):
        """A Stream attached to it: its live output; .send() to its stdin or pty."""
        return Stream(self._vm._ctx, self._params(holder=holder), "vm.session.attach")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.refresh().state == "running":
            self.stop()


class Sessions:
    """vm.sessions: start, get, list, iterate."""

    def __init__(self, vm):
        self._vm = vm

    def start(self, name, *argv, cwd=None, env=None, pipe_stdin=False, tty=False, require=()):
        p = {"name": self._vm.id, "session": name, "argv": [str(a) for a in argv],
             "stdin_mode": "pipe" if pipe_stdin else "detached", "tty": bool(tty), "require": list(require)}
        if cwd:
            p["cwd"] = cwd
        if env:
            p["env"] = [f"{k}={v}" for k, v in env.items()]
        return Session(self._vm, self._vm._ctx.call("vm.session.start", p))

    def get(self, name):
        return Session(self._vm, self._vm._ctx.call("vm.session.show", {"name": self._vm.id, "session": name}))

    def list(self):
        return [Session(self._vm, d) for d in self._vm._ctx.call("vm.session.list", {"name": self._vm.id})["sessions"]]

    def __iter__(self):
        return iter(self.list())


class VM:
    """A VM by its row; .refresh() reads it again. With `with`, an ephemeral
    VM (vms.create(ephemeral=True)) is deleted on exit, even on error."""

    def __init__(self, ctx, row, ephemeral=False):
        self._ctx = ctx
        self.row = row
        self.ephemeral = ephemeral

    name = property(lambda self: self.row["name"])
    id = property(lambda self: self.row["id"])
    state = property(lambda self: self.row["state"])
    ip = property(lambda self: self.row["ip"])

    def __repr__(self):
        return f"VM({self.name!r}, {self.state})"

    @property
    def sessions(self):
        return Sessions(self)

    def refresh(self):
        self.row = self._ctx.call("vm.show", {"name": self.id})
        return self

    def _exec_params(self, argv, cwd, env, user, timeout):
        p = {"name": self.id, "argv": [str(a) for a in argv]}
        if cwd:
            p["cwd"] = cwd
        if env:
            p["env"] = [f"{k}={v}" for k, v in env.items()]
        if user:
            p["user"] = user
        if timeout:
            p["timeout_s"] = int(timeout)
        return p

    def exec(self, *argv, cwd=None, env=None, user=None, stdin=None, timeout=None, check=False):
        """Runs argv over the guest agent and returns an ExecResult."""
        p = self._exec_params(argv, cwd, env, user, timeout)
        if stdin is not None:
            p["stdin"] = stdin
        r = ExecResult(self._ctx.call("vm.exec", p))
        if check and r.exit_code:
            raise CommandFailed(argv, r)
        return r

    def stream(self, *argv, cwd=None, env=None, user=None, timeout=None):
        """Starts argv and returns a Stream of its output as it comes."""
        return Stream(self._ctx, self._exec_params(argv, cwd, env, user, timeout))

    def cp_to(self, host_path, guest_path, progress=None):
        import os
        return self._ctx.call("vm.cp", {"name": self.id, "direction": "in", "host_path": os.path.abspath(host_path),
                                        "guest_path": guest_path}, progress=progress)

    def cp_from(self, guest_path, host_path, progress=None):
        import os
        return self._ctx.call("vm.cp", {"name": self.id, "direction": "out",
                                        "host_path": os.path.abspath(host_path), "guest_path": guest_path},
                              progress=progress)

    def workspace_prepare(self, path, guest_path=None, include_untracked=False, dry_run=False, force=False,
                          progress=None):
        """The git repository at path into the guest (vm.workspace.prepare);
        progress(banger.Progress) gets its stages."""
        import os
        params = {"name": self.id, "path": os.path.abspath(path)}
        if guest_path:
            params["guest_path"] = guest_path
        for key, on in (("include_untracked", include_untracked), ("dry_run", dry_run), ("force", force)):
            if on:
                params[key] = True
        return self._ctx.call("vm.workspace.prepare", params, progress=progress)

    def workspace_export(self, base_commit=None):
        """The guest checkout's changes as bytes for `git apply`, and the changed files."""
        import base64
        params = {"name": self.id}
        if base_commit:
            params["base_commit"] = base_commit
        r = self._ctx.call("vm.workspace.export", params)
        patch = base64.b64decode(r["patch_b64"]) if "patch_b64" in r else r["patch"].encode()
        return patch, r["files"]

    def workspace(self):
        """The workspace record (vm.workspace.show)."""
        return self._ctx.call("vm.workspace.show", {"name": self.id})

    def workspace_status(self):
        """The workspace record plus whether the host tree changed since shipping (changed, reason)."""
        return self._ctx.call("vm.workspace.status", {"name": self.id})

    def ports(self):
        return self._ctx.call("vm.ports", {"name": self.id})["ports"]

    def logs(self):
        return self._ctx.call("vm.logs", {"name": self.id})["console"]

    def _verb(self, method, progress=None, **extra):
        self.row = self._ctx.call(method, {"name": self.id, **extra}, progress=progress)
        return self

    def start(self, progress=None):
        """Boots it; progress(banger.Progress) gets the boot's stages."""
        return self._verb("vm.start", progress)

    def stop(self):
        return self._verb("vm.stop")

    def restart(self, progress=None):
        return self._verb("vm.restart", progress)

    def kill(self, signal=None):
        return self._verb("vm.kill", **({"signal": signal} if signal else {}))

    def delete(self):
        self._ctx.call("vm.delete", {"name": self.id})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.ephemeral:
            self.delete()


class VMs:
    def __init__(self, ctx):
        self._ctx = ctx

    def create(self, name=None, image=None, kernel=None, vcpu=None, memory_mib=None, disk_size=None, nat=False,
               start=True, ephemeral=False, on_event=None, init=None, progress=None):
        """A new VM; progress(banger.Progress) gets its stages (on_event(dict)
        the raw events)."""
        p = {k: v for k, v in dict(name=name, image=image, kernel=kernel, vcpu=vcpu, memory_mib=memory_mib,
                                   disk_size=disk_size, init=init).items() if v is not None}
        if nat:
            p["nat"] = True
        if not start:
            p["start"] = False
        return VM(self._ctx, self._ctx.call("vm.create", p, on_event=on_event, progress=progress), ephemeral)

    def get(self, name):
        return VM(self._ctx, self._ctx.call("vm.show", {"name": name}))

    def list(self, all=False):
        return [VM(self._ctx, r) for r in self._ctx.call("vm.list", {"all": all})["vms"]]

    def __iter__(self):
        return iter(self.list(all=True))


class _Store:
    kind = None

    def __init__(self, ctx):
        self._ctx = ctx

    def list(self):
        return self._ctx.call(f"{self.kind}.list")[f"{self.kind}s"]

    def get(self, name):
        return self._ctx.call(f"{self.kind}.show", {"name": name})

    def rm(self, name):
        return self._ctx.call(f"{self.kind}.rm", {"name": name})

    def catalog(self):
        return self._ctx.call(f"{self.kind}.catalog")


class Images(_Store):
    """ctx.images; pull, build and import_tars take progress(banger.Progress)."""
    kind = "image"

    def pull(self, ref, name=None, progress=None, **kw):
        return self._ctx.call("image.pull", {"ref": ref, **({"name": name} if name else {}), **kw}, progress=progress)

    def build(self, progress=None, **kw):
        return self._ctx.call("image.build", kw, progress=progress)

    def import_tars(self, name, tars, progress=None, **kw):
        return self._ctx.call("image.import", {"name": name, "tars": [str(t) for t in tars], **kw},
                              progress=progress)


class Kernels(_Store):
    kind = "kernel"

    def import_deb(self, name, deb, progress=None):
        return self._ctx.call("kernel.import", {"name": name, "deb": str(deb)}, progress=progress)
