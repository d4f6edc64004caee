#!/usr/bin/env python3
"""The error rule (issue 9, "errors carried whole"): a function that fills a
struct miren_error returns enum miren_err, never int, so that the type says
what the value is.  Checks every declaration, definition and function
pointer in lib/, src/ and tests/ whose parameters have a non-const
`struct miren_error *`.  Usage: error-returns.py [SOURCE_DIR]; exit 1 when
one returns int."""
import glob
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..')
ERR = re.compile(r'(?<!const )struct miren_error \*')
FUNC = re.compile(r'^(?:static\s+)?(?:inline\s+)?int\s*\(?(\w+)\)?\(([^;{]*?)\)(?=\s*[;{_M])', re.M | re.S)
PTR = re.compile(r'\bint\s*\(\*\s*(\w*)\)\(([^()]*)\)')
bad = []
for d in ('lib', 'src', 'tests'):
    for path in sorted(glob.glob(os.path.join(src, d, '**', '*.[ch]'), recursive=True)):
        text = open(path, encoding='utf-8').read()
        for m in list(FUNC.finditer(text)) + list(PTR.finditer(text)):
            if ERR.search(m.group(2)):
                line = text.count('\n', 0, m.start()) + 1
                bad.append(f'{os.path.relpath(path, src)}:{line}: {m.group(1) or "(pointer)"}')
if bad:
    print('not ok - functions that fill a struct miren_error must return enum miren_err:')
    for b in bad:
        print('    ' + b)
    sys.exit(1)
print('ok - every function that fills a struct miren_error returns enum miren_err')
