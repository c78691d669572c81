#!/usr/bin/python3
"""A fake Firecracker `jailer` for testing banger's jailed mode without KVM.

Takes the real jailer's arguments, checks them the way it does (required
options, an exec file whose name contains "firecracker", numeric uid/gid, an
absolute chroot base), builds <chroot-base>/<exec name>/<id>/root, copies the
exec file into it and makes the device nodes Firecracker needs there
(dev/kvm, dev/net/tun, dev/urandom, owned by the jail's uid/gid) like the real
one, then execs the copy from inside the jail in place (same pid, as the real
jailer does without --daemonize/--new-pid-ns; its command line names no host
path, as the real "/firecracker --id ..." does not) with FAKE_FC_ROOT=<root>
so absolute paths resolve inside the "chroot", and FAKE_FC_UID/GID so it
checks file permissions as the dropped uid/gid would. A noexec filesystem
fails that exec, a nodev one the device nodes, as they would the real ones.
It needs root, like the real jailer. The arguments it was given are appended
as one JSON line to $FAKE_JAILER_LOG when that is set.
"""
import json
import os
import re
import shutil
import stat
import sys

# tests/run preloads the sanitizers into Python; this is a plain program.
if "LD_PRELOAD" in os.environ and "san" in os.environ["LD_PRELOAD"]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

TAKES_VALUE = {"--id", "--exec-file", "--uid", "--gid", "--chroot-base-dir", "--netns", "--cgroup",
               "--cgroup-version", "--parent-cgroup", "--resource-limit"}
FLAGS = {"--daemonize", "--new-pid-ns"}
MULTI = {"--cgroup", "--resource-limit"}
# what the v1.16 jailer mknods in the chroot: name -> (major, minor)
DEVICES = {"dev/kvm": (10, 232), "dev/net/tun": (10, 200), "dev/urandom": (1, 9)}


def die(msg):
    sys.stderr.write(f"Jailer error: {msg}\n")
    sys.exit(1)


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    opts = {"--chroot-base-dir": "/srv/jailer", "--cgroup-version": "1"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in FLAGS:
            opts[a] = True
            i += 1
        elif a in TAKES_VALUE and i + 1 < len(argv):
            if a in MULTI:
                opts.setdefault(a, []).append(argv[i + 1])
            else:
                opts[a] = argv[i + 1]
            i += 2
        else:
            die(f"Arguments parsing error: unexpected argument '{a}'")
    if os.environ.get("FAKE_JAILER_LOG"):
        with open(os.environ["FAKE_JAILER_LOG"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"args": sys.argv[1:], "pid": os.getpid()}) + "\n")
    for req in ("--id", "--exec-file", "--uid", "--gid"):
        if req not in opts:
            die(f"Arguments parsing error: missing argument {req}")
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", opts["--id"]):
        die(f"Invalid instance ID: {opts['--id']}")
    for k in ("--uid", "--gid"):
        if not opts[k].isdigit():
            die(f"Invalid {k[2:]}: {opts[k]}")
    if opts["--cgroup-version"] not in ("1", "2"):
        die(f"Invalid cgroup version: {opts['--cgroup-version']}")
    exec_file = opts["--exec-file"]
    if not os.path.isfile(exec_file):
        die(f"Failed to canonicalize path {exec_file}: No such file or directory (os error 2)")
    name = os.path.basename(exec_file)
    if "firecracker" not in name:
        die(f'Invalid filename. The filename of `--exec-file` option must contain "firecracker": {name}')
    base = opts["--chroot-base-dir"]
    if not os.path.isabs(base):
        die(f"--chroot-base-dir must be absolute: {base}")
    if os.geteuid() != 0:
        die("Failed to change ownership: the jailer must run as root")
    root = os.path.join(base, name, opts["--id"], "root")
    uid, gid = int(opts["--uid"]), int(opts["--gid"])
    os.makedirs(root, exist_ok=True)
    shutil.copyfile(exec_file, os.path.join(root, name))
    os.chmod(os.path.join(root, name), 0o755)
    for dev, (major, minor) in DEVICES.items():
        path = os.path.join(root, dev)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(major, minor))
            os.chown(path, uid, gid)
        except OSError as e:
            die(f"Failed to create /{dev} via mknod inside the jail: {e.strerror} (os error {e.errno})")
    os.chdir(root)
    # the copy cannot find its contract from the jail: point it at ours
    contract = os.path.join(os.path.dirname(os.path.realpath(exec_file)), "..", "data", "firecracker-contract.json")
    env = dict(os.environ, FAKE_FC_ROOT=root, FAKE_FC_UID=opts["--uid"], FAKE_FC_GID=opts["--gid"],
               FAKE_FC_CONTRACT=os.environ.get("FAKE_FC_CONTRACT") or os.path.realpath(contract))
    try:
        os.execve("./" + name, ["/" + name, "--id", opts["--id"], "--start-time-us", "0", "--start-time-cpu-us", "0",
                                *extra], env)
    except OSError as e:
        die(f"Failed to exec into Firecracker: {e.strerror} (os error {e.errno})")


if __name__ == "__main__":
    main()
