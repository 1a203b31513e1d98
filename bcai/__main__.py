import sys

from bcai.cli import main

sys.exit(main())
