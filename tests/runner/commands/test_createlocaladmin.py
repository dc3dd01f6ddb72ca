"""`make run` prints the admin URL the web process really serves, on WEB_PORT when it is set."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[3]


PROCFILE_PORT = re.compile(r"\$\{WEB_PORT:-(\d+)\}")


PRINTED = re.compile(r"Local admin: (http://\S+/admin/)  user '(\S+)'  password '(\S+)'")


def printed_url(capsys):
    call_command("createlocaladmin")
    return PRINTED.search(capsys.readouterr().out).group(1)


@pytest.mark.django_db
def test_the_printed_url_uses_web_port(monkeypatch, capsys):
    monkeypatch.setenv("WEB_PORT", "8123")
    assert printed_url(capsys) == "http://127.0.0.1:8123/admin/"


@pytest.mark.django_db
def test_without_web_port_the_printed_url_uses_the_procfiles_default(monkeypatch, capsys):
    monkeypatch.delenv("WEB_PORT", raising=False)
    default = PROCFILE_PORT.search((ROOT / "Procfile").read_text()).group(1)
    assert printed_url(capsys) == f"http://127.0.0.1:{default}/admin/"
