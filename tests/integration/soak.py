"""The soak (issue 13 part 6): one harness that the CI runs small
(tests/integration/test_vm_soak.py) and bench/soak.py runs large.

- Cycles: `banger vm create` -> `banger vm exec NAME -- sh -c ...` (its
  status and stdout checked) -> `banger vm rm`, through one bangerd. After
  each cycle, once the daemon has settled (its warm tap pool full again, its
  fd count steady), a sample: bangerd's RSS (VmRSS), open fds, threads and
  unreaped children, the engine's taps on the host, the state directory's
  disk usage (without the SQLite WAL, which is sampled apart: its size is
  bounded by the auto-checkpoint, not by the work), and the row count of
  every table of the state database. A metric's verdict looks at the
  second half of the cycles (the first half is warm-up): counts must not
  move at all (`exact`), RSS may drift by less than a bound per cycle
  (least-squares slope), disk may move by a block at most.
- Concurrency: N `banger vm run --rm --name cN -- sh -c 'echo cN; exit K'`
  at once, each with its own K, mixed with M `banger image pull`s from a
  local registry (and one pull of a tag the registry does not have): every
  command must end within a bound with its own status and output, and
  afterwards nothing may be left (no VM row, no VMM process of this daemon,
  no tap beyond the warm pool, every campaign invariant holds).

Nothing here reaches beyond this machine: the registry is local and VM work
runs in the caller's private network namespace."""
import os
import sqlite3
import subprocess
import time
from pathlib import Path

from campaign import Harness, host_taps, table, violations, vmm_processes  # noqa: F401 (table re-exported)

SOAK_COLUMNS = ("metric", "before", "first", "last", "slope/cycle", "verdict")
CONCURRENT_COLUMNS = ("command", "want", "got", "seconds", "verdict")
PAGE = 4096


# ---- what bangerd holds ----

def proc_status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def zombies(pid):
    """bangerd's children that exited and that it has not reaped."""
    n = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            n += 1
    return n


def engine_taps(prefix):
    return len([t for t in host_taps() if t.startswith(prefix)])


def disk_usage(state):
    """(KiB the state directory takes on disk without the database, KiB of
    the WAL and its index): blocks allocated, each inode counted once. The
    database file is left out: it grows once its pages first come back
    from the WAL (the first checkpoint), by what the WAL held; the pages it
    uses are sampled instead (db_pages)."""
    seen, main, wal = set(), 0, 0
    for dirpath, dirnames, filenames in os.walk(state):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if name in ("state.db-wal", "state.db-shm"):
                wal += st.st_blocks * 512
            elif name != "state.db":
                main += st.st_blocks * 512
    return main // 1024, wal // 1024


def row_counts(state):
    """{table: rows} of every table in the state database but the schema's
    own, and "db_pages": the pages the database uses (not free)."""
    db = sqlite3.connect(f"file:{Path(state) / 'state.db'}?mode=ro", uri=True, timeout=30)
    try:
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                           "'sqlite_%' AND name NOT IN ('meta', 'schema_migrations') ORDER BY name")]
        counts = {f"rows {t}": db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        return {"db_pages": pages, **counts}
    finally:
        db.close()


# ---- metrics ----

class Metric:
    """How one sampled quantity is judged. kind: "exact" (must not move
    after warm-up), "slope" (least-squares slope per cycle below `limit`),
    "range" (moves by at most `limit` after warm-up), "bound" (never above
    `limit`)."""

    def __init__(self, name, kind, limit=0, unit=""):
        self.name, self.kind, self.limit, self.unit = name, kind, limit, unit


def slope(ys):
    """Least-squares slope of ys over 0, 1, 2, ... (0 for fewer than 2)."""
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in enumerate(ys)) / sum((x - mx) ** 2 for x in range(n))


def judge(metric, window):
    """(verdict, ok) for a metric's samples after warm-up."""
    s = slope(window)
    spread = max(window) - min(window)
    if metric.kind == "exact":
        return ("flat", True) if spread == 0 else (f"MOVED by {spread}", False)
    if metric.kind == "slope":
        ok = s < metric.limit
        return (f"{'ok' if ok else 'GROWS'} (< {metric.limit:g}{metric.unit})", ok)
    if metric.kind == "range":
        ok = spread <= metric.limit
        return (f"{'flat' if ok else 'MOVED'} (range {spread} {'<=' if ok else '>'} {metric.limit:g}{metric.unit})",
                ok)
    if metric.kind == "bound":
        ok = max(window) <= metric.limit
        return (f"{'bounded' if ok else 'ABOVE'} (<= {metric.limit:g}{metric.unit})", ok)
    raise ValueError(metric.kind)


def metrics(rss_limit_kib):
    return [Metric("rss_kib", "slope", rss_limit_kib, " KiB"), Metric("fds", "exact"),
            Metric("threads", "exact"), Metric("zombies", "exact"), Metric("taps", "exact"),
            Metric("disk_kib", "range", PAGE // 1024, " KiB"), Metric("db_pages", "exact"),
            # the WAL restarts after each checkpoint (every 1000 pages): never much past that
            Metric("wal_kib", "bound", 1100 * (PAGE + 24) // 1024 + 32, " KiB")]


def soak_table(samples, before, judged, warmup, idle=None):
    """Rows for table(): per metric its value before the first cycle, after
    the first and the last, the slope over the judged window and the
    verdict; returns (rows, failures). idle: samples of an idle daemon taken
    at the same moments, whose slope is printed beside (the baseline)."""
    rows, bad = [], []
    for m in judged:
        ys = [s[m.name] for s in samples]
        window = ys[warmup:]
        verdict, ok = judge(m, window)
        row = [m.name, before.get(m.name, "-"), ys[0], ys[-1], f"{slope(window):+.2f}", verdict]
        if idle is not None:
            iys = [s.get(m.name) for s in idle]
            row.insert(5, f"{slope(iys[warmup:]):+.2f}" if None not in iys else "-")
        rows.append(row)
        if not ok:
            bad.append(f"{m.name}: {verdict}: {ys}")
    return rows, bad


# ---- the harness ----

class Soak:
    """A Harness (bangerd this code starts, so its pid is known) with an
    image built from the shared cache's tar as the default and the cloud
    kernel: "minbase" (debootstrap minbase without systemd, banger's init
    and its sshd: the quickest boot) or "debian" (systemd). Its content
    cache is its own, with rootfs/ the shared one's, so that pulls here
    never add blobs to the shared cache."""

    IMAGES = {"minbase": ("debian-bookworm-minimal-nosystemd", {"minimal": True, "systemd": False}),
              "debian": ("debian-bookworm", {"minimal": True, "name": "debian-bookworm"})}

    def __init__(self, root, build, child_env, shared_cache, deb, runtime, image="minbase", vcpu=1, memory_mib=512,
                 disk="1G"):
        root = Path(root)
        cache = root / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        if not (cache / "rootfs").exists():
            (cache / "rootfs").symlink_to(Path(shared_cache) / "rootfs")
        self.h = Harness(root, build, child_env, cache=cache, runtime=runtime,
                         config=f'vmm = "qemu"\nqemu_accel = "tcg"\ndefault_image_name = "{self.IMAGES[image][0]}"\n'
                                f'[vm_defaults]\nvcpu = {vcpu}\nmemory_mib = {memory_mib}\ndisk_size = "{disk}"\n')
        self.deb, self.image = deb, image

    def start(self, populate=True):
        """bangerd up; populate: the Debian image and cloud kernel imported."""
        h = self.h
        h.start()
        self.prefix = h.call("engine.status")["tap_pool"]["prefix"]
        if not populate:
            return self
        name, params = self.IMAGES[self.image]
        assert h.call("image.build", params)["name"] == name
        h.call("kernel.import", {"name": "debian-cloud", "deb": str(self.deb)})
        return self

    def stop(self):
        for vm in self.h.rows("vms"):
            self.h.cli("vm", "rm", vm["name"])
        return self.h.stop()

    def settle(self, timeout=10.0):
        """Waits until the warm tap pool is full (once it has started) and
        bangerd's fd count holds still for 0.2 s: what a sample must not
        catch is a refill or a client's connection half closed."""
        h = self.h
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            pool = h.call("engine.status")["tap_pool"]
            fds = open_fds(h.proc.pid)
            full = len(pool["idle"]) >= pool["size"] or engine_taps(self.prefix) == 0 or pool.get("error")
            if full and fds == last:
                return
            last = fds
            time.sleep(0.2)

    def sample(self):
        pid = self.h.proc.pid
        disk, wal = disk_usage(self.h.state)
        s = {"rss_kib": proc_status(pid, "VmRSS"), "fds": open_fds(pid), "threads": proc_status(pid, "Threads"),
             "zombies": zombies(pid), "taps": engine_taps(self.prefix), "disk_kib": disk, "wal_kib": wal}
        s.update(row_counts(self.h.state))
        return s

    def cycle(self, i, timings):
        """create -> exec -> rm of VM soak-i; returns the problems seen."""
        name = f"soak-{i}"
        bad = []
        steps = [("create", ("vm", "create", "--name", name), 0, None),
                 ("exec", ("vm", "exec", name, "--", "sh", "-c", f"echo $(hostname) {i}; exit {i % 100 + 3}"),
                  i % 100 + 3, f"{name} {i}\n"),
                 ("rm", ("vm", "rm", name), 0, None)]
        for step, argv, want, out in steps:
            t0 = time.monotonic()
            p = self.h.cli(*argv, timeout=300)
            timings.setdefault(step, []).append(time.monotonic() - t0)
            if p.returncode != want or (out is not None and p.stdout != out):
                bad.append(f"cycle {i} {step}: exit {p.returncode} (want {want}), stdout {p.stdout!r}, "
                           f"stderr {p.stderr.strip()[-300:]!r}")
                if step == "create":  # nothing to exec; rm whatever the failed create left
                    self.h.cli("vm", "rm", name)
                    break
        return bad


def run_cycles(soak, n, rss_limit_kib, log=print, idle=None):
    """n create/exec/rm cycles with a sample after each; returns (rows for
    table(), columns, failures, {step: [seconds]}). idle: a second Soak
    that does no work, sampled at the same moments (the baseline)."""
    soak.settle()
    before = soak.sample()
    samples, idle_samples, failures, timings = [], [], [], {}
    for i in range(1, n + 1):
        failures += soak.cycle(i, timings)
        soak.settle()
        samples.append(soak.sample())
        if idle is not None:
            idle_samples.append(idle.sample())
        s = samples[-1]
        log(f"  cycle {i}/{n}: rss {s['rss_kib']} KiB, fds {s['fds']}, threads {s['threads']}, taps {s['taps']}, "
            f"disk {s['disk_kib']} KiB, wal {s['wal_kib']} KiB, vms {s.get('rows vms')}")
    warmup = n // 2
    judged = metrics(rss_limit_kib) + [Metric(k, "exact") for k in sorted(samples[0]) if k.startswith("rows ")]
    rows, bad = soak_table(samples, before, judged, warmup, idle_samples if idle is not None else None)
    # rows are state, not cache: not one may differ from before the first cycle either
    for m in judged:
        if m.name.startswith("rows ") and any(s[m.name] != before[m.name] for s in samples):
            bad.append(f"{m.name}: {before[m.name]} before the cycles, {[s[m.name] for s in samples]} after them")
    columns = SOAK_COLUMNS if idle is None else SOAK_COLUMNS[:5] + ("idle slope",) + SOAK_COLUMNS[5:]
    return rows, columns, failures + bad, timings


# ---- concurrency ----

def push_pull_images(registry, m, size_mib=4):
    """soak/pN:1 for N < m: each two gzip layers of size_mib/2 MiB of
    incompressible data (its own blobs: every pull downloads)."""
    import gzip
    import io
    import tarfile
    from registry import LAYER_TYPES, Layer, sha256_digest
    refs = []
    for n in range(m):
        layers = []
        for k in range(2):
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w") as t:
                data = os.urandom((size_mib << 20) // 2)
                info = tarfile.TarInfo(f"data{k}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            body = raw.getvalue()
            layers.append(Layer(gzip.compress(body, compresslevel=1, mtime=0), LAYER_TYPES[("oci", "gzip")],
                                sha256_digest(body)))
        registry.push_image(f"soak/p{n}", "1", layers, fmt="oci")
        refs.append(f"{registry.host}/soak/p{n}:1")
    return refs


def concurrent(soak, n, pull_refs, missing_ref=None, bound_s=600, log=print):
    """n `vm run --rm` (each its own exit status and output) started
    together with a pull of each of pull_refs, spread among them (and one
    of missing_ref, which must fail), each command given at most bound_s;
    then the aftermath is checked. Returns (rows, failures)."""
    import threading
    h = soak.h
    jobs = [(f"vm run --rm --name c{i}", ("vm", "run", "--rm", "--name", f"c{i}", "--", "sh", "-c",
                                          f"echo $(hostname); exit {10 + i}"), 10 + i, f"c{i}\n")
            for i in range(n)]
    pulls = [(f"image pull soak/p{j}", ("image", "pull", ref, "--name", f"pulled-{j}"), 0, None)
             for j, ref in enumerate(pull_refs)]
    if missing_ref:
        pulls.append(("image pull (missing tag)", ("image", "pull", missing_ref, "--name", "missing"), 1, None))
    for k, job in enumerate(pulls):  # evenly among the runs
        jobs.insert(round((k + 0.5) * n / len(pulls)) + k, job)
    images_before = {r["name"] for r in h.rows("images")}
    results = [None] * len(jobs)
    t0 = time.monotonic()

    def one(k):
        argv = jobs[k][1]
        try:
            p = subprocess.run([str(h.banger), *argv], capture_output=True, text=True, env=h.child_env,
                               timeout=bound_s)
            results[k] = (p.returncode, p.stdout, p.stderr, time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            results[k] = None  # killed by subprocess.run: it hung
    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log(f"  {len(jobs)} commands ended within {time.monotonic() - t0:.1f} s")
    rows, bad = [], []
    for (label, argv, want, out), r in zip(jobs, results):
        if r is None:
            rows.append((label, want, "-", f">{bound_s}", "HUNG"))
            bad.append(f"{label}: still running {bound_s} s after the start (deadlock?)")
            continue
        code, stdout, stderr, took = r
        ok = code == want and (out is None or stdout == out)
        rows.append((label, want, code, f"{took:.1f}", "ok" if ok else "WRONG"))
        if not ok:
            bad.append(f"{label}: exit {code} (want {want}), stdout {stdout!r}, stderr {stderr.strip()[-300:]!r}")
    # every pull that had to work left its image, the missing one none
    names = {r["name"] for r in h.rows("images")}
    bad += [f"image pulled-{j} missing after its pull" for j in range(len(pull_refs)) if f"pulled-{j}" not in names]
    if "missing" in names:
        bad.append("the pull of a missing tag left an image")
    bad += aftermath(soak)
    for name in names - images_before:
        h.call("image.rm", {"name": name})
    return rows, bad


def aftermath(soak, timeout=30):
    """What must hold once every VM is gone: no VM row, no VMM process of
    this daemon, no tap beyond the warm pool, and every campaign invariant."""
    h = soak.h
    bad = []
    vms = [v["name"] for v in h.rows("vms")]
    if vms:
        bad.append(f"VM rows left: {vms}")
    deadline = time.monotonic() + timeout
    while vmm_processes(h) and time.monotonic() < deadline:  # a VMM reaped a moment after its row went
        time.sleep(0.2)
    if vmm_processes(h):
        bad.append(f"VMM processes left: {vmm_processes(h)}")
    soak.settle()
    pool = h.call("engine.status")["tap_pool"]
    if engine_taps(soak.prefix) > pool["size"]:
        bad.append(f"{engine_taps(soak.prefix)} taps with {pool['size']} in the pool")
    bad += violations(h)
    return bad
