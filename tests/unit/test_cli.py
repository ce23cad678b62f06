"""``binderhub-service build --help``: it names every kind of source the command takes
(issue 25), and each example it gives is read as that kind by the parser the command
uses (``jobs.sources.forms.parse_source``)."""

from __future__ import annotations

import pytest

from jobs.sources.forms import parse_source
from jobs.sources.records import DoiSource, GitSource, RecordSource
from webhook.cli import main

EXAMPLES = {
    # an example the help gives: the kind of source it is read as
    "https://github.com/OWNER/REPO": "git",
    "gh/OWNER/REPO/REF": "git",
    "gl/NAMESPACE/PROJECT/REF": "git",
    "10.5281/zenodo.3242074": "zenodo",
    "https://doi.org/10.7910/DVN/TJCLKP": "doi",
    "https://demo.ckan.org/dataset/sample-dataset-1": "ckan",
    "hg+https://HOST/PATH": "hg",
}
NAMED = ("gist", "Zenodo", "Figshare", "Dataverse", "HydroShare", "swh:1:dir:", "swh:1:rev:")


def kind(text: str) -> str:
    source = parse_source(text)
    if isinstance(source, GitSource):
        return "git"
    if isinstance(source, DoiSource):
        return "doi"
    assert isinstance(source, RecordSource)
    return source.provider


def build_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "400")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit) as exited:
        main(["build", "--help"])
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_build_help_names_every_kind_of_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = build_help(capsys, monkeypatch)
    for example, expected in EXAMPLES.items():
        assert example in shown, example
        assert kind(example) == expected, example
    for name in NAMED:
        assert name in shown, name
    assert "docs/providers.md" in shown
