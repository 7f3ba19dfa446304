"""Every form of a secret a reader could turn back into it, computed independently of the
runner's masking code (shared by the core and the hostile tests)."""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse

# What RDS generates (printable ASCII but / " @ and space) is a subset of what Secrets
# Manager's GetRandomPassword can (every printable ASCII character, space included).
SM_ALPHABET = "".join(chr(c) for c in range(0x20, 0x7F))


def secret_forms(secret: str) -> dict[str, str]:
    """Every form of `secret` a reader could turn back into it, computed independently of
    the runner's masking code."""
    forms = {
        "literal": secret,
        "xml-named": html.escape(secret, quote=True),
        "xml-decimal": "".join(f"&#{ord(c)};" for c in secret),
        "xml-hex-lower": "".join(f"&#x{ord(c):x};" for c in secret),
        "xml-hex-upper": "".join(f"&#X{ord(c):X};" for c in secret),
        "json": json.dumps(secret)[1:-1],
        "json-php": json.dumps(secret)[1:-1].replace("/", "\\/"),
        "url-plus": urllib.parse.quote_plus(secret, safe=""),
        "url": urllib.parse.quote(secret, safe=""),
        "url-lower": re.sub(
            r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(secret, safe="")
        ),
    }
    # Nested, as a JSON log line inside JSON or a message escaped twice would carry it.
    forms["json-in-json"] = json.dumps(json.dumps(secret)[1:-1])[1:-1]
    forms["json-in-xml"] = html.escape(forms["json-php"], quote=True)
    forms["xml-in-xml"] = html.escape(forms["xml-named"], quote=True)
    forms["url-in-url"] = urllib.parse.quote(forms["url"], safe="")
    data = secret.encode()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data + b"\0\0\0").decode()
        # Only the characters that depend on the secret's bits alone.
        first = -(-shift * 8 // 6)
        last = (shift + len(data)) * 8 // 6
        forms[f"base64-{shift}"] = encoded[first:last]
    return forms
