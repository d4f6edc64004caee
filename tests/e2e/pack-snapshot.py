#!/usr/bin/env python3
"""Packs a directory as a miren snapshot (docs/backup-format.md), for tests
that need a backup miren did not make: one holding a logical dump, or a
disk whose data was damaged after the fact with valid checksums.

usage: pack-snapshot.py OUT HEADER_JSON DIR
  HEADER_JSON: the header object (format and format_version are added);
  DIR's tree becomes the members disk/...; OUT is zstd-compressed with
  content checksums (the zstd command).
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

out, header_json, root = sys.argv[1:4]
header = json.loads(header_json)
header.update({"format": "miren-disk-backup", "format_version": 1})
buf = io.BytesIO()
tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)


def add_bytes(name, data, mode=0o600):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


add_bytes("miren-backup.json", json.dumps(header).encode())
files, nbytes = {}, 0
for d, dirs, names in os.walk(root):
    dirs.sort()
    rel_d = os.path.relpath(d, root)
    if rel_d != ".":
        info = tarfile.TarInfo("disk/" + rel_d)
        info.type = tarfile.DIRTYPE
        info.mode = 0o700
        tar.addfile(info)
    for n in sorted(names):
        p = os.path.join(d, n)
        rel = "disk/" + os.path.relpath(p, root)
        if os.path.islink(p):
            info = tarfile.TarInfo(rel)
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(p)
            tar.addfile(info)
            continue
        data = open(p, "rb").read()
        add_bytes(rel, data, os.stat(p).st_mode & 0o777)
        files[rel] = hashlib.sha256(data).hexdigest()
        nbytes += len(data)
digest = hashlib.sha256(buf.getvalue()).hexdigest()
manifest = {"files": files, "archive_sha256": digest, "file_count": len(files), "bytes": nbytes}
add_bytes("miren-manifest.json", json.dumps(manifest).encode())
tar.close()
with open(out, "wb") as f:
    subprocess.run(["zstd", "-q", "--check", "-c"], input=buf.getvalue(), stdout=f, check=True)
