"""``python -m rtclab`` runs the ``rtclab`` command (:func:`rtclab.cli.main`)."""

import sys

from rtclab.cli import main

if __name__ == "__main__":
    sys.exit(main())
