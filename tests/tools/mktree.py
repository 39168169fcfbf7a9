#!/usr/bin/env python3
"""mktree.py -- build a test tree holding every kind of entry a backup must get right.

Usage: mktree.py DIR [--seed N]

DIR is created (it must not exist or be empty). The tree holds regular files of various sizes
(empty, 1 byte, 100 KB, 3 MiB random, 5 MiB compressible), a 64 MiB sparse file with a few
data blocks, hardlinks (within and across directories), symlinks (relative, absolute,
dangling), a fifo, a unix socket, a character device (root only), user.* xattrs on files and
directories, POSIX ACLs (with setfacl), odd names (NFC/NFD unicode, spaces, newline, leading
dash, 255 bytes, backslash, bytes that are not UTF-8), a path 40 directories deep, special
mode bits (setgid dir, sticky dir, 0000 file, setuid file), foreign owners without a passwd
entry (root only) and nanosecond, pre-1970 and far-future times.

Invariants: the same seed gives the same names, contents, modes, owners and times; only
inode numbers, ctimes and things the kernel decides (block allocation) differ. Metadata is
applied bottom-up in the order that keeps it (xattrs, owner, mode, times; children before
their parent) so nothing applied later disturbs it.

Layer: tests/tools (used by integration tests and scripts/demo.sh; standard library only).
"""

import argparse
import errno
import os
import random
import shutil
import socket
import stat
import subprocess
import sys

MIB = 1024 * 1024
NS = 1_000_000_000


class Tree:
    """Collects entries as they are created, then applies metadata in a safe order."""

    def __init__(self, root, seed):
        self.root = os.fsencode(root)
        self.rng = random.Random(seed)
        self.is_root = os.geteuid() == 0
        self.meta = []  # (relpath bytes, dict) in creation order
        self.warnings = []
        self.xattrs_ok = None

    def path(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    def note(self, rel, **meta):
        self.meta.append((rel, meta))

    # ---- entry creation -------------------------------------------------------------------

    def mkdir(self, rel, mode=0o755, **meta):
        os.mkdir(self.path(rel), 0o700)
        self.note(rel, mode=mode, **meta)

    def write(self, rel, data, mode=0o644, **meta):
        with open(self.path(rel), "wb") as f:
            f.write(data)
        self.note(rel, mode=mode, **meta)

    def symlink(self, rel, target, **meta):
        os.symlink(target, self.path(rel))
        self.note(rel, symlink=True, **meta)

    def random_times(self):
        """An mtime with nanoseconds, spread over 1990..2030, and an atime after it."""
        mtime = self.rng.randrange(631152000, 1893456000) * NS + self.rng.randrange(1, NS)
        atime = mtime + self.rng.randrange(0, 86400 * NS)
        return atime, mtime

    # ---- metadata -------------------------------------------------------------------------

    def set_xattr(self, rel, name, value):
        try:
            os.setxattr(self.path(rel), name, value, follow_symlinks=False)
            self.xattrs_ok = True
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            if self.xattrs_ok is None:
                self.warnings.append("filesystem has no user xattrs; none were set")
            self.xattrs_ok = False

    def apply(self):
        # Deepest first, so a parent's mtime is set after all its children exist.
        order = sorted(range(len(self.meta)), key=lambda i: (-self.meta[i][0].count(b"/"), i))
        for i in order:
            rel, m = self.meta[i]
            p = self.path(rel)
            for name, value in m.get("xattrs", {}).items():
                self.set_xattr(rel, name, value)
            if "owner" in m and self.is_root:
                os.chown(p, m["owner"][0], m["owner"][1], follow_symlinks=False)
            if "mode" in m:
                os.chmod(p, m["mode"])  # after chown, which clears setuid/setgid
            atime, mtime = m["times"] if "times" in m else self.random_times()
            os.utime(p, ns=(atime, mtime), follow_symlinks=False)


def compressible(rng, size):
    words = [b"backup", b"restore", b"snapshot", b"chunk", b"pack", b"index", b"coffer",
             b"tree", b"blob", b"key", b"repository", b"prune", b"retention", b"daily"]
    lines = []
    n = 0
    i = 0
    while n < size:
        line = b"%08d " % i + b" ".join(rng.choice(words) for _ in range(10)) + b"\n"
        lines.append(line)
        n += len(line)
        i += 1
    return b"".join(lines)[:size]


def build(t):
    rng = t.rng
    t.note(b"", mode=0o755)  # the root itself gets a mode and times last

    # Regular files of various sizes.
    t.mkdir(b"files", xattrs={"user.purpose": b"sizes", "user.empty": b""})
    t.write(b"files/empty", b"")
    t.write(b"files/one-byte", b"x")
    t.write(b"files/100k", rng.randbytes(100 * 1000),
            xattrs={"user.comment": b"hundred kilobytes", "user.bin": bytes(range(256))})
    t.write(b"files/random-3m", rng.randbytes(3 * MIB))
    t.write(b"files/compressible-5m", compressible(rng, 5 * MIB), mode=0o640)
    t.write(b"files/text.txt", b"hello, coffer\n", mode=0o600,
            xattrs={"user.mime_type": b"text/plain"})

    # A 64 MiB sparse file with a few data blocks (one at the very end).
    p = t.path(b"files/sparse-64m")
    with open(p, "wb") as f:
        f.truncate(64 * MIB)
        for off in (0, 1 * MIB, 20 * MIB + 12345, 64 * MIB - 4096):
            f.seek(off)
            f.write(rng.randbytes(4096))
    t.note(b"files/sparse-64m", mode=0o644)

    # Hardlinks: one inode with names in two directories, one with two names in one dir.
    t.mkdir(b"links")
    t.write(b"files/hardlink-a", rng.randbytes(5000))
    os.link(t.path(b"files/hardlink-a"), t.path(b"links/hardlink-b"))
    t.write(b"links/triple-1", b"three names\n")
    os.link(t.path(b"links/triple-1"), t.path(b"links/triple-2"))
    os.link(t.path(b"links/triple-1"), t.path(b"files/triple-3"))

    # Symlinks: relative, absolute, dangling, to a directory, a chain.
    t.symlink(b"links/rel", b"../files/text.txt")
    t.symlink(b"links/abs", b"/etc/hostname")
    t.symlink(b"links/dangling", b"does/not/exist")
    t.symlink(b"links/to-dir", b"../files")
    t.symlink(b"links/chain", b"rel")

    # Special files.
    t.mkdir(b"special")
    os.mkfifo(t.path(b"special/fifo"), 0o600)
    t.note(b"special/fifo", mode=0o620)
    cwd = os.open(".", os.O_RDONLY)
    try:
        os.chdir(t.path(b"special"))  # a relative name avoids the 108-byte sun_path limit
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("socket")
        s.close()
    finally:
        os.fchdir(cwd)
        os.close(cwd)
    t.note(b"special/socket", mode=0o755)
    if t.is_root:
        os.mknod(t.path(b"special/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        t.note(b"special/null", mode=0o666)
    else:
        t.warnings.append("not root: no device node, no foreign owners")

    # Odd names.
    t.mkdir(b"names", xattrs={"user.dir": b"odd names"})
    odd = [
        "caf\u00e9".encode(),  # NFC
        "cafe\u0301".encode(),  # NFD: a different name for the same text
        "with space",
        " leading and trailing ",
        "new\nline",
        "-leading-dash",
        "--",
        "a\\b",
        "star*?[glob]",
        "quote'\"",
        "tab\there",
        ".hidden",
        "\u65e5\u672c\u8a9e",
        "emoji-\U0001F600",
    ]
    for i, name in enumerate(odd):
        b = name if isinstance(name, bytes) else name.encode()
        t.write(b"names/" + b, b"odd name %d\n" % i)
    t.write(b"names/" + b"\xff\xfe-not-utf8", b"bytes\n")
    t.write(b"names/" + b"n" * 255, b"255-byte name\n")
    t.write(b"names/" + "\u00e9".encode() * 127 + b"x", b"255 bytes, multibyte\n")

    # A path 40 directories deep.
    rel = b"deep"
    t.mkdir(rel)
    for d in range(40):
        rel += b"/d%02d" % d
        t.mkdir(rel)
    t.write(rel + b"/leaf", b"at depth 40\n")

    # Mode bits.
    t.mkdir(b"modes")
    t.mkdir(b"modes/setgid-dir", mode=0o2775)
    t.write(b"modes/setgid-dir/inside", b"inherits the group\n")
    t.mkdir(b"modes/sticky-dir", mode=0o1777)
    t.write(b"modes/no-perms", b"mode 0000\n", mode=0o000)
    t.write(b"modes/setuid", b"#!/bin/sh\nexit 0\n", mode=0o4755)
    t.write(b"modes/setgid-file", b"#!/bin/sh\nexit 0\n", mode=0o2755)
    t.write(b"modes/exec", b"#!/bin/sh\nexit 0\n", mode=0o755)
    t.mkdir(b"modes/read-only-dir", mode=0o555)
    t.write(b"modes/read-only-dir/file", b"in a read-only directory\n", mode=0o444)

    # Owners without a passwd/group entry (applied only as root).
    t.mkdir(b"owners", owner=(0, 5678))
    t.write(b"owners/foreign", b"1234:5678\n", owner=(1234, 5678))
    t.write(b"owners/setuid-foreign", b"setuid kept after chown\n", owner=(1234, 5678),
            mode=0o4750)
    t.symlink(b"owners/link", b"foreign", owner=(4321, 8765))

    # Times: nanoseconds, before 1970, the epoch itself plus 1 ns, far future.
    t.mkdir(b"times")
    t.write(b"times/nanos", b"n", times=(1_500_000_000 * NS + 1, 1_234_567_890 * NS + 987_654_321))
    t.write(b"times/epoch", b"e", times=(1, 1))
    t.write(b"times/before-1970", b"o", times=(-631_152_000 * NS + 5, -631_152_000 * NS + 123))
    t.write(b"times/year-2100", b"f", times=(4_102_444_800 * NS + 7, 4_102_444_800 * NS + 999))
    t.symlink(b"times/link", b"nanos", times=(1_000_000_000 * NS + 11, 1_100_000_000 * NS + 13))

    # POSIX ACLs (system.posix_acl_* xattrs), when setfacl (Debian package acl) is there.
    t.mkdir(b"acl")
    t.write(b"acl/file", b"acl\n", mode=0o640)
    t.apply()
    if shutil.which("setfacl"):  # ACLs change neither mtime nor atime
        for args, rel in ((["-m", "u:1234:rw,g:5678:r"], b"acl/file"),
                          (["-d", "-m", "u:1234:rwx"], b"acl")):
            r = subprocess.run(["setfacl"] + args + [t.path(rel)], capture_output=True)
            if r.returncode != 0:
                t.warnings.append("setfacl failed: " + r.stderr.decode(errors="replace"))
                break
    else:
        t.warnings.append("setfacl not found (install acl): no ACLs")


def main():
    ap = argparse.ArgumentParser(description="Build a test tree with every kind of entry.")
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if os.path.lexists(a.dir):
        if not os.path.isdir(a.dir) or os.listdir(a.dir):
            print("mktree: %s exists and is not an empty directory" % a.dir, file=sys.stderr)
            return 2
    else:
        os.makedirs(a.dir)
    t = Tree(a.dir, a.seed)
    build(t)
    for w in t.warnings:
        print("mktree: warning: " + w, file=sys.stderr)
    count = sum(len(dirs) + len(files) for _, dirs, files in os.walk(a.dir))
    print("mktree: %d entries in %s (seed %d)" % (count, a.dir, a.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
