from __future__ import annotations

from harness import envpolicy


def test_isolated_keeps_allow_list_and_drops_the_rest():
    base = {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C", "RANDOM_POLLUTION": "1",
            "TF_NUM_INTRAOP_THREADS": "2", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
            "HARNESS_EVENTS": "/x", "HARNESS_API_TOKEN": "t0k3n", "CUDA_VISIBLE_DEVICES": ""}
    env = envpolicy.isolated(base, {"EXTRA": "1", "GITHUB_TOKEN": "abc"})
    assert env == {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C",
                   "TF_NUM_INTRAOP_THREADS": "2", "HARNESS_EVENTS": "/x",
                   "CUDA_VISIBLE_DEVICES": "", "EXTRA": "1"}


def test_redact_replaces_secret_values():
    env = {"DB_PASSWORD": "hunter22", "MY_API_KEY": "k-123456", "NAME": "hunter22x"}
    secrets = envpolicy.secret_values(env)
    assert envpolicy.redact("pw=hunter22 key=k-123456", secrets) == "pw=*** key=***"
    assert envpolicy.redact_mapping(env)["DB_PASSWORD"] == "***"
    assert envpolicy.redact_mapping(env)["NAME"] == "hunter22x"


def test_short_values_are_not_redacted():
    assert envpolicy.secret_values({"KEY": "a"}) == []
