"""``python -m bench``: the benchmark suite (bench/run.py); ``python -m bench realistic``: the
realistic poll over HTTPS with the real corpus (bench/realistic.py). See bench/README.md."""

import sys

if sys.argv[1:2] == ["realistic"]:
    from bench.realistic import main as realistic

    sys.exit(realistic(sys.argv[2:]))

from bench.run import main

sys.exit(main())
