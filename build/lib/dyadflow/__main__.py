import sys

from dyadflow.cli import main

sys.exit(main())
