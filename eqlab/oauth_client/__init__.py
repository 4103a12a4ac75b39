"""The lab's SMART on FHIR / OAuth 2 client: how the lab authenticates, exactly as a vendor's client would.

Discovery (``oauth.discover``), client credentials with ``private_key_jwt`` or ``client_secret_basic``
(``oauth``, ``client_key``), the authorization code flow with PKCE completed through the platform's own
login and consent pages (``browser``, ``forms``), refresh, and a cache of tokens per principal
(``provider``; ``lab.LabTokens`` is the pytest ``tokens`` fixture's object).
"""

from eqlab.oauth_client.browser import Authorization
from eqlab.oauth_client.config import AuthConfig
from eqlab.oauth_client.model import AuthConfigError, AuthError, AuthorizeRefused, LoginFailed, TokenRefused, TokenSet
from eqlab.oauth_client.provider import TokenProvider, plain_http

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
