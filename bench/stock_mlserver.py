"""`mlserver` as a stock install runs it: with uvicorn's pure-Python HTTP parser (h11).

    python -m bench.stock_mlserver start <repository>

`pip install mlserver mlserver-xgboost` brings uvicorn without its `[standard]` extras, so
uvicorn parses HTTP with h11. This project pins `httptools` (uvicorn's C parser) as part of its
deployment; blocking that import here gives the stock rows the parser a stock install has,
inside the one environment the benchmark runs in.
"""

import sys

if __name__ == "__main__":
    sys.modules["httptools"] = None        # `import httptools` now fails, as if not installed
    from mlserver.cli import main
    sys.argv[0] = "mlserver"
    sys.exit(main())
