"""Two parts of Flask the portal runs on every request, made cheaper for
a hall's worth of phones at once (bench/README.md, "portal"):

- URL building: every page builds the same dozen URLs (start page, "my
  record", the language switch, the form's action), ~25 µs each in
  Werkzeug's builder. The portal's relative URLs depend only on the
  endpoint, its values and the script root (it registers no URL defaults),
  so ``PortalFlask.url_for`` keeps what it built (bounded).
- The session cookie: Flask builds a new itsdangerous serializer for every
  request and runs every value through its tagged JSON (for tuples, bytes,
  datetimes...), and itsdangerous zlib-compresses every payload to see
  whether it comes out shorter (a few-dozen-byte session of hex tokens does
  not). The portal's session holds only JSON values (the CSRF token, the
  language, a check-in's outcome), so ``PortalSessions`` signs plain compact
  JSON, uncompressed, with one serializer per key. Same signature scheme,
  same cookie attributes; a compressed cookie still reads.
"""

import json

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import Serializer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

_URL_CACHE_SIZE = 4096


class PortalFlask(Flask):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._urls: dict = {}

    def url_for(self, /, endpoint, *, _anchor=None, _method=None, _scheme=None,
                _external=None, **values):
        if (_anchor or _method or _scheme or _external or endpoint.startswith(".")
                or not has_request_context()):
            return super().url_for(endpoint, _anchor=_anchor, _method=_method,
                                   _scheme=_scheme, _external=_external, **values)
        try:
            key = (request.script_root, endpoint,
                   frozenset((name, type(v), v) for name, v in values.items()))
            url = self._urls.get(key)
        except TypeError:  # an unhashable value: build it every time
            return super().url_for(endpoint, **values)
        if url is None:
            url = super().url_for(endpoint, **values)
            if len(self._urls) < _URL_CACHE_SIZE:
                self._urls[key] = url
        return url


class _CompactJSON:
    @staticmethod
    def dumps(value) -> str:
        return json.dumps(value, separators=(",", ":"))

    @staticmethod
    def loads(text):
        return json.loads(text)


class _UncompressedSerializer(URLSafeTimedSerializer):
    def dump_payload(self, obj) -> bytes:
        # base64 of the JSON, skipping the URL-safe mixin's zlib attempt;
        # its load_payload reads both forms (compressed ones start with ".").
        return base64_encode(Serializer.dump_payload(self, obj))


class PortalSessions(SecureCookieSessionInterface):
    serializer = _CompactJSON()

    def __init__(self):
        self._signers: dict = {}

    def get_signing_serializer(self, app):
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        signer = self._signers.get(key)
        if signer is None:
            if not app.secret_key:
                return None
            signer = self._signers[key] = _UncompressedSerializer(
                [*key[1], key[0]],  # the current key last, as itsdangerous expects
                salt=self.salt, serializer=self.serializer,
                signer_kwargs={"key_derivation": self.key_derivation,
                               "digest_method": self.digest_method})
        return signer
