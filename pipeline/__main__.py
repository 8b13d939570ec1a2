import sys

from pipeline.deploy import main

sys.exit(main())
