"""The certificate's URL fetcher: WeasyPrint may load the shipped fonts and ``data:`` URIs, nothing else.

Imported only when a certificate is rendered (``certificate.document``), as WeasyPrint is: its import
costs 1.1 s (its Pango bindings), which every eqlab command, every ``eqlab serve`` among them, paid.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher, URLFetcherResponse  # type: ignore[import-untyped]

from eqlab.reports import templating


class LocalOnly(URLFetcher):  # type: ignore[misc]
    """Serves the shipped fonts and ``data:`` URIs; any other URL stops the rendering."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols=("file", "data"), fail_on_errors=True)

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        if url.startswith("file:"):
            path = Path(url2pathname(urlsplit(url).path)).resolve()
            if not path.is_relative_to(templating.TEMPLATES_DIR / "fonts"):
                raise ValueError(f"the certificate may only load its shipped fonts, not {url}")
        elif not url.startswith("data:"):
            raise ValueError(f"the certificate loads nothing from the network ({url[:80]})")
        return super().fetch(url, headers)
