"""Sharding a fleet over several stacks: which stack manages which account. Pure, no Pulumi calls.

A stack with `sendgrid-click-tracking:shard: "<index>/<count>"` (1 ≤ index ≤ count) declares only
the accounts whose key hashes into shard `index` of `count`. The key is the account (resource ID):
its region and on-behalf-of, `global`, `eu/carol`, `global/account-id 42`; never a resource name or
a setting, so an account's four settings are always in one shard, and renaming a resource or
adding a setting moves nothing.

The hash is sha256 (the same in every process and Python version, unlike `hash()`), fed into
Lamping and Veach's jump consistent hash: with the same count an account never moves; going from
`count` to `count + 1` shards moves only the accounts that land in the new shard (about
1/(count + 1) of them), never one between two old shards. Any change of the count moves some
accounts, and a moved account must move with its state (docs/sharding.md, "Changing the shard count").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .inputs import resource_id

SHARD_KEY = "shard"
"""The program namespace's key: `sendgrid-click-tracking:shard`."""
MAX_SHARDS = 1024
_FORM = re.compile(r"([0-9]+)/([0-9]+)")
SHARD_STACK = re.compile(r"(?P<base>.+)-shard-(?P<index>[0-9]+)-of-(?P<count>[0-9]+)")
"""The name of a shard stack, `<base>-shard-<index>-of-<count>` (pipelines/shards names them so)."""
_JUMP_MULTIPLIER = 2862933555777941757
_MASK_64 = (1 << 64) - 1


class ShardConfigError(ValueError):
    """A `shard` value that is not `<index>/<count>`; the message says what to write."""


@dataclass(frozen=True, order=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        """`shard-2-of-8`: how the pipelines name the shard's stack (`<stack>-shard-2-of-8`)."""
        return f"shard-{self.index}-of-{self.count}"

    def holds(self, region: str, on_behalf_of: str | None) -> bool:
        """Whether this shard manages the account (every setting of it)."""
        return shard_of(account_key(region, on_behalf_of), self.count) == self.index


def parse_shard(raw: object, where: str = SHARD_KEY) -> Shard:
    """`"2/8"` → Shard(2, 8). Raises ShardConfigError naming `where`, with the form to write."""
    form = 'write it as "<index>/<count>", e.g. "2/8" for the second of 8 shards (index 1 to count)'
    if not isinstance(raw, str):
        raise ShardConfigError(f"{where}: must be a string, got {type(raw).__name__} {raw!r}; {form}")
    found = _FORM.fullmatch(raw)
    if found is None:
        raise ShardConfigError(f"{where}: {raw!r} is not <index>/<count>; {form}")
    index, count = int(found[1]), int(found[2])
    if not 1 <= count <= MAX_SHARDS:
        raise ShardConfigError(f"{where}: {raw!r}: the count must be between 1 and {MAX_SHARDS}, got {count}")
    if not 1 <= index <= count:
        raise ShardConfigError(f"{where}: {raw!r}: the index must be between 1 and {count} (the count), got {index}")
    return Shard(index, count)


def account_key(region: str, on_behalf_of: str | None) -> str:
    """What an account's shard is derived from: its resource ID (`global`, `eu/carol`, `global/account-id 42`)."""
    return resource_id(region, on_behalf_of)


def shard_of(key: str, count: int) -> int:
    """The shard (1 to count) of an account key: sha256, then jump consistent hash."""
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"count must be between 1 and {MAX_SHARDS}, got {count}")
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    bucket, candidate = -1, 0
    while candidate < count:
        bucket = candidate
        seed = (seed * _JUMP_MULTIPLIER + 1) & _MASK_64
        candidate = int((bucket + 1) * ((1 << 31) / ((seed >> 33) + 1)))
    return bucket + 1
