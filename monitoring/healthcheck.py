"""Container health probe: ``python -m monitoring.healthcheck [URL]``.

Exits 0 when ``URL`` answers 2xx within the timeout, 1 otherwise (with the reason on
stderr, which Docker keeps in ``docker inspect``). The URL defaults to
``$CHURN_HEALTHCHECK_URL``, else the API's ``/health``. Standard library only, so the
probe stays cheap: Docker runs it every few seconds.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/health"
TIMEOUT_S = 3.0


def probe(url: str, timeout: float = TIMEOUT_S) -> str | None:
    """``None`` when healthy, else why not."""
    if not url.startswith(("http://", "https://")):
        return f"not an http(s) URL: {url!r}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} unreachable: {exc}"
    return None if 200 <= status < 300 else f"{url} answered {status}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get("CHURN_HEALTHCHECK_URL", DEFAULT_URL)
    problem = probe(url)
    if problem is not None:
        sys.stderr.write(f"unhealthy: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
