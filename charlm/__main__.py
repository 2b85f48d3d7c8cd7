"""`python -m charlm`: the command line (charlm.cli). A Ctrl-C while Python is still importing
is one line too, not a traceback."""

import sys

try:
    from charlm.cli import main
except KeyboardInterrupt:
    print("charlm: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
