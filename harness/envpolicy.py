"""Environment policy: the allow-list isolated children get, and secret redaction.

A child launched by `env-isolated` or the Phase 2 runner sees only allow-listed
variables plus what the launcher sets on purpose; variables whose names look
secret never pass and their values never reach a file the harness writes.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping

ALLOWED = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM", "SHELL",
    "VIRTUAL_ENV", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONFAULTHANDLER", "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
    "TF_GPU_THREAD_MODE", "TF_GPU_THREAD_COUNT", "TF_CPP_MIN_LOG_LEVEL",
})
ALLOWED_PREFIXES = ("LC_", "HARNESS_")
_SECRET_RE = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL", re.IGNORECASE)
REDACTED = "***"
_MIN_SECRET_LEN = 4  # shorter values would redact ordinary words


def is_secret(name: str) -> bool:
    return bool(_SECRET_RE.search(name))


def allowed(name: str) -> bool:
    return not is_secret(name) and (name in ALLOWED or name.startswith(ALLOWED_PREFIXES))


def isolated(base: Mapping[str, str], additions: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of base, plus additions that are not secret."""
    env = {k: v for k, v in base.items() if allowed(k)}
    env.update({k: v for k, v in additions.items() if not is_secret(k)})
    return env


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if is_secret(k) and len(v) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def _spellings(value: str) -> list[str]:
    """The value as it may stand in a text: itself, and as JSON and HTML escape it (a
    quote, a backslash, a non-ASCII letter change its spelling there)."""
    json_ascii = json.dumps(value)[1:-1]
    json_utf8 = json.dumps(value, ensure_ascii=False)[1:-1]
    return list(dict.fromkeys([value, json_ascii, json_utf8, html.escape(value),
                               html.escape(json_ascii), html.escape(json_utf8)]))


def redact(text: str, secrets: list[str] | None = None) -> str:
    """text with every secret value of the environment replaced by ***, in whichever
    spelling it stands (raw, JSON-escaped, HTML-escaped)."""
    for value in secret_values() if secrets is None else secrets:
        for spelling in _spellings(value):
            text = text.replace(spelling, REDACTED)
    return text


def redact_data(data: object, secrets: list[str] | None = None) -> object:
    """data with every string in it redacted: before it is serialised, so no escaping can
    hide a secret value from the text-level pass."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, dict):
        return {redact_data(k, secrets): redact_data(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v, secrets) for v in data]
    return data


def redact_mapping(env: Mapping[str, str]) -> dict[str, str]:
    """For records: secret-looking names keep their key, lose their value."""
    return {k: (REDACTED if is_secret(k) else v) for k, v in env.items()}
