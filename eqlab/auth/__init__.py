"""The lab's SMART on FHIR / OAuth 2 client: how the lab authenticates, exactly as a vendor's client would.

Discovery (``oauth.discover``), client credentials with ``private_key_jwt`` or ``client_secret_basic``
(``oauth``, ``keys``), the authorization code flow with PKCE completed through the platform's own
login and consent pages (``browser``, ``forms``), refresh, and a cache of tokens per principal
(``provider``; ``lab.LabTokens`` is the pytest ``tokens`` fixture's object).
"""

from eqlab.auth.browser import Authorization
from eqlab.auth.config import AuthConfig
from eqlab.auth.model import AuthConfigError, AuthError, AuthorizeRefused, LoginFailed, TokenRefused, TokenSet
from eqlab.auth.provider import TokenProvider, plain_http

__all__ = [
    "AuthConfig",
    "AuthConfigError",
    "AuthError",
    "Authorization",
    "AuthorizeRefused",
    "LoginFailed",
    "TokenProvider",
    "TokenRefused",
    "TokenSet",
    "plain_http",
]
