#!/usr/bin/env python3
"""Runs the examples of README.md and docs/commands/*.md (t0801).

usage: docs-examples.py SRC WORKDIR BINDIR; prints TAP-like "ok - ..." /
"not ok - ..." lines.  See t0801-docs-examples.sh for the rules.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

SRC, WORK, BINDIR = sys.argv[1:4]
# The CLI's own settings (clusters.toml) in the working directory, never
# the user's.
ENV = dict(os.environ, PATH=BINDIR + ":" + os.environ["PATH"],
           XDG_CONFIG_HOME=os.path.join(WORK, ".config"))


def report(good, desc):
    print(("ok - " if good else "not ok - ") + desc, flush=True)


def blur(line):
    """A line's shape: paths, ids, numbers and spacing blurred."""
    line = re.sub(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b", "BACKUP", line)
    line = re.sub(r"(?<![\w.:/])/[\w.@%+-]+(/[\w.@%+-]*)*", "/PATH", line)
    line = re.sub(r"\b(?=[0-9a-f]*[0-9])[0-9a-f]{6,}\b", "H", line)
    line = re.sub(r"s[0-9a-f]{6,}", "sH", line)
    line = re.sub(r"\b(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[A-Za-z0-9]{20,}\b", "SECRET", line)
    line = re.sub(r"\d+(\.\d+)?", "9", line)
    line = re.sub(r"\b\d{8}-\d{6}\b", "STAMP", line)
    return " ".join(line.split())


def examples(path):
    # (A page's example setup comments hold shell, run in WORKDIR.)
    """(setup commands, [(command, expected lines, excuse)]) of one page."""
    text = open(path).read().split("\n")
    setup, found = [], []
    excuse = None
    in_fence = False
    block = []
    using_it = False
    for i, line in enumerate(text):
        m = re.match(r"<!-- example setup: (.*) -->$", line.strip())
        if m:
            setup.append(m.group(1))
            continue
        m = re.match(r"<!-- not run: (.*) -->$", line.strip())
        if m:
            excuse = m.group(1)
            continue
        if line.startswith("```"):
            if in_fence:
                found += parse_block(block, excuse)
                excuse = None
            in_fence = not in_fence
            block = []
            continue
        if in_fence:
            block.append(line)
            continue
        if line.startswith("## "):
            using_it = os.path.basename(path) == "README.md" and line == "## Using it"
        if line.startswith("    ") and not line.startswith("     "):
            block.append(line[4:])
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if not nxt.startswith("    "):
                if using_it and not any(b.startswith("$ ") for b in block):
                    block = ["$ " + strip_comment(b) for b in block if b.strip()]
                found += parse_block(block, excuse)
                excuse = None
                block = []
        elif line.strip():
            excuse = excuse if line.startswith("<!--") else None
    return setup, found


def strip_comment(line):
    return re.sub(r"\s{2,}#.*$", "", line)


def parse_block(block, excuse):
    out = []
    for line in block:
        if line.startswith("$ "):
            out.append([line[2:], [], excuse])
        elif out:
            out[-1][1].append(line)
    return [tuple(x) for x in out]


def run(cmd, subst):
    # Placeholders are bare words: $PORT in a page's command is the
    # variable the server gives the service, not hello's port.
    for k, v in subst.items():
        if k.isupper():
            cmd = re.sub(r"(?<!\$)\b%s\b" % k, v, cmd)
    # A disk named on the page (its id differs here): the disk of the same
    # shape on this server.
    for disk in subst.get("disks", []):
        cmd = " ".join(disk if blur(w) == blur(disk) else w for w in cmd.split(" "))
    follow = re.search(r"\bmiren logs\b.*\s-f\b", cmd)
    try:
        p = subprocess.run(["bash", "-c", cmd], cwd=WORK, env=ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=3 if follow else 300,
                           stdin=subprocess.DEVNULL)
        return cmd, p.returncode, p.stdout, p.stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return cmd, 0 if follow else 124, out, out


def json_keys(text):
    # Progress lines (stderr) may come first.
    m = re.search(r"^[\[{]", text, re.M)
    text = text[m.start():] if m else text
    try:
        j = json.loads(text)
    except ValueError:
        return None
    if isinstance(j, list):
        j = j[0] if j else {}
    return sorted(j) if isinstance(j, dict) else type(j).__name__


def check(page, cmd, want, subst):
    cmd, rc, out, stdout = run(cmd, subst)
    where = f"{page}: $ {cmd}"
    want = [w for w in want]
    while want and not want[-1].strip():
        want.pop()
    fails = want and want[0].startswith("error:")
    if fails:
        report(rc != 0, f"{where} fails (exit {rc})")
    else:
        report(rc == 0, f"{where} succeeds (exit {rc}: {out.strip()[-300:]})")
    if not want:
        return out
    got = [g for g in out.split("\n") if g.strip()]
    if want[0].lstrip().startswith(("{", "[")):
        wk, gk = json_keys("\n".join(want)), json_keys(stdout)
        report(wk == gk, f"{where}: JSON keys {gk} are the page's {wk}")
        return out
    first = blur(want[0])
    report(bool(got) and blur(got[0]) == first,
           f"{where}: first line '{got[0] if got else ''}' has the page's shape '{want[0]}'")
    blurred = [blur(g) for g in got]
    for w in want[1:]:
        if re.match(r"(error|hint|usage|detail|warning): ", w):
            report(blur(w) in blurred, f"{where}: prints '{w}' (got: {' / '.join(got)[:400]})")
    return out


def main():
    # The working directory: a copy of examples/hello (so commands without
    # -a act on "hello"), with the example apps beside it.
    shutil.copytree(os.path.join(SRC, "examples/hello"), WORK, dirs_exist_ok=True)
    os.symlink(os.path.join(SRC, "examples"), os.path.join(WORK, "examples"))
    for app in os.listdir(os.path.join(SRC, "examples")):
        os.symlink(os.path.join(SRC, "examples", app), os.path.join(WORK, app))
    pages = [os.path.join(SRC, "README.md")] + sorted(
        glob.glob(os.path.join(SRC, "docs/commands/*.md")))
    subst = {}
    for path in pages:
        page = os.path.relpath(path, SRC)
        setup, found = examples(path)
        for cmd in setup:
            c, rc, out, _ = run(cmd, subst)
            if rc != 0:
                report(False, f"{page}: setup '{c}' failed (exit {rc}): {out.strip()[-300:]}")
        for cmd, want, excuse in found:
            if excuse:
                report(True, f"{page}: $ {cmd} # not run: {excuse}")
                continue
            out = check(page, cmd, want, subst)
            # What later examples refer to by placeholder.
            m = re.search(r"(\S+\.miren\.zst)", out)
            if "disk backup" in cmd and m:
                subst["FILE"] = m.group(1)
            refresh(subst)


def refresh(subst):
    """DISK: a disk of the server; PORT: hello's web port."""
    p = subprocess.run(["miren", "debug", "disk", "list", "--format", "json"], env=ENV,
                       capture_output=True, text=True)
    try:
        names = [d["name"] for d in json.loads(p.stdout)]
        subst["disks"] = names
        if names:
            subst["DISK"] = next((n for n in names if "python-visits" in n), names[0])
    except ValueError:
        pass
    p = subprocess.run(["miren", "app", "status", "-a", "hello", "--format", "json"], env=ENV,
                       capture_output=True, text=True)
    try:
        for s in json.loads(p.stdout)["services"]:
            if s.get("port"):
                subst["PORT"] = str(s["port"])
    except (ValueError, KeyError):
        pass


main()
