import sys

from dashboards.deploy import main

sys.exit(main())
