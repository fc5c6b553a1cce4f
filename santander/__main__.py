import sys

from santander.cli import main

sys.exit(main())
