"""``python -m vehicle.inference``: the inference process (see :mod:`vehicle.inference.process`)."""

import sys

from vehicle.inference.process import main

sys.exit(main())
