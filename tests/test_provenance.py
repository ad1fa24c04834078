"""Provenance of every number: the code revision that made it."""

def test_git_revision_names_the_checkout_or_the_declared_revision(monkeypatch):
    from ganbench import provenance

    provenance.git_revision.cache_clear()
    monkeypatch.delenv("GANBENCH_GIT_REVISION", raising=False)
    found = provenance.git_revision()
    assert found is None or len(found.split("+")[0]) == 40  # a commit hash (this checkout), or none
    provenance.git_revision.cache_clear()
    monkeypatch.setenv("GANBENCH_GIT_REVISION", "0123abcd")
    try:
        assert provenance.git_revision() == "0123abcd"
    finally:
        provenance.git_revision.cache_clear()
