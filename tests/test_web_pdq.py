"""The browser's PDQ (web/static/pdq.js) against the server's (pdqhash via likeness.analyze.hashing), bit for bit.

One Chromium (Debian's, /usr/bin/chromium; never a downloaded one) and one page for the module. The page and the
module come from a loopback HTTP server (ES modules do not load from file://) under the strict CSP the web app
uses (``script-src 'self'``); pictures are written to tmp_path and given to an ``<input type=file>``, as a person
would pick them, and hashed in the page with ``hashFile``. The server's side reads the same file with Pillow, as
the scanner does: ``ImageOps.exif_transpose(...).convert("RGB")`` at full resolution.

Only opaque pictures are compared: a canvas stores premultiplied alpha, so the browser loses the colour of
transparent pixels that Pillow's convert("RGB") keeps (see pdq.js).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from likeness.analyze.hashing import pdq, pdq_dihedral

CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).resolve().parents[1] / "src" / "likeness" / "web" / "static"
SITE = Path(__file__).resolve().parents[1] / ".venv" / "lib"

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, Request, sync_playwright  # noqa: E402

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>pdq</title>
<script type="module" src="/page.js"></script></head>
<body><input type="file" id="pictures" multiple></body></html>
"""
PAGE_JS = b'import * as pdq from "/pdq.js";\nwindow.pdq = pdq;\n'
HASH_ALL = """async () => {
  const out = [];
  for (const file of document.getElementById("pictures").files) {
    const started = performance.now();
    const r = await window.pdq.hashFile(file);
    out.push({name: file.name, ...r, ms: performance.now() - started});
  }
  return out;
}"""


class _Handler(http.server.BaseHTTPRequestHandler):
    """The page, its script and pdq.js; anything else (and any method but GET) is refused and remembered."""

    routes: ClassVar[dict[str, tuple[str, Callable[[], bytes]]]] = {
        "/": ("text/html", lambda: PAGE),
        "/page.js": ("text/javascript", lambda: PAGE_JS),
        "/pdq.js": ("text/javascript", lambda: (STATIC / "pdq.js").read_bytes()),
    }
    seen: ClassVar[list[str]] = []  # one server per module; the tests read it

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        if self.path not in self.routes:
            self.send_error(404)
            return
        kind, body = self.routes[self.path]
        payload = body()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Content-Security-Policy", "script-src 'self'")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self.seen.append(f"POST {self.path}")
        self.send_error(405)

    do_PUT = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def pdq_page(chromium_browser: Browser, site: str) -> Iterator[Page]:
    page = chromium_browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(site)
    page.wait_for_function("window.pdq !== undefined", timeout=10_000)
    assert not errors, errors
    yield page
    page.close()


def hash_in_page(page: Page, files: list[Path]) -> dict[str, dict[str, Any]]:
    page.set_input_files("#pictures", files)
    return {r["name"]: r for r in page.evaluate(HASH_ALL)}


def server_side(path: Path) -> tuple[str, int, list[str], tuple[int, int]]:
    """What the scanner computes for the file: Pillow, EXIF orientation applied, RGB, full resolution."""
    with Image.open(path) as im:
        pixels = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    digest, quality = pdq(pixels)
    variants, _ = pdq_dihedral(pixels)
    return digest.hex(), quality, [v.hex() for v in variants], (pixels.shape[1], pixels.shape[0])


# ---------------------------------------------------------------- pictures


def _gradient(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * 3 + y * 5) % 256], -1).astype(np.uint8)


def _shapes(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    im = Image.fromarray(_gradient(w, h))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(1, w // 2 + 2)), y0 + int(rng.integers(1, h // 2 + 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return im


def _stripes(w: int, h: int) -> np.ndarray:
    """Text-like: short dark strokes on light lines."""
    rng = np.random.default_rng(7)
    a = np.full((h, w), 235, np.uint8)
    for top in range(4, h - 8, 14):
        x = 4
        while x < w - 4:
            n = int(rng.integers(2, 9))
            a[top : top + 8, x : x + n] = int(rng.integers(0, 60))
            x += n + int(rng.integers(1, 5))
    return np.stack([a] * 3, -1)


def generated(directory: Path) -> list[Path]:
    rng = np.random.default_rng(2026)
    files: list[Path] = []

    def save(name: str, im: Image.Image, **kw: Any) -> None:
        path = directory / name
        im.save(path, **kw)
        files.append(path)

    for w, h in [(1, 1), (4, 9), (5, 5), (17, 33), (64, 64), (65, 63), (129, 257), (640, 480)]:
        save(f"gradient-{w}x{h}.png", Image.fromarray(_gradient(w, h)))
        save(f"noise-{w}x{h}.png", Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
    save("shapes-640x480.png", _shapes(640, 480, 1))
    save("shapes-640x480.jpg", _shapes(640, 480, 1), quality=90)
    save("shapes-333x201-420.jpg", _shapes(333, 201, 2), quality=75, subsampling=2)
    save("shapes-301x199-444.jpg", _shapes(301, 199, 3), quality=95, subsampling=0)
    save("stripes-500x300.png", Image.fromarray(_stripes(500, 300)))
    save("stripes-500x300.jpg", Image.fromarray(_stripes(500, 300)), quality=85)
    save("large-3000x2000.jpg", _shapes(3000, 2000, 4), quality=85)
    save("grey-L-300x200.png", Image.fromarray(_stripes(300, 200)[:, :, 0], "L"))
    save("grey-L-300x200.jpg", _shapes(300, 200, 5).convert("L"), quality=90)
    save("flat-100x100.png", Image.new("RGB", (100, 100), (77, 120, 200)))
    opaque = np.concatenate([_gradient(200, 150), np.full((150, 200, 1), 255, np.uint8)], -1)
    opaque[40:90, 50:150, :3] = rng.integers(0, 256, (50, 100, 3), dtype=np.uint8)
    save("opaque-rgba-200x150.png", Image.fromarray(opaque, "RGBA"))
    save("palette-200x150.png", _shapes(200, 150, 6).quantize(64))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        save(f"exif-orientation-{orientation}.jpg", _shapes(160, 90, 10 + orientation), quality=90, exif=exif)
    return files


def from_packages(directory: Path) -> list[Path]:
    """The opaque 8-bit pictures scikit-image and matplotlib ship (copied, so the input's folder is tmp_path)."""
    site = next(iter(SITE.glob("python3*/site-packages")), None)
    if site is None:
        return []
    found = sorted((site / "skimage" / "data").glob("*.[pj][np]g"))
    found += sorted((site / "matplotlib" / "mpl-data" / "sample_data").glob("*.[pj][np]g"))
    files = []
    for source in found:
        with Image.open(source) as im:
            if im.mode not in ("RGB", "L", "RGBA", "P") or (
                im.mode in ("RGBA", "P") and "A" in im.convert("RGBA").getbands() and _transparent(im)
            ):
                continue
        path = directory / f"{source.parent.parent.name}-{source.name}"
        path.write_bytes(source.read_bytes())
        files.append(path)
    return files


def _transparent(im: Image.Image) -> bool:
    low, _ = im.convert("RGBA").getchannel("A").getextrema()
    return bool(low < 255)  # type: ignore[operator]


# ---------------------------------------------------------------- tests


def test_browser_pdq_is_bit_exact(pdq_page: Page, tmp_path: Path) -> None:
    files = generated(tmp_path) + from_packages(tmp_path)
    assert len(files) > 40
    got = hash_in_page(pdq_page, files)
    wrong = []
    for path in files:
        hex_, quality, variants, size = server_side(path)
        r = got[path.name]
        if (r["width"], r["height"]) != size:
            wrong.append(f"{path.name}: size {r['width']}x{r['height']} != {size}")
        if r["hash"] != hex_ or r["quality"] != quality:
            wrong.append(f"{path.name}: {r['hash']} q{r['quality']} != {hex_} q{quality}")
        if r["hashes"] != variants:
            wrong.append(f"{path.name}: dihedral {[a == b for a, b in zip(r['hashes'], variants, strict=True)]}")
    assert not wrong, "\n".join(wrong)
    slowest = max(got.values(), key=lambda r: r["ms"])
    total = sum(r["ms"] for r in got.values())
    print(f"{len(files)} pictures, {total:.0f} ms in the page; slowest {slowest['name']} {slowest['ms']:.0f} ms")


def test_hashing_sends_nothing(pdq_page: Page, site: str, tmp_path: Path) -> None:
    """Loading the page and hashing pictures asks for the page, its script and pdq.js; nothing else, no uploads."""
    page = pdq_page
    requests: list[Request] = []

    def record(request: Request) -> None:
        requests.append(request)

    page.on("request", record)
    _Handler.seen.clear()
    try:
        page.goto(site)
        page.wait_for_function("window.pdq !== undefined", timeout=10_000)
        files = [tmp_path / "a.jpg", tmp_path / "b.png"]
        _shapes(400, 300, 1).save(files[0], quality=90)
        Image.fromarray(_stripes(300, 200)).save(files[1])
        got = hash_in_page(page, files)
        page.wait_for_timeout(300)  # anything sent late would show up now
    finally:
        page.remove_listener("request", record)
    assert {name: r["hash"] for name, r in got.items()} == {p.name: server_side(p)[0] for p in files}
    allowed = {site, site + "page.js", site + "pdq.js"}
    assert {r.url for r in requests} <= allowed, [r.url for r in requests]
    assert all(r.method == "GET" and r.post_data_buffer is None for r in requests)
    assert sorted(set(_Handler.seen)) == ["GET /", "GET /page.js", "GET /pdq.js"]


def test_pdq_js_is_a_plain_module() -> None:
    """Served under script-src 'self': no eval, no Function constructor, no imports of anything else."""
    source = (STATIC / "pdq.js").read_text()
    for banned in ("eval(", "new Function", "import ", "import(", "fetch(", "XMLHttpRequest", "sendBeacon"):
        assert banned not in source, banned
    assert "BSD License" in source and "Meta Platforms" in source
