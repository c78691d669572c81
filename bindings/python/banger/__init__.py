"""Python binding for libbanger (ctypes). Thin by design: every operation is
a method of the library's dispatch table, called with JSON params.

    import banger
    with banger.open("local:/tmp/state") as ctx:     # in-process engine
        print(ctx.call("engine.status")["version"])
    with banger.open() as ctx:                        # bangerd, started on demand
        ctx.call("debug.ticks", {"count": 3}, progress=print)   # banger.Progress objects
        ctx.call("debug.ticks", {"count": 3}, on_event=print)   # the raw event dicts
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import json
import os
import threading
from typing import Optional

__all__ = ["open", "version", "Context", "Call", "Error", "Progress", "VM", "Session", "ExecResult",
           "CommandFailed"]

_lib = None
_EVENT_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)


def _load():
    global _lib
    if _lib is not None:
        return _lib
    path = os.environ.get("BANGER_LIBRARY") or ctypes.util.find_library("banger") or "libbanger.so.0"
    lib = ctypes.CDLL(path)
    sigs = {
        "banger_error_last": (ctypes.c_char_p, []),
        "banger_strerror": (ctypes.c_char_p, [ctypes.c_int]),
        "banger_version": (ctypes.c_char_p, []),
        "banger_free": (None, [ctypes.c_void_p]),
        "banger_opts_new": (ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p)]),
        "banger_opts_free": (None, [ctypes.c_void_p]),
        "banger_opts_set_autostart": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
        "banger_opts_set_daemon_path": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
        "banger_opts_set_config_path": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
        "banger_ctx_open": (ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_void_p]),
        "banger_ctx_unref": (None, [ctypes.c_void_p]),
        "banger_ctx_transport": (ctypes.c_char_p, [ctypes.c_void_p]),
        "banger_call_new": (ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_char_p]),
        "banger_call_unref": (None, [ctypes.c_void_p]),
        "banger_call_set_event_cb": (ctypes.c_int, [ctypes.c_void_p, _EVENT_CB, ctypes.c_void_p]),
        "banger_call_cancel": (None, [ctypes.c_void_p]),
        "banger_call_send_input": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
        "banger_call_result": (ctypes.c_char_p, [ctypes.c_void_p]),
        "banger_call_error": (ctypes.c_char_p, [ctypes.c_void_p]),
        "banger_call_run": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    _lib = lib
    return lib


class Error(Exception):
    """A libbanger error: .code (negative int), .name ("EINVAL"), .message."""

    def __init__(self, code, message):
        self.code = code
        self.name = _load().banger_strerror(code).decode()
        self.message = message
        super().__init__(f"{message} [{self.name}]")


# BEGIN errors: generated from lib/core/errors.tsv by scripts/gen-errors.py update; edit the table, not this
# One subclass of Error per code; _raise picks it by code.
class InvalidArgument(Error): """EINVAL (-1): invalid argument or parameter."""
class OutOfMemory(Error): """ENOMEM (-2): out of memory."""
class HostIOError(Error): """EIO (-3): I/O error on the host."""
class NotFound(Error): """ENOTFOUND (-4): no such object."""
class AlreadyExists(Error): """EEXIST (-5): object already exists."""
class Busy(Error): """EBUSY (-6): resource in use (e.g. state dir locked)."""
class PermissionDenied(Error): """EPERM (-7): permission denied."""
class Cancelled(Error): """ECANCELED (-8): operation cancelled."""
class ProtocolError(Error): """EPROTO (-9): malformed message or protocol violation."""
class UnknownMethod(Error): """ENOMETHOD (-10): unknown RPC method."""
class ConfigError(Error): """ECONFIG (-11): invalid configuration."""
class Unsupported(Error): """EUNSUPPORTED (-12): not supported by this host or driver."""
class StateError(Error): """ESTATE (-13): state store (SQLite) error."""
class TimedOut(Error): """ETIMEDOUT (-14): timed out."""
class DaemonUnreachable(Error): """ECONNECT (-15): daemon unreachable."""
class TooBig(Error): """ETOOBIG (-16): message or input over its size limit."""
class InternalError(Error): """EINTERNAL (-17): a bug in banger: please report it."""

_BY_CODE = {
    -1: InvalidArgument,
    -2: OutOfMemory,
    -3: HostIOError,
    -4: NotFound,
    -5: AlreadyExists,
    -6: Busy,
    -7: PermissionDenied,
    -8: Cancelled,
    -9: ProtocolError,
    -10: UnknownMethod,
    -11: ConfigError,
    -12: Unsupported,
    -13: StateError,
    -14: TimedOut,
    -15: DaemonUnreachable,
    -16: TooBig,
    -17: InternalError,
}
# END errors
__all__ += [cls.__name__ for cls in _BY_CODE.values()]


def _raise(code, message=None):
    if message is None:
        message = _load().banger_error_last().decode(errors="replace")
    raise _BY_CODE.get(code, Error)(code, message)


def version():
    """The library's stamp: "0.2.0 (commit, build date)"."""
    return _load().banger_version().decode()


@dataclasses.dataclass(frozen=True)
class Progress:
    """A progress event of a long call, read as C's banger_progress reads it
    (include/banger/progress.h): stage ("pull", "layer", "boot", ...); done
    and total (units: bytes, layers, ...) and seconds (how long the stage
    took), None when the event has none; message (its message, else its
    warning) and warning (its warning only); raw, the whole event dict."""
    stage: Optional[str]
    done: Optional[int]
    total: Optional[int]
    seconds: Optional[float]
    message: Optional[str]
    warning: Optional[str]
    raw: dict

    @classmethod
    def from_event(cls, ev):
        def count(key):
            v = ev.get(key)
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        def text(key):
            v = ev.get(key)
            return v if isinstance(v, str) else None

        secs = ev.get("seconds")
        secs = float(secs) if isinstance(secs, (int, float)) and not isinstance(secs, bool) else None
        message = text("message")
        return cls(text("stage"), count("done"), count("total"), secs,
                   message if message is not None else text("warning"), text("warning"), ev)


class Call:
    """One method call. Run it with Context.call, or in the background with
    Context.start (then .cancel() and .result()). on_event(dict) gets each
    event as sent; progress(Progress) gets each one typed."""

    def __init__(self, method, params=None, on_event=None, progress=None):
        lib = _load()
        self._ptr = ctypes.c_void_p()
        rc = lib.banger_call_new(ctypes.byref(self._ptr), method.encode(),
                                 json.dumps(params if params is not None else {}).encode())
        if rc:
            _raise(rc)
        self._on_event = on_event
        self._progress = progress
        self._cb = _EVENT_CB(self._deliver)  # keep alive as long as the call
        lib.banger_call_set_event_cb(self._ptr, self._cb, None)
        self._thread = None
        self._outcome = None

    def _deliver(self, event_json, _ud):
        ev = json.loads(event_json)
        if self._on_event:
            self._on_event(ev)
        if self._progress and isinstance(ev, dict):  # as C's adapter: objects only
            self._progress(Progress.from_event(ev))

    def _run(self, ctx):
        lib = _load()
        rc = lib.banger_call_run(ctx._ptr, self._ptr)
        if rc:
            self._outcome = (rc, lib.banger_call_error(self._ptr).decode(errors="replace"))
        else:
            self._outcome = (0, json.loads(lib.banger_call_result(self._ptr)))

    def cancel(self):
        _load().banger_call_cancel(self._ptr)

    def send_input(self, message):
        """Sends a dict to the running call (e.g. vm.exec's stdin)."""
        rc = _load().banger_call_send_input(self._ptr, json.dumps(message).encode())
        if rc:
            _raise(rc)

    def result(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("call still running")
        rc, value = self._outcome
        if rc:
            _raise(rc, value)
        return value

    def __del__(self):
        if getattr(self, "_ptr", None) and _lib is not None:
            _lib.banger_call_unref(self._ptr)
            self._ptr = None


class Context:
    """An open libbanger context; use as a context manager."""

    def __init__(self, uri="unix:", autostart=True, daemon_path=None, config_path=None):
        lib = _load()
        opts = ctypes.c_void_p()
        lib.banger_opts_new(ctypes.byref(opts))
        try:
            lib.banger_opts_set_autostart(opts, 1 if autostart else 0)
            if daemon_path:
                lib.banger_opts_set_daemon_path(opts, os.fsencode(daemon_path))
            if config_path:
                lib.banger_opts_set_config_path(opts, os.fsencode(config_path))
            self._ptr = ctypes.c_void_p()
            rc = lib.banger_ctx_open(ctypes.byref(self._ptr), uri.encode(), opts)
        finally:
            lib.banger_opts_free(opts)
        if rc:
            self._ptr = None
            _raise(rc)

    @property
    def vms(self):
        """VMs as objects: ctx.vms.create(...), .get(name), .list()."""
        from .objects import VMs
        return VMs(self)

    @property
    def images(self):
        from .objects import Images
        return Images(self)

    @property
    def kernels(self):
        from .objects import Kernels
        return Kernels(self)

    @property
    def transport(self):
        return _load().banger_ctx_transport(self._ptr).decode()

    def call(self, method, params=None, on_event=None, progress=None):
        """Runs method to completion; on_event(dict) or progress(Progress)
        gets its events."""
        c = Call(method, params, on_event, progress)
        c._run(self)
        return c.result()

    def start(self, method, params=None, on_event=None, progress=None):
        """Runs method on a background thread and returns its Call."""
        c = Call(method, params, on_event, progress)
        c._ctx = self  # keeps the context open while the call runs
        c._thread = threading.Thread(target=c._run, args=(self,), daemon=True)
        c._thread.start()
        return c

    def status(self):
        return self.call("engine.status")

    def config(self):
        return self.call("config.show")

    def doctor(self):
        return self.call("doctor")

    def close(self):
        if self._ptr:
            _load().banger_ctx_unref(self._ptr)
            self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_ptr", None) and _lib is not None:
            self.close()


def open(uri="unix:", **kwargs):
    """Opens a context: "local:[state-dir]" in process, "unix:[socket]" via
    bangerd (started on demand unless autostart=False)."""
    return Context(uri, **kwargs)


from .objects import VM, CommandFailed, ExecResult, Session  # noqa: E402  (they use the names above)
