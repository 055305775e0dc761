"""The operations API and web pages (FastAPI): crews, householders, operators.

`create_app(settings)` builds the app; the asyncpg pool lives in its lifespan.
"""

from ops_api.app import create_app

__all__ = ["create_app"]
