"""`python -m lrtop ...` is `lrtop ...`: the binary, found and exec'd by the launcher; except `python -m lrtop relay
SOCKET`, the stdio relay `lrtop attach HOST:RUN` runs on a remote that has this package but maybe no binary."""
import sys

if sys.argv[1:2] == ["relay"]:
    from .relay import main as relay

    sys.exit(relay(sys.argv[2:]))

from .launcher import main

main()
