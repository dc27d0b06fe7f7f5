"""Stage a dataset in a process of its own (for tests/storage/test_staging.py).

Usage: python _stage_child.py URI CACHE_ROOT ENDPOINT GO_FILE. Waits for GO_FILE to exist, so
that several children start staging together, then prints what it did as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sweeper.storage import StoreConfig, stage_dataset


def main() -> None:
    uri, cache_root, endpoint, go = sys.argv[1:5]
    config = StoreConfig(
        endpoint_url=endpoint, region="us-east-1", addressing_style="path", max_attempts=2
    )
    while not Path(go).exists():
        time.sleep(0.01)
    result = stage_dataset(uri, cache_root, config)
    print(json.dumps({"path": str(result.path), "downloaded": result.downloaded}))


if __name__ == "__main__":
    main()
