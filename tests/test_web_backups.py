"""Backups through the dashboard, against the real backup module and a real data folder."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from backup_fixtures import snapshot, tree
from flask.testing import FlaskClient
from web_fixtures import NOW, Site, csrf_from, fill, log_in, make_site, sample

from collector.store.lock import DataLock


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = make_site(tmp_path)
    fill(s.store, "central", NOW, count=3)
    fill(s.store, "web1", NOW, count=3)
    s.set_password()
    return s


@pytest.fixture
def admin(site: Site) -> FlaskClient:
    client = site.app(OSMON_LOCK_WAIT_S=0.2).test_client()
    assert log_in(client).status_code == 302
    return client


def backup_names(client: FlaskClient) -> list[str]:
    return re.findall(r"<td>(osmon-[0-9-]+\.tar\.gz)</td>",
                      client.get("/backups").get_data(as_text=True))


def post(client: FlaskClient, url: str, **form: str):  # -> werkzeug TestResponse
    return client.post(url, data={"csrf_token": csrf_from(client, "/backups"), **form})


def test_create_lists_and_deletes_a_backup(site: Site, admin: FlaskClient) -> None:
    assert backup_names(admin) == []
    created = post(admin, "/backups/create")
    assert created.status_code == 302 and created.headers["Location"] == "/backups"
    page = admin.get("/backups").get_data(as_text=True)
    [name] = backup_names(admin)
    assert f"Backup {name} created." in page
    assert (site.config.settings.backup_dir / name).is_file()
    assert str(site.config.settings.backup_dir) not in page  # where backups live stays private
    unconfirmed = post(admin, f"/backups/{name}/delete")
    assert unconfirmed.status_code == 400 and "confirmation" in unconfirmed.get_data(as_text=True)
    assert backup_names(admin) == [name]
    assert post(admin, f"/backups/{name}/delete", confirm="yes").status_code == 302
    assert backup_names(admin) == []


def test_restore_brings_the_data_back_and_keeps_the_replaced_data(site: Site,
                                                                  admin: FlaskClient) -> None:
    post(admin, "/backups/create")
    [name] = backup_names(admin)
    site.store.append("web1", sample("web1", NOW + timedelta(minutes=1), cpu=77.0))
    assert site.store.latest("web1")["cpu"]["percent"] == 77.0
    restored = post(admin, f"/backups/{name}/restore", confirm="yes")
    assert restored.status_code == 302
    page = admin.get("/backups").get_data(as_text=True)
    assert f"Backup {name} restored; the replaced data was saved as osmon-" in page
    assert site.store.latest("web1")["cpu"]["percent"] == 12.5
    assert len(backup_names(admin)) == 2  # the safety copy of what the restore replaced


def test_unknown_backup_names_are_refused_cleanly(site: Site, admin: FlaskClient) -> None:
    for name in ("osmon-20260101-000000.tar.gz", "..%2F..%2Fetc%2Fpasswd", "hosts.toml"):
        response = post(admin, f"/backups/{name}/restore", confirm="yes")
        assert response.status_code in (400, 404), name
        assert str(site.config.settings.backup_dir) not in response.get_data(as_text=True)
    assert backup_names(admin) == []


def test_a_running_pass_makes_the_action_wait_then_say_so(site: Site,
                                                         admin: FlaskClient) -> None:
    with DataLock(site.config.settings.data_dir, "collect"):
        response = post(admin, "/backups/create")
    assert response.status_code == 409
    assert "Not now: another osmon collect is running" in response.get_data(as_text=True)
    assert backup_names(admin) == []


def test_actions_need_a_login(site: Site) -> None:
    client = site.client()
    page = client.get("/backups").get_data(as_text=True)
    assert "Log in as admin first." in page and "Create a backup now" not in page
    response = client.post("/backups/create", data={"csrf_token": csrf_from(client)})
    assert response.status_code == 403
    assert not site.config.settings.backup_dir.exists()


def test_actions_need_the_csrf_token_even_logged_in(site: Site, admin: FlaskClient) -> None:
    post(admin, "/backups/create")
    [name] = backup_names(admin)
    site.store.append("web1", sample("web1", NOW + timedelta(minutes=1), cpu=77.0))
    for url, form in (("/backups/create", {}), (f"/backups/{name}/restore", {"confirm": "yes"}),
                      (f"/backups/{name}/delete", {"confirm": "yes"})):
        assert admin.post(url, data=form).status_code == 400
        assert admin.post(url, data={**form, "csrf_token": "forged"}).status_code == 400
    assert backup_names(admin) == [name]
    assert site.store.latest("web1")["cpu"]["percent"] == 77.0


def test_actions_are_post_only(site: Site, admin: FlaskClient) -> None:
    post(admin, "/backups/create")
    [name] = backup_names(admin)
    for url in ("/backups/create", f"/backups/{name}/restore", f"/backups/{name}/delete"):
        assert admin.get(url).status_code == 405
    assert backup_names(admin) == [name]


def test_a_corrupt_archive_is_refused_with_the_reason_as_text(site: Site,
                                                             admin: FlaskClient) -> None:
    post(admin, "/backups/create")
    [name] = backup_names(admin)
    archive = site.config.settings.backup_dir / name
    archive.write_bytes(archive.read_bytes()[:-200])
    site.store.append("web1", sample("web1", NOW + timedelta(minutes=1), cpu=77.0))
    before = snapshot(site.config.settings.data_dir)

    response = post(admin, f"/backups/{name}/restore", confirm="yes")
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f"{name} is corrupt or truncated" in text and "nothing was restored" in text
    assert snapshot(site.config.settings.data_dir) == before
    assert backup_names(admin) == [name]  # no safety copy: nothing was replaced


@pytest.mark.parametrize("name", ["hosts.toml", "..%2Fhosts.toml", "..%252Fhosts.toml",
                                  "%2E%2E", "<b>osmon</b>"])
def test_delete_of_anything_but_a_backup_name_is_refused(site: Site, admin: FlaskClient,
                                                         name: str) -> None:
    post(admin, "/backups/create")
    before = tree(site.root)
    response = post(admin, f"/backups/{name}/delete", confirm="yes")
    assert response.status_code in (400, 404)
    text = response.get_data(as_text=True)
    assert "<b>osmon" not in text  # shown as text, never as markup
    if response.status_code == 400:
        assert "is not a backup name" in text
    assert str(site.config.settings.backup_dir) not in text
    assert tree(site.root) == before and (site.root / "hosts.toml").is_file()
