"""``python -m fairjax demo``."""

import sys

from fairjax.cli import main

if __name__ == "__main__":
    sys.exit(main())
