"""``python -m firehose_console``: the same as the ``firehose-console`` script."""

import sys

from firehose_console.launcher import main

sys.exit(main())
