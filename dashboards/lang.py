"""The language of the current request and the translation helper ``t`` that pages and templates use.

Apart from the package's ``__init__`` so that blueprints import it without importing the package that
registers them.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, session
from flask_login import current_user

from dashboards import i18n


def current_language() -> str:
    """The language of this request: the user's, else the session's choice, else the default."""
    lang = getattr(g, "lang", None)
    if lang:
        return lang
    if getattr(current_user, "is_authenticated", False):
        lang = current_user.language
    else:
        lang = session.get("lang")
    lang = lang if lang in i18n.LANGUAGES else current_app.config.get("DEFAULT_LANGUAGE", "th")
    g.lang = lang
    return lang


def t(key: str, **values: Any) -> str:
    """Translate ``key`` into the language of this request."""
    return i18n.translate(key, current_language(), **values)
