"""A minimal client of the TF Serving REST API for CCFRec exports; works against `ccfrec serve`
and stock TF Serving alike (the `search` field is `ccfrec serve`'s only extension).

    python -m tf_ccfrec.serving.client --url http://127.0.0.1:8501 --model ccfrec ITEM_ID [ITEM_ID ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import List, Optional


class ServingError(RuntimeError):
    """The server answered with an error; `status` is the HTTP code."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8501", model: str = "ccfrec",
                 version: Optional[int] = None, timeout: float = 10.0):
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "")
        self.base, self.timeout = url.rstrip("/") + path, timeout

    def _call(self, suffix: str, body=None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + suffix, data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            raise ServingError(error.code, json.loads(error.read()).get("error", "")) from None

    def recommend(self, histories: List[List[str]], exclude_history: bool = False,
                  search: Optional[str] = None) -> List[dict]:
        """Per history (item ids, oldest first): {"item_ids", "scores", "fallback",
        "known_items"}."""
        body = {"signature_name": "serving_excluding_history" if exclude_history
                else "serving_default", "instances": histories}
        if search:
            body["search"] = search
        return self._call(":predict", body)["predictions"]

    def status(self) -> dict:
        return self._call("")

    def metadata(self) -> dict:
        return self._call("/metadata")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--model", default="ccfrec")
    parser.add_argument("--exclude-history", action="store_true")
    parser.add_argument("history", nargs="*", help="item ids, oldest first")
    args = parser.parse_args(argv)
    try:
        answer = Client(args.url, args.model).recommend([args.history], args.exclude_history)
    except (ServingError, urllib.error.URLError) as error:
        print(f"client: {error}", file=sys.stderr)
        return 1
    print(json.dumps(answer[0], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
