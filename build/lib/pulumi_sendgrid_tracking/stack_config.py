"""Checks of a stack's configuration: unknown keys in our namespaces, and an API key stored in plaintext.

`check_stack_config` is pure (config mapping and secret keys in, problems out) so that it can run
in a Pulumi program before any resource is declared, and fail `pulumi preview` with every problem
at once. `current_stack_config` reads what the Pulumi runtime gives a Python program.
Messages name keys, never values: a value under a mistyped key may be a secret.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from .config import SOURCES

NAMESPACE = "sendgrid"
API_KEY = SOURCES["api_key"][0]
API_KEY_ENV = SOURCES["api_key"][1]


def known_keys() -> dict[str, tuple[str, ...]]:
    """Namespace → valid key names, from `config.SOURCES` (`{"sendgrid": ("apiKey", "region", ...)}`)."""
    names: dict[str, list[str]] = {}
    for config_key, _ in SOURCES.values():
        namespace, name = config_key.split(":", 1)
        names.setdefault(namespace, []).append(name)
    return {namespace: tuple(values) for namespace, values in names.items()}


def split_key(key: str) -> tuple[str, str]:
    """`ns:name` → (ns, name). The legacy form `ns:config:name` is the same key; no namespace → ("", key)."""
    namespace, sep, name = key.partition(":")
    if not sep:
        return "", key
    if name.startswith("config:"):
        name = name[len("config:") :]
    return namespace, name


def _closest(name: str, candidates: Collection[str], cutoff: float = 0.7) -> str | None:
    """The candidate `name` most likely meant: same letters in another case first, then spelling."""
    for candidate in candidates:
        if candidate.lower() == name.lower():
            return candidate
    lowered = {candidate.lower(): candidate for candidate in candidates}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


def _rename(key: str, meant: str, stack: str) -> str:
    if meant == API_KEY:
        return f"Move the key: pulumi config rm {key}, then pulumi config set --secret {API_KEY}"
    return f"Rename the key in Pulumi.{stack}.yaml"


def _unknown(key: str, namespace: str, name: str, owned: Mapping[str, Collection[str]], stack: str) -> str:
    valid = owned[namespace]
    meant = _closest(name, valid)
    suggestion = f"{namespace}:{meant}" if meant else None
    if suggestion is None:
        # The right name in the other namespace (`sendgrid-click-tracking:apiKey` for `sendgrid:apiKey`).
        for other, names in owned.items():
            if other != namespace and (found := _closest(name, names)):
                suggestion = f"{other}:{found}"
                break
    allowed = ", ".join(f"{namespace}:{n}" for n in valid)
    if suggestion is None:
        return (
            f"{key}: unknown key; the keys of namespace {namespace!r} are {allowed}. Remove it: pulumi config rm {key}."
        )
    case_only = suggestion.lower() == f"{namespace}:{name}".lower()
    return (
        f"{key}: unknown key{' (keys are case-sensitive)' if case_only else ''}; did you mean {suggestion}? "
        f"{_rename(key, suggestion, stack)}."
    )


def check_stack_config(
    config: Mapping[str, Any],
    secret_keys: Collection[str],
    namespaces: Mapping[str, Collection[str]] | None = None,
    *,
    stack: str = "<stack>",
) -> list[str]:
    """Every problem with a stack's config keys, in key order; [] when it is fine. Sends nothing.

    - A key in namespace `sendgrid` (plus any in `namespaces`, e.g. a program's own) that is not one
      of its valid keys, with the closest valid key (case-insensitive) when there is one.
    - A key in a namespace spelled almost like one of those whose name is a valid key there
      (`sendgird:apiKey`). Other namespaces belong to other packages and are left alone.
    - `sendgrid:apiKey` that is not a secret: it sits in plaintext in Pulumi.<stack>.yaml, and
      the engine would copy it into the state.
    """
    owned: dict[str, tuple[str, ...]] = dict(known_keys())
    for namespace, names in (namespaces or {}).items():
        owned[namespace] = tuple(dict.fromkeys([*owned.get(namespace, ()), *names]))
    secret = {"{}:{}".format(*split_key(key)) for key in secret_keys}
    problems: list[str] = []
    for key in sorted(config):
        namespace, name = split_key(key)
        if namespace in owned:
            if name not in owned[namespace]:
                problems.append(_unknown(key, namespace, name, owned, stack))
            elif f"{namespace}:{name}" == API_KEY and f"{namespace}:{name}" not in secret:
                problems.append(
                    f"{key}: the API key is stored in plaintext in Pulumi.{stack}.yaml, and the engine would copy it "
                    f"into the state. Make it a secret: pulumi config set --secret {API_KEY} (paste the key when "
                    f"asked); or remove it (pulumi config rm {API_KEY}) and set {API_KEY_ENV} in the environment. "
                    "If the file was committed or shared, rotate the key."
                )
            continue
        # Only a near-identical namespace with a valid name in it: anything else may be another package's.
        near = _closest(namespace, list(owned), cutoff=0.85) if namespace else None
        meant = _closest(name, owned[near], cutoff=1.0) if near else None
        if near is not None and meant is not None:
            problems.append(
                f"{key}: unknown namespace {namespace!r}; did you mean {near}:{meant}? "
                f"{_rename(key, f'{near}:{meant}', stack)}."
            )
    return problems


def stack_config_warnings(
    config: Mapping[str, Any], secret_keys: Collection[str], *, stack: str = "<stack>"
) -> list[str]:
    """What the user should know about a config that is valid: where a secret API key is stored."""
    secret = {"{}:{}".format(*split_key(key)) for key in secret_keys}
    present = {"{}:{}".format(*split_key(key)) for key in config}
    if API_KEY not in present or API_KEY not in secret:
        return []
    return [
        f"{API_KEY} is set in stack config. It is stored encrypted in Pulumi.{stack}.yaml; and because the Pulumi "
        "engine records a dynamic provider's whole stack config as the inputs of the default "
        "`pulumi:providers:pulumi-python` resource, it is also stored, encrypted, in the stack's state, where "
        "`pulumi stack export --show-secrets` shows it until `pulumi destroy` removes that provider. refresh and "
        "destroy use that recorded key unless PULUMI_RUN_PROGRAM=true. To keep the key out of the state, "
        f"`pulumi config rm {API_KEY}` and set {API_KEY_ENV} instead."
    ]


def current_stack_config() -> tuple[dict[str, Any], frozenset[str]]:
    """The stack config a Python Pulumi program was started with, and which of its keys are secrets.

    The language host passes them as PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS (JSON); the SDK's
    exec script loads them into `pulumi.runtime.config`, and the Automation API sets that directly.
    Values are strings, with objects and lists as JSON text.
    """
    values: dict[str, Any] = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    secret = set(runtime_config.get_config_secret_keys_env())
    secret.update(key for key in values if runtime_config.is_config_secret(key))
    return values, frozenset(secret)


_checked = False


def check_running_program(namespaces: Mapping[str, Collection[str]] | None = None) -> list[str]:
    """The running program's config problems, the first time this is called in the process; [] after.

    The resources call it before their first declaration (the `sendgrid` namespace), so that any
    program using the package gets the check; a program that checks its own namespace too calls it
    first, with `namespaces`, and reports everything in one message. Logs the warnings once.
    """
    global _checked  # noqa: PLW0603 - once per program run
    if _checked:
        return []
    _checked = True
    values, secret_keys = current_stack_config()
    stack = pulumi.get_stack()
    for warning in stack_config_warnings(values, secret_keys, stack=stack):
        pulumi.log.warn(warning)
    return check_stack_config(values, secret_keys, namespaces, stack=stack)
