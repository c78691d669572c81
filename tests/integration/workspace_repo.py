"""A real git repository for the workspace tests: a binary file, an
executable, a symlink, a name with spaces and a non-ASCII one, a file to
rename and one to delete, an ignored file and an untracked one."""
import os
import subprocess

GIT_ENV = {"GIT_AUTHOR_NAME": "Host Dev", "GIT_AUTHOR_EMAIL": "host@example.org",
           "GIT_COMMITTER_NAME": "Host Dev", "GIT_COMMITTER_EMAIL": "host@example.org"}

TRACKED = sorted([".gitignore", "README.md", "bin.dat", "run.sh", "link", "with space.txt", "ünïcode.txt",
                  "old name.txt", "gone.txt", "dir/nested.c"])


def git(cwd, *args, check=True, **kw):
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=check, env=env, **kw)


def make_repo(root):
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Host Dev")
    git(root, "config", "user.email", "host@example.org")
    git(root, "config", "remote.origin.url", "https://example.org/upstream.git")
    (root / ".gitignore").write_text("*.log\n")
    (root / "README.md").write_text("hello\n")
    (root / "bin.dat").write_bytes(bytes(range(256)) * 8)
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("README.md", root / "link")
    (root / "with space.txt").write_text("spaces\n")
    (root / "ünïcode.txt").write_text("unicode\n")
    (root / "old name.txt").write_text("to be renamed\n" * 20)
    (root / "gone.txt").write_text("to be deleted\n")
    (root / "dir").mkdir()
    (root / "dir" / "nested.c").write_text("int main(void) { return 0; }\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    (root / "README.md").write_text("hello\nuncommitted host edit\n")  # carried over as a change
    (root / "debug.log").write_text("ignored\n")
    (root / "notes.txt").write_text("untracked\n")
    return root


def ls_files(root):
    out = git(root, "ls-files", "-z").stdout.decode()
    return sorted(p for p in out.split("\0") if p)
