"""Snap-and-report on the portal: photos made safe before anything is
queued, the report record and the spool, refusals with nothing written, and
the reporter's "my reports" page with the hub's ticket states."""

import io
import re

from PIL import Image

from edge.camera import faces_v2

from .test_portal import (  # noqa: F401 - fixtures
    ROSTER, app, arp, client, db_path, leases, phone, put_state, query, records, text,
)
from .test_portal_bind import bind


def photo(colour=(180, 40, 40), size=(800, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def token(client):
    page = client.get("/report").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def post_report(client, files, category="hygiene", note="Spill by the lift", **extra):
    data = {"csrf_token": token(client), "category": category, "note": note, **extra,
            "photos": [(io.BytesIO(body), name) for name, body in files]}
    return client.post("/report", data=data, content_type="multipart/form-data")


def spool_files(db_path):
    return sorted(p.name for p in (db_path.parent / "photos").glob("*.jpg"))


def nothing_queued(db_path):
    assert records(db_path, "report") == []
    assert spool_files(db_path) == []
    assert query(db_path, "SELECT count(*) FROM photo_spool") == [(0,)]


def test_a_bound_phone_files_a_report_with_safe_photos(phone, db_path):
    bind(phone)
    response = post_report(phone, [("IMG_1.jpg", photo()), ("IMG_2.jpg", photo((0, 90, 0)))])
    assert response.status_code == 303 and "/reports" in response.headers["Location"]
    [report] = records(db_path, "report")
    assert (report["staff_id"], report["category"], report["zone"], report["note"]) == (
        "D001", "hygiene", "hall-a", "Spill by the lift")
    assert len(report["photos"]) == 2
    assert spool_files(db_path) == sorted(f"{sha}.jpg" for sha in report["photos"])
    page = text(phone.get(response.headers["Location"]))
    assert "Sent, waiting for the hub" in page and "Spill by the lift" in page


def test_the_hubs_ticket_state_shows_on_my_reports(phone, db_path):
    bind(phone)
    post_report(phone, [("a.jpg", photo())])
    [report] = records(db_path, "report")
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "events": [],
                                  "reports": [{"report_id": report["report_id"],
                                               "state": "assigned", "duplicate": False}]})
    assert "Assigned to the department" in text(phone.get("/reports"))


def test_a_non_image_named_jpg_is_refused_and_nothing_is_written(phone, db_path):
    bind(phone)
    response = post_report(phone, [("cat.jpg", b"#!/bin/sh\necho not a photo\n" * 50)])
    assert response.status_code == 400
    assert "cat.jpg was not accepted" in text(response)
    nothing_queued(db_path)


def test_too_many_photos_or_none_is_400(phone, db_path):
    bind(phone)
    assert post_report(phone, [(f"{i}.jpg", photo()) for i in range(5)]).status_code == 400
    assert post_report(phone, []).status_code == 400
    nothing_queued(db_path)


def test_unknown_category_is_400(phone, db_path):
    bind(phone)
    assert post_report(phone, [("a.jpg", photo())], category="aliens").status_code == 400
    nothing_queued(db_path)


def test_an_unknown_device_reports_with_staff_number_and_pin(client, db_path):
    assert post_report(client, [("a.jpg", photo())], staff_id="D001",
                       pin="0000").status_code == 401
    nothing_queued(db_path)
    response = post_report(client, [("a.jpg", photo())], staff_id="D001", pin="2468")
    assert response.status_code == 303
    assert records(db_path, "report")[0]["staff_id"] == "D001"


def test_a_report_without_csrf_token_is_refused(phone, db_path):
    bind(phone)
    response = phone.post("/report", data={"category": "hygiene",
                                           "photos": [(io.BytesIO(photo()), "a.jpg")]},
                          content_type="multipart/form-data")
    assert response.status_code == 400
    nothing_queued(db_path)


def test_the_node_camera_button_files_a_report_through_the_same_pipeline(db_path, leases, arp,
                                                                          tmp_path):
    from edge.portal import create_app

    from .test_portal import PHONE_IP, PHONE_MAC, lease, portal_config

    camera = tmp_path / "camera.jpg"  # an image file stands in for the node's camera
    camera.write_bytes(photo((20, 20, 160), size=(2400, 1800)))
    app = create_app(portal_config(db_path, leases, arp, CAMERA_SOURCE=str(camera)))
    lease(leases, PHONE_IP, PHONE_MAC)
    phone = app.test_client()
    phone.environ_base["REMOTE_ADDR"] = PHONE_IP
    phone.get("/?lang=en")
    bind(phone)
    assert "Use the node's camera instead" in text(phone.get("/report"))
    response = phone.post("/report", data={"csrf_token": token(phone), "category": "safety",
                                           "camera": "1"})
    assert response.status_code == 303
    [report] = records(db_path, "report")
    [sha] = report["photos"]
    from PIL import Image
    with Image.open(db_path.parent / "photos" / f"{sha}.jpg") as safe:
        assert max(safe.size) == 1600  # resized by the pipeline, not the raw frame


def test_without_a_node_camera_the_button_is_absent_and_refused(phone, db_path):
    bind(phone)
    assert "camera instead" not in text(phone.get("/report"))
    response = phone.post("/report", data={"csrf_token": token(phone), "category": "safety",
                                           "camera": "1"})
    assert response.status_code == 400
    nothing_queued(db_path)


def test_without_its_face_model_the_node_refuses_photos_and_queues_nothing(
        phone, db_path, tmp_path, monkeypatch):
    """Fail safe (issue 13): a node that cannot blur faces takes no photo at all."""
    monkeypatch.setattr(faces_v2, "_local", type(faces_v2._local)())  # no loaded network
    monkeypatch.setattr(faces_v2, "MODEL", tmp_path / "gone.tflite")
    bind(phone)
    response = post_report(phone, [("ward.jpg", photo())])
    assert response.status_code == 503
    assert "cannot blur faces" in text(response)
    nothing_queued(db_path)
