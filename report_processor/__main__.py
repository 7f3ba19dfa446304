import sys

from report_processor.cli import main

sys.exit(main())
