#!/usr/bin/env python3
"""treecmp.py -- compare two directory trees the way a restore must reproduce them.

Usage: treecmp.py A B [--no-atime] [--no-owner]

Checks, for every entry below A and B (the two roots' own metadata is not compared: a restore
target directory is usually made by the tool): the same set of names; the same type; mode
bits; uid/gid (unless --no-owner); mtime in nanoseconds (symlinks too: restore sets them with
AT_SYMLINK_NOFOLLOW); atime in nanoseconds of regular files (unless --no-atime: reading a
file without O_NOATIME moves it, so a backup tool must use O_NOATIME for this to hold; the
atimes of directories and symlinks move whenever something lists or readlinks them and are
not compared); size and sha256 of regular files; symlink targets; device numbers; user.*
xattrs and POSIX ACLs (system.posix_acl_*); hardlink structure (names sharing an inode in A
share one in B, and no others); sparseness (a sparse file in A takes at most 2x its
allocation + 1 MiB in B).

Prints one line per difference and exits 1 if there is any, 0 when the trees match, 2 on
usage errors. Reads files with O_NOATIME where permitted, and stats every entry before
reading it, so comparing does not disturb the atimes it compares.

Layer: tests/tools (standard library only).
"""

import argparse
import errno
import hashlib
import os
import stat
import sys

MIB = 1024 * 1024


def show(rel):
    """A printable, unambiguous form of a relative path (bytes)."""
    s = rel.decode("utf-8", "backslashreplace") if rel else "."
    return s.replace("\n", "\\n").replace("\t", "\\t")


def type_name(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISCHR, "chardev"), (stat.S_ISBLK, "blockdev"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "unknown"


def ns(st, which):
    return getattr(st, which + "_ns")


class Side:
    """One tree: lstat results by relative path, listed without following symlinks."""

    def __init__(self, root):
        self.root = os.fsencode(root)
        self.stats = {}
        self.errors = []
        self.walk(b"")

    def path(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    def walk(self, rel):
        try:
            names = sorted(os.listdir(self.path(rel)))
        except OSError as e:
            self.errors.append("cannot list %s: %s" % (show(rel), e.strerror))
            return
        for name in names:
            child = os.path.join(rel, name) if rel else name
            try:
                st = os.lstat(self.path(child))
            except OSError as e:
                self.errors.append("cannot stat %s: %s" % (show(child), e.strerror))
                continue
            self.stats[child] = st
            if stat.S_ISDIR(st.st_mode):
                self.walk(child)

    def sha256(self, rel):
        """Hex digest, or an error string starting with '!'."""
        p = self.path(rel)
        fd = None
        for flags in (os.O_RDONLY | os.O_NOATIME | os.O_NOFOLLOW, os.O_RDONLY | os.O_NOFOLLOW):
            try:
                fd = os.open(p, flags)
                break
            except OSError as e:
                if e.errno == errno.EPERM and flags & os.O_NOATIME:
                    continue  # O_NOATIME needs ownership or CAP_FOWNER
                return "!" + e.strerror
        h = hashlib.sha256()
        try:
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                h.update(b)
        except OSError as e:
            return "!" + e.strerror
        finally:
            os.close(fd)
        return h.hexdigest()

    def xattrs(self, rel):
        p = self.path(rel)
        try:
            names = os.listxattr(p, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                return {}
            return {"!error": e.strerror.encode()}
        out = {}
        for n in sorted(names):
            if not n.startswith("user.") and not n.startswith("system.posix_acl_"):
                continue
            try:
                out[n] = os.getxattr(p, n, follow_symlinks=False)
            except OSError as e:
                out[n] = ("!" + e.strerror).encode()
        return out

    def link_groups(self):
        """Sets of names sharing one inode (non-directories with more than one name here)."""
        by_ino = {}
        for rel, st in self.stats.items():
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                by_ino.setdefault((st.st_dev, st.st_ino), []).append(rel)
        return {frozenset(v) for v in by_ino.values() if len(v) > 1}


def compare(a, b, opts):
    diffs = []

    def diff(rel, what, va, vb):
        diffs.append("%s: %s differs: A=%s B=%s" % (show(rel), what, va, vb))

    for e in a.errors:
        diffs.append("A: " + e)
    for e in b.errors:
        diffs.append("B: " + e)
    for rel in sorted(set(a.stats) - set(b.stats)):
        diffs.append("%s: only in A" % show(rel))
    for rel in sorted(set(b.stats) - set(a.stats)):
        diffs.append("%s: only in B" % show(rel))

    for rel in sorted(set(a.stats) & set(b.stats)):
        sa, sb = a.stats[rel], b.stats[rel]
        ta, tb = type_name(sa.st_mode), type_name(sb.st_mode)
        if ta != tb:
            diff(rel, "type", ta, tb)
            continue
        if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            diff(rel, "mode", "%04o" % stat.S_IMODE(sa.st_mode), "%04o" % stat.S_IMODE(sb.st_mode))
        if not opts.no_owner and (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
            diff(rel, "owner", "%d:%d" % (sa.st_uid, sa.st_gid), "%d:%d" % (sb.st_uid, sb.st_gid))
        if ns(sa, "st_mtime") != ns(sb, "st_mtime"):
            diff(rel, "mtime_ns", ns(sa, "st_mtime"), ns(sb, "st_mtime"))
        if not opts.no_atime and ta == "file" and ns(sa, "st_atime") != ns(sb, "st_atime"):
            diff(rel, "atime_ns", ns(sa, "st_atime"), ns(sb, "st_atime"))
        if ta == "file":
            if sa.st_size != sb.st_size:
                diff(rel, "size", sa.st_size, sb.st_size)
            else:
                ha, hb = a.sha256(rel), b.sha256(rel)
                if ha != hb:
                    diff(rel, "content (sha256)", ha, hb)
            alloc_a, alloc_b = sa.st_blocks * 512, sb.st_blocks * 512
            if alloc_a < sa.st_size and alloc_b > 2 * alloc_a + MIB:
                diff(rel, "sparseness (allocated bytes)", alloc_a, alloc_b)
        elif ta == "symlink":
            la, lb = os.readlink(a.path(rel)), os.readlink(b.path(rel))
            if la != lb:
                diff(rel, "symlink target", show(la), show(lb))
        elif ta in ("chardev", "blockdev") and sa.st_rdev != sb.st_rdev:
            diff(rel, "device", "%d,%d" % (os.major(sa.st_rdev), os.minor(sa.st_rdev)),
                 "%d,%d" % (os.major(sb.st_rdev), os.minor(sb.st_rdev)))
        xa, xb = a.xattrs(rel), b.xattrs(rel)
        if xa != xb:
            for n in sorted(set(xa) | set(xb)):
                if xa.get(n) != xb.get(n):
                    diff(rel, "xattr " + n, xa.get(n), xb.get(n))

    ga, gb = a.link_groups(), b.link_groups()
    for g in sorted(ga - gb, key=sorted):
        diffs.append("hardlinks: names sharing an inode in A do not in B: " +
                     ", ".join(show(r) for r in sorted(g)))
    for g in sorted(gb - ga, key=sorted):
        diffs.append("hardlinks: names sharing an inode in B do not in A: " +
                     ", ".join(show(r) for r in sorted(g)))
    return diffs


def main():
    ap = argparse.ArgumentParser(description="Compare two trees: names, types, content, "
                                 "metadata, xattrs, hardlinks, sparseness.")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--no-atime", action="store_true", help="do not compare atimes")
    ap.add_argument("--no-owner", action="store_true", help="do not compare uid/gid")
    opts = ap.parse_args()
    for d in (opts.a, opts.b):
        if not os.path.isdir(d):
            print("treecmp: %s is not a directory" % d, file=sys.stderr)
            return 2
    a, b = Side(opts.a), Side(opts.b)
    diffs = compare(a, b, opts)
    for d in diffs:
        print(d)
    if diffs:
        print("treecmp: %d difference(s) between %s and %s" % (len(diffs), opts.a, opts.b))
        return 1
    print("treecmp: identical (%d entries)" % len(a.stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
