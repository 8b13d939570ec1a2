import sys

from dr.cli import main

sys.exit(main())
