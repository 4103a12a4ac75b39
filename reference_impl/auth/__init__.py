"""OIDC/SMART authorization server, token checks, scopes and the access policy (SPEC section 2)."""
