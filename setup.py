"""Rounds: on-premise check-in and supervision appliance for a hospital.

Why each dependency (the field's chosen parts; we use them rather than
rewrite them):
- Flask + gunicorn: the node's portal and the hub's dashboard/API.
- itsdangerous (Flask's own signer, named because the hub imports it): the signed,
  expiring Open311 photo links, rather than a hand-rolled HMAC token.
- paho-mqtt 2.x: MQTT v5 client for node sync and hub ingest.
- sqlite-utils 4.x: SQLite access and its built-in migrations (node and hub).
- click: the three console scripts.
- Flask-WTF: CSRF protection of every portal form (CSRFProtect).
- Flask-Babel (Babel): the portal and the dashboard in zh-CN by default, English on request.
- Flask-Login: the dashboard's sessions (login, user loading, session protection);
  passwords are hashed with werkzeug's scrypt, which Flask already brings.
- openpyxl: XLSX exports (a real workbook writer rather than hand-made zip/XML).
- cryptography: the site's certificate authority and the broker's TLS certificate
  (rounds-provision site init), instead of driving the openssl command line.
- qrcode: the QR code on each node's printed label (Pillow draws the label, PNG and PDF).
- icalendar: the iCalendar feeds of events per zone and department (RFC 5545
  folding and escaping done right).
- scapy: libpcap compiles the presence sniffer's kernel BPF filter through it.
- opencv-python-headless: node camera (VideoCapture) + Haar face cascades in its wheel.
- Pillow: verifies photos by decoding, reads EXIF, writes clean JPEGs (+ screenshot checks).
- msgspec: the hub's fast path for clean batches (protocol/wire.py): JSON decoding and
  the record schema checked in one compiled pass, ~5x cheaper than checking field by
  field in Python, which cost more than SQLite's own insert.
- python-docx: the drafted event and year summaries as Word documents the office edits
  further (a real .docx writer rather than zipped XML by hand).
- fpdf2: printable PDFs (a person's year, a certificate of attendance) with real text
  in a CJK TrueType font, rather than a picture of a page drawn with Pillow.
Test extra: pytest (+ pytest-timeout), selenium for the pages people use
in a real headless Chromium, hypothesis to fuzz the presence frame parser.
- scikit-image: skimage.data.astronaut(), a real photo with a face, for the photo tests.
- piexif: writes EXIF/GPS into test photos and proves none is left in the output.
- py-spy: samples the portal's gunicorn workers from outside, without slowing them,
  for the flame graph of a check-in under load (bench/profile_portal.py).
"""

from setuptools import find_packages, setup

setup(
    name="rounds",
    version="0.1.0",
    description="Check-in and supervision appliance for a hospital",
    python_requires=">=3.11",
    packages=find_packages(include=["demo*", "edge*", "hub*", "protocol*", "provisioning*",
                                    "runtime*"]),
    include_package_data=True,
    package_data={"edge.camera": ["models/*"],
                  "edge.portal": ["templates/*.html", "static/*",
                                  "translations/*/LC_MESSAGES/*"],
                  "hub.web": ["templates/*.html", "static/*", "babel.cfg",
                              "translations/*/LC_MESSAGES/*"]},
    install_requires=[
        "flask>=3.1,<4",
        "itsdangerous>=2.2,<3",
        "gunicorn>=23,<28",
        "paho-mqtt>=2.1,<3",
        "sqlite-utils>=4.2,<5",
        "click>=8.1,<9",
        "Flask-WTF>=1.2,<2",
        "Flask-Babel>=4,<5",
        "Flask-Login>=0.6.3,<0.7",
        "openpyxl>=3.1,<4",
        "icalendar>=6,<8",
        "cryptography>=42,<51",
        "qrcode>=7.4,<9",
        "scapy>=2.5,<3",
        "opencv-python-headless>=4.8,<5",
        "Pillow>=10,<13",
        "msgspec>=0.19,<1",
        "python-docx>=1.1,<2",
        "fpdf2>=2.8,<3",
        # PostgreSQL's own driver (psycopg 3; the binary wheel bundles libpq, no
        # compiler): hub/sql, the hub's second backend (issue 16), which `rounds-hub
        # db migrate-to` uses, and the tests' throwaway clusters (tests/pg.py).
        # hub/sql is a thin layer of our own over sqlite3 and psycopg rather than
        # SQLAlchemy Core: the hub is raw, mostly portable SQL already, and a layer
        # of placeholders, a dialect and serialised write transactions keeps that
        # SQL as it is.
        "psycopg[binary]>=3.2,<4",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "pytest-timeout>=2.3,<3",
            # Drives Debian's chromium through its chromedriver (no browser download).
            "selenium>=4.20,<5",
            "scikit-image>=0.22,<1",
            "piexif>=1.1,<2",
            "hypothesis>=6,<7",
            # Checks every /api/v1 response against the OpenAPI document's schemas.
            "jsonschema>=4.20,<5",
            "py-spy>=0.4,<0.5",
        ],
    },
    entry_points={
        "console_scripts": [
            "rounds-edge=edge.cli:main",
            "rounds-hub=hub.cli.main:main",
            "rounds-provision=provisioning.cli:main",
        ],
    },
)
