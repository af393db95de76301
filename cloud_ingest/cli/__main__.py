import sys

from cloud_ingest.cli.main import main

sys.exit(main())
