"""The headers every answer of the web must carry: the strict Content-Security-Policy,
no caching, and Django's own security headers."""

from __future__ import annotations

from collections.abc import Mapping

# The policy, directive by directive: only the site's own files, no inline code or style.
STRICT_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# The API docs (Swagger UI) may also show the data: images its stylesheet draws.
DOCS_POLICY = {**STRICT_POLICY, "img-src": ["'self'", "data:"]}
# DRF's browsable API pages (HTML under /api/) may also style inline.
BROWSABLE_API_POLICY = {**STRICT_POLICY, "style-src": ["'self'", "'unsafe-inline'"]}


def expected_policy(path: str, body: str) -> dict[str, list[str]]:
    if path.startswith("/api/docs/"):
        return DOCS_POLICY
    if path.startswith("/api/") and "/static/rest_framework/" in body:
        return BROWSABLE_API_POLICY
    return STRICT_POLICY


def directives(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: sources}."""
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} twice in {header}"
        parsed[name] = sources
    return parsed


def problems(path: str, headers: Mapping[str, str], body: str) -> list[str]:
    """What is missing or wrong in the headers of the answer to ``path``."""
    headers = {name.lower(): value for name, value in headers.items()}
    expected = expected_policy(path, body)
    found = []
    policy = headers.get("content-security-policy")
    if policy is None or directives(policy) != expected:
        found.append(f"{path}: Content-Security-Policy {policy!r}")
    cache = [word.strip() for word in headers.get("cache-control", "").split(",")]
    if "no-store" not in cache or "public" in cache:
        found.append(f"{path}: Cache-Control {headers.get('cache-control')!r}")
    for name, value in {
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }.items():
        if headers.get(name) != value:
            found.append(f"{path}: {name} {headers.get(name)!r}")
    return found
