"""`python -m lrtop ...` is `lrtop ...`: the binary, found and exec'd by the launcher."""
from .launcher import main

main()
