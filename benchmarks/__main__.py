"""``python -m benchmarks [--quick]``: every kernel side by side with its peers."""

import sys

from benchmarks._runner import main

if __name__ == "__main__":
    sys.exit(main())
