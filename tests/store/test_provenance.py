"""Provenance of every number: the code revision that made it (read by the run context)."""

from ganbench import context
from ganbench.context import RunContext


def test_git_revision_names_the_checkout_or_the_declared_revision(monkeypatch):
    monkeypatch.delenv("GANBENCH_GIT_REVISION", raising=False)
    found = context.git_revision()
    assert found is None or len(found.split("+")[0]) == 40  # a commit hash (this checkout), or none
    assert RunContext.from_environment().git_revision == found
    assert context.git_revision("0123abcd") == "0123abcd"
    monkeypatch.setenv("GANBENCH_GIT_REVISION", "0123abcd")  # a source tree copied without its .git
    assert RunContext.from_environment().git_revision == "0123abcd"
