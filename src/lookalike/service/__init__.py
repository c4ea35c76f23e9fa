"""``lookalike serve``: an HTTP API (FastAPI, with its OpenAPI schema) and a web UI over collections.

Needs the ``serve`` extra (``pip install 'lookalike[serve]'``). :func:`create_app` builds the app
from a :class:`ServiceConfig`; :mod:`~lookalike.service.backend` is the one place that calls the
library; :mod:`~lookalike.service.api` and :mod:`~lookalike.service.pages` only parse and render.
"""

from lookalike.service.app import ServiceConfig, create_app

__all__ = ["ServiceConfig", "create_app"]
