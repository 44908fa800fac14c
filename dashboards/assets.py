"""Static assets: the UI's CSS/JS, plotly.js from the installed plotly package, and the Thai webfont.

plotly.js and the Sarabun font come from installed Python packages (``plotly`` and ``fontpkg-sarabun``,
pinned in requirements.txt) rather than files committed here or a CDN, so the dashboard works offline.
If Sarabun is not installed, Debian's fonts-thai-tlwg Laksaman (derived from TH Sarabun New) is served
instead; if neither exists, ``fonts.css`` declares no face and the CSS fallback chain takes over.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, abort, send_file

LOGGER = logging.getLogger(__name__)

bp = Blueprint("assets", __name__, static_folder="static", static_url_path="/static/ui")

CACHE_SECONDS = 7 * 24 * 3600
TLWG_DIR = Path("/usr/share/fonts/truetype/tlwg")

#: font file name served -> (weight, style)
FONT_FACES = {"regular": (400, "normal"), "bold": (700, "normal")}


@lru_cache(maxsize=1)
def plotly_js_path() -> Path:
    """Path of plotly.min.js inside the installed plotly package."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


@lru_cache(maxsize=1)
def font_files() -> dict[str, Path]:
    """The Thai webfont files available on this machine (face name -> file), possibly empty."""
    found: dict[str, Path] = {}
    try:
        import fontpkg_sarabun

        root = Path(fontpkg_sarabun.ROOT) / "files"
        candidates = {"regular": root / "Sarabun-Regular.ttf", "bold": root / "Sarabun-Bold.ttf"}
    except ImportError:
        candidates = {}
    if not all(p.is_file() for p in candidates.values()):
        candidates = {"regular": TLWG_DIR / "Laksaman.ttf", "bold": TLWG_DIR / "Laksaman-Bold.ttf"}
    for face, path in candidates.items():
        if path.is_file():
            found[face] = path
    if not found:
        LOGGER.warning("no Thai webfont found (pip fontpkg-sarabun or Debian fonts-thai-tlwg); using system fonts")
    return found


@bp.route("/assets/plotly.min.js")
def plotly_js() -> Response:
    """plotly.js from the plotly package, cached by the browser."""
    path = plotly_js_path()
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="text/javascript", max_age=CACHE_SECONDS, conditional=True)


@bp.route("/assets/fonts.css")
def fonts_css() -> Response:
    """@font-face rules for the Thai faces that exist here (none: the fallback chain is used)."""
    rules = []
    for face, path in font_files().items():
        weight, style = FONT_FACES[face]
        rules.append("@font-face { font-family: 'Sarabun'; font-style: %s; font-weight: %d; font-display: swap; "
                     "src: url('/assets/fonts/%s.ttf') format('truetype'); }" % (style, weight, face))
    response = Response("\n".join(rules) + "\n", mimetype="text/css")
    response.cache_control.max_age = 3600
    response.cache_control.public = True
    return response


@bp.route("/assets/fonts/<face>.ttf")
def font_file(face: str) -> Response:
    """One Thai font file."""
    path = font_files().get(face)
    if path is None:
        abort(404)
    return send_file(path, mimetype="font/ttf", max_age=CACHE_SECONDS, conditional=True)
