import sys

from dyadflow.tools.cli import main

sys.exit(main())
