"""The printable label stuck on a node's box: node id, zone, site, and a QR
code of its enrolment data, as PNG and PDF (Pillow draws, ``qrcode`` encodes).

The enrolment data says which node is in the box and which broker and CA it
will talk to; it holds no secret (no MQTT password, no site secret), since a
label can be read by anyone walking past::

    {"v": 1, "site": "...", "node": "...", "zone": "...", "hub": "<host>",
     "port": 8883, "ca_sha256": "<hex of the CA certificate's SHA-256>"}
"""

import json
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

DPI = 300
SIZE = (1200, 600)  # 4 x 2 inches at 300 dpi (a common label size)
_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Chinese zone names
          "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
          "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def enrolment_data(*, site: str, node: str, zone: str, hub_host: str, mqtt_port: int,
                   ca_sha256: str) -> dict:
    return {"v": 1, "site": site, "node": node, "zone": zone, "hub": hub_host,
            "port": mqtt_port, "ca_sha256": ca_sha256}


def enrolment_text(data: dict) -> str:
    """The QR payload: compact ASCII JSON (any scanner reads it back intact)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


def write_label(png: Path, pdf: Path, data: dict, *, zone_name: str, site_name: str) -> None:
    image = draw_label(data, zone_name=zone_name, site_name=site_name)
    image.save(png, "PNG", dpi=(DPI, DPI))
    image.save(pdf, "PDF", resolution=DPI)


def draw_label(data: dict, *, zone_name: str, site_name: str) -> Image.Image:
    width, height = SIZE
    margin = 30
    image = Image.new("RGB", SIZE, "white")
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(enrolment_text(data))
    code.make(fit=True)
    modules = code.modules_count + 2 * code.border
    code.box_size = max(1, (height - 2 * margin) // modules)
    qr = code.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    image.paste(qr, (margin, (height - qr.height) // 2))

    pen = ImageDraw.Draw(image)
    x, text_width = margin * 2 + qr.width, width - margin * 3 - qr.width
    y = margin + 10
    for text, size in ((data["node"], 72), (zone_name, 44), (f"zone {data['zone']}", 30),
                       (site_name, 34), (f"site {data['site']}", 30),
                       (f"hub {data['hub']}:{data['port']}", 30),
                       (f"CA {data['ca_sha256'][:16]}", 26)):
        font = _fit(pen, text, size, text_width)
        pen.text((x, y), text, fill="black", font=font)
        y += int(font.size * 1.35)
    pen.rectangle((2, 2, width - 3, height - 3), outline="black", width=3)
    return image


def _fit(pen: ImageDraw.ImageDraw, text: str, size: int, width: int):
    """The largest font up to ``size`` in which ``text`` fits ``width``."""
    while True:
        font = _font(size)
        if size <= 12 or pen.textlength(text, font=font) <= width:
            return font
        size -= 2


def _font(size: int):
    for path in _FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)
